"""The Gemini stream decoder: ``streamGenerateContent?alt=sse`` events to canonical chunks.

Every event is ``data: {GenerateContentResponse}``; there is no terminator event. Each event carries the
next parts of each candidate: text (``thought: true`` parts are reasoning) and complete function calls
(Gemini never splits a call across events, so each becomes one complete ``ToolCallDelta``). The
``finishReason`` of a candidate arrives with its last parts and is held until ``finish()``; the last
``usageMetadata`` seen is the stream's usage. An ``{"error": ...}`` event is the typed error.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from app.domain import StreamChunk, ToolCallDelta, Usage
from app.errors import UpstreamStreamError
from app.providers.base import SSEEvent
from app.providers.errors import malformed
from app.providers.google_decode import (
    KIND,
    blocked_error,
    error_from_object,
    finish_reason,
    load_object,
    openai_logprobs,
    read_call,
    read_parts,
    read_text,
    read_usage,
)


class GeminiStreamDecoder:
    """Decoder of one Gemini SSE stream of ``choices`` candidates (``candidateCount``)."""

    def __init__(self, model: str, choices: int = 1) -> None:
        self._model = model
        self._choices = choices
        self._usage: Usage | None = None
        self._finish: dict[int, Any] = {}  # candidate index -> Gemini finishReason
        self._calls: dict[int, int] = {}  # candidate index -> function calls seen so far

    @property
    def done(self) -> bool:
        """Every candidate has sent its finish reason."""
        return all(i in self._finish for i in range(self._choices))

    def feed(self, event: SSEEvent) -> Iterable[StreamChunk]:
        if not event.data.strip():
            return ()
        payload = load_object(event.data, self._model, "a stream event")
        if "error" in payload:
            raise error_from_object(payload.get("error"), None, {}, self._model)
        usage = read_usage(payload, self._model)
        if usage is not None:
            self._usage = usage
        candidates = payload.get("candidates")
        if not candidates:
            blocked = blocked_error(payload, self._model)
            if blocked is not None:
                raise blocked
            return ()
        if not isinstance(candidates, list):
            raise malformed(KIND, self._model, "candidates is not a list")
        chunks: list[StreamChunk] = []
        for position, candidate in enumerate(candidates):
            chunks.extend(self._candidate(candidate, position))
        return chunks

    def _candidate(self, candidate: Any, position: int) -> list[StreamChunk]:
        if not isinstance(candidate, dict):
            raise malformed(KIND, self._model, "a candidate is not an object")
        index = candidate.get("index", position)
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise malformed(KIND, self._model, "a candidate index is not a number")
        chunks: list[StreamChunk] = []
        logprobs = openai_logprobs(candidate.get("logprobsResult"))
        for part in read_parts(candidate, self._model):
            if "functionCall" in part:
                call = read_call(part, self._model)
                number = self._calls.get(index, 0)
                self._calls[index] = number + 1
                delta = ToolCallDelta(number, id=call.id, name=call.name, arguments=call.arguments)
                chunks.append(StreamChunk(tool_calls=(delta,), choice=index))
                continue
            text = read_text(part, self._model)
            if not text:
                continue
            if part.get("thought") is True:
                chunks.append(StreamChunk(reasoning=text, choice=index))
            else:
                chunks.append(StreamChunk(delta=text, choice=index, logprobs=logprobs))
                logprobs = None  # the event's logprobs ride on its first text chunk
        if logprobs is not None:
            chunks.append(StreamChunk(logprobs=logprobs, choice=index))
        if candidate.get("finishReason") is not None:
            self._finish[index] = candidate["finishReason"]
        return chunks

    def finish(self) -> StreamChunk:
        if 0 not in self._finish:
            raise UpstreamStreamError(
                f"the {KIND} stream ended before a finish reason", provider=KIND, model=self._model
            )
        reason = finish_reason({"finishReason": self._finish[0]}, self._calls.get(0, 0) > 0)
        others = tuple((i, f) for i in sorted(self._finish) if i != 0 and (f := self.finish_reason_of(i)) is not None)
        return StreamChunk(finish_reason=reason, usage=self._usage, other_finishes=others)

    def finish_reason_of(self, choice: int) -> str | None:
        """The finish reason of candidate ``choice`` (``n > 1``; ``finish()`` carries choice 0's)."""
        if choice not in self._finish:
            return None
        return finish_reason({"finishReason": self._finish[choice]}, self._calls.get(choice, 0) > 0)
