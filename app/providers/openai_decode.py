"""OpenAI chat completions, the answer side: ``chat.completion`` bodies, ``chat.completion.chunk`` streams
and ``{"error": ...}`` bodies into canonical values (used by ``app.providers.openai``).

Lenient where OpenAI-compatible servers differ harmlessly (reasoning as ``reasoning_content`` or
``reasoning``, tool call deltas without ``index``, arguments sent as an object, content as a list of text
parts), strict where an answer is broken: nothing that is not a readable answer becomes a success.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import orjson

from app.domain import Choice, Passthrough, ReasoningPart, StreamChunk, ToolCall, ToolCallDelta, Usage
from app.errors import UpstreamError, UpstreamStreamError
from app.providers.base import Decoded, SSEEvent, normalize_finish_reason
from app.providers.errors import from_status, malformed, sanitize

PROTOCOL = "openai.chat"
CONTEXT_CODES = frozenset({"context_length_exceeded", "string_above_max_length"})
AUTH_CODES = frozenset({"invalid_api_key"})
_RATE_LIMIT = frozenset({"rate_limit_exceeded", "insufficient_quota", "requests", "tokens", "rate_limit_error"})
_DONE = "[DONE]"


# --- errors ----------------------------------------------------------------------------------------------


def error_fields(body: object) -> tuple[str | None, str | None, str | None]:
    """(message, type, code) of an error body: OpenAI's ``{"error": {...}}``, or the shapes compatible
    servers use (``{"error": "text"}``, vLLM's top-level ``{"object": "error", "message", "type", "code"}``,
    FastAPI's ``{"detail": ...}``). Codes that are numbers come back as text."""
    if not isinstance(body, dict):
        return None, None, None
    err: Any = body.get("error", body)
    if isinstance(err, str):
        return err, None, None
    if not isinstance(err, dict):
        return None, None, None
    message = err.get("message", err.get("detail"))

    def text(value: object) -> str | None:
        return None if value is None or isinstance(value, (dict, list)) else str(value)

    return text(message), text(err.get("type")), text(err.get("code"))


def typed_error(
    status: int, body: object, *, provider: str, model: str, headers: Mapping[str, str] | None = None
) -> UpstreamError:
    """The gateway error for an OpenAI error body with an HTTP status (by code and type, never by text)."""
    message, _, code = error_fields(body)
    return from_status(
        status,
        sanitize(message),
        provider=provider,
        model=model,
        headers=headers,
        context_exceeded=code in CONTEXT_CODES,
        auth_failed=code in AUTH_CODES,
    )


def status_of_error_body(body: object) -> int:
    """The HTTP status an error body means when it came with a 200 (or inside a stream)."""
    _, err_type, code = error_fields(body)
    if code is not None and code.isdigit() and 400 <= int(code) <= 599:
        return int(code)
    if code in CONTEXT_CODES:
        return 400
    if code in AUTH_CODES or err_type == "authentication_error":
        return 401
    if code in _RATE_LIMIT or err_type in _RATE_LIMIT:
        return 429
    if err_type == "invalid_request_error":
        return 404 if code == "model_not_found" else 400
    return 500


def body_error(data: dict[str, Any], *, provider: str, model: str) -> UpstreamError | None:
    """The typed error a 2xx body or a stream event carries (``{"error": {...}}``), if any."""
    if data.get("error") is None:
        return None
    return typed_error(status_of_error_body(data), data, provider=provider, model=model)


# --- pieces of an answer ----------------------------------------------------------------------------------


def _int(value: object, what: str, provider: str, model: str) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise malformed(provider, model, f"{what} is not a token count")
    return value


CHAT_USAGE = ("prompt_tokens", "completion_tokens")  # chat completions' names; the Responses API says input/output


def parse_usage(
    raw: object, provider: str, model: str, names: tuple[str, str] = CHAT_USAGE, *, counts_required: bool = True
) -> Usage | None:
    """Canonical usage of an OpenAI ``usage`` object whose token counts are named ``names`` (their details
    under ``<name>_details``); None when absent, or (``counts_required``) without token counts."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise malformed(provider, model, "usage is not an object")
    inputs, outputs = names
    if counts_required and raw.get(inputs) is None and raw.get(outputs) is None:
        return None
    details_in = raw.get(f"{inputs}_details") or {}
    details_out = raw.get(f"{outputs}_details") or {}
    if not isinstance(details_in, dict) or not isinstance(details_out, dict):
        raise malformed(provider, model, "usage details are not objects")
    return Usage(
        input_tokens=_int(raw.get(inputs), f"usage.{inputs}", provider, model),
        output_tokens=_int(raw.get(outputs), f"usage.{outputs}", provider, model),
        cached_input_tokens=_int(details_in.get("cached_tokens"), "usage cached_tokens", provider, model),
        reasoning_tokens=_int(details_out.get("reasoning_tokens"), "usage reasoning_tokens", provider, model),
    )


def _text(value: object, what: str, provider: str, model: str) -> str:
    """A content value as text: a string, null, or a list of text parts (some compatible servers)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(p["text"] for p in value if isinstance(p, dict) and isinstance(p.get("text"), str))
    raise malformed(provider, model, f"{what} is not text")


def reasoning_text(body: Mapping[str, Any]) -> str:
    """Reasoning text of a message or delta: ``reasoning_content`` (DeepSeek, vLLM) or ``reasoning``
    (OpenRouter, Ollama, newer vLLM); never both joined (servers that send both send the same text)."""
    for key in ("reasoning_content", "reasoning"):
        value = body.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def arguments_text(value: object) -> str:
    """Tool call arguments as JSON text (some compatible servers send an object)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def _tool_calls(raw: object, provider: str, model: str) -> tuple[ToolCall, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise malformed(provider, model, "tool_calls is not a list")
    calls = []
    for item in raw:
        function = item.get("function") if isinstance(item, dict) else None
        if not isinstance(function, dict):
            continue  # not a function call (custom tools have no canonical form)
        name = function.get("name")
        if not isinstance(name, str) or not name:
            raise malformed(provider, model, "a tool call has no function name")
        call_id = item.get("id")
        calls.append(
            ToolCall(
                id=call_id if isinstance(call_id, str) and call_id else f"call_{uuid.uuid4().hex[:24]}",
                name=name,
                arguments=arguments_text(function.get("arguments")) or "{}",
            )
        )
    return tuple(calls)


def _choice(raw: object, position: int, provider: str, model: str) -> Choice:
    if not isinstance(raw, dict):
        raise malformed(provider, model, "a choice is not an object")
    message = raw.get("message")
    if not isinstance(message, dict):
        raise malformed(provider, model, "a choice has no message")
    refusal = message.get("refusal")
    reasoning = reasoning_text(message)
    choice = Choice(
        index=raw["index"] if isinstance(raw.get("index"), int) else position,
        content=_text(message.get("content"), "message content", provider, model),
        finish_reason=normalize_finish_reason(raw.get("finish_reason")),
        tool_calls=_tool_calls(message.get("tool_calls"), provider, model),
        reasoning=(ReasoningPart(text=reasoning, provider=provider),) if reasoning else (),
        refusal=refusal if isinstance(refusal, str) else None,
        logprobs=raw.get("logprobs"),
    )
    if choice.finish_reason is None and not (choice.content or choice.tool_calls or choice.refusal):
        raise malformed(provider, model, "a choice has neither content nor a finish reason")
    return choice


def load_object(body: bytes | str, provider: str, model: str, what: str = "body") -> dict[str, Any]:
    """The JSON object of a body or an event; ``malformed`` for anything else (empty, truncated, not
    UTF-8, not an object)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise malformed(provider, model, f"the {what} is not JSON") from None
    if not isinstance(data, dict):
        raise malformed(provider, model, f"the {what} is not a JSON object")
    return data


def decode_completion(body: bytes, *, provider: str, model: str, passthrough: bool) -> Decoded:
    """A ``chat.completion`` body in canonical form (``passthrough`` keeps its bytes as well)."""
    data = load_object(body, provider, model)
    error = body_error(data, provider=provider, model=model)
    if error is not None:
        raise error
    raw_choices = data.get("choices")
    if not isinstance(raw_choices, list) or not raw_choices:
        raise malformed(provider, model, "no choices")
    choices = sorted((_choice(c, i, provider, model) for i, c in enumerate(raw_choices)), key=lambda c: c.index)
    first = choices[0]
    upstream_model = data.get("model")
    return Decoded(
        content=first.content,
        finish_reason=first.finish_reason,
        usage=parse_usage(data.get("usage"), provider, model),
        tool_calls=first.tool_calls,
        reasoning=first.reasoning,
        refusal=first.refusal,
        logprobs=first.logprobs,
        upstream_model=upstream_model if isinstance(upstream_model, str) else None,
        more_choices=tuple(choices[1:]),
        passthrough=Passthrough(PROTOCOL, body) if passthrough else None,
    )


# --- streams ----------------------------------------------------------------------------------------------


class OpenAIStreamDecoder:
    """Decodes ``chat.completion.chunk`` events.

    Finish reasons are held until ``finish()`` (``finish_reasons`` keeps every choice's); the usage comes
    from the usage chunk (or the last chunk that had one). In pass-through mode every event's chunk carries
    the event's ``raw`` bytes (the first chunk of the event, when it has several choices), the usage-only
    chunk the gateway asked for is flagged ``raw_usage_only`` unless the client asked for it too, and
    ``[DONE]`` is held back and returned as the ``raw`` of ``finish()``'s chunk.
    """

    raw_concatenates = True  # chat.py forwards pass-through events as bytes: merged events stay the same bytes

    def __init__(
        self, *, provider: str, model: str, passthrough: bool = False, client_usage: bool = False, n: int = 1
    ) -> None:
        self._provider, self._model = provider, model
        self._passthrough, self._client_usage = passthrough, client_usage
        self._n = max(1, n)
        self.finish_reasons: dict[int, str] = {}
        self._usage: Usage | None = None
        self._done_raw: bytes | None = None
        self._seen_done = False
        self._tool_index: dict[int, list[str | None]] = {}  # choice -> id of each tool call seen, by index
        self._last_tool: dict[int, int] = {}

    @property
    def done(self) -> bool:
        return self._seen_done or len(self.finish_reasons) >= self._n

    def feed(self, event: SSEEvent) -> list[StreamChunk]:
        data = event.data.strip()
        raw = event.raw if self._passthrough else None
        if data == _DONE:
            self._seen_done = True
            self._done_raw = event.raw
            return []
        if not data:
            return [StreamChunk(raw=raw)] if raw is not None else []
        body = load_object(data, self._provider, self._model, "stream event")
        error = body_error(body, provider=self._provider, model=self._model)
        if error is not None:
            raise error
        if body.get("usage") is not None:
            self._usage = parse_usage(body["usage"], self._provider, self._model) or self._usage
        choices = body.get("choices") or []
        if not isinstance(choices, list):
            raise malformed(self._provider, self._model, "stream event choices is not a list")
        chunks: list[StreamChunk] = []
        for position, choice in enumerate(choices):  # the event's bytes ride on its first chunk
            chunk = self._choice(choice, position, None if chunks else raw)
            if chunk is not None:
                chunks.append(chunk)
        if raw is None or chunks:
            return chunks
        usage_only = not choices and body.get("usage") is not None and not self._client_usage
        return [StreamChunk(raw=raw, raw_usage_only=usage_only)]

    def _choice(self, raw: object, position: int, event: bytes | None = None) -> StreamChunk | None:
        if not isinstance(raw, dict):
            raise malformed(self._provider, self._model, "a stream choice is not an object")
        index = raw["index"] if isinstance(raw.get("index"), int) else position
        delta = raw.get("delta") or {}
        if not isinstance(delta, dict):
            raise malformed(self._provider, self._model, "a stream delta is not an object")
        content = delta.get("content")
        if (
            type(content) is str
            and content
            and (len(delta) == 1 or (len(delta) == 2 and "role" in delta))
            and raw.get("finish_reason") is None
            and raw.get("logprobs") is None
        ):  # a token of text, nothing else: most events of a stream
            return StreamChunk(delta=content, choice=index, raw=event)
        finish = normalize_finish_reason(raw.get("finish_reason"))
        if finish is not None:
            self.finish_reasons.setdefault(index, finish)
        refusal = delta.get("refusal")
        chunk = StreamChunk(
            delta=_text(content, "delta content", self._provider, self._model),
            tool_calls=self._tool_deltas(index, delta.get("tool_calls")),
            reasoning=reasoning_text(delta),
            refusal=refusal if isinstance(refusal, str) else "",
            logprobs=raw.get("logprobs"),
            choice=index,
            raw=event,
        )
        return chunk if chunk.has_output or chunk.logprobs is not None else None

    def _tool_deltas(self, choice: int, raw: object) -> tuple[ToolCallDelta, ...]:
        if raw is None:
            return ()
        if not isinstance(raw, list):
            raise malformed(self._provider, self._model, "stream tool_calls is not a list")
        ids = self._tool_index.setdefault(choice, [])
        deltas = []
        for position, item in enumerate(raw):
            if not isinstance(item, dict):
                raise malformed(self._provider, self._model, "a stream tool call is not an object")
            function = item.get("function") or {}
            if not isinstance(function, dict):
                raise malformed(self._provider, self._model, "a stream tool call function is not an object")
            call_id = item.get("id") if isinstance(item.get("id"), str) and item.get("id") else None
            index = item.get("index")
            if not isinstance(index, int):
                # some compatible servers omit it: a new id starts a new call, fragments continue the last
                if call_id is not None and call_id not in ids:
                    index = len(ids)
                else:
                    index = self._last_tool.get(choice, position)
            while len(ids) <= index:
                ids.append(None)
            if call_id is not None:
                ids[index] = call_id
            self._last_tool[choice] = index
            name = function.get("name")
            deltas.append(
                ToolCallDelta(
                    index=index,
                    id=call_id,
                    name=name if isinstance(name, str) and name else None,
                    arguments=arguments_text(function.get("arguments")),
                )
            )
        return tuple(deltas)

    def finish(self) -> StreamChunk:
        finish = self.finish_reasons.get(0)
        if finish is None and self.finish_reasons:
            finish = self.finish_reasons[min(self.finish_reasons)]
        if finish is None:
            raise UpstreamStreamError(
                "the upstream stream ended before the model finished", provider=self._provider, model=self._model
            )
        others = tuple(sorted((i, f) for i, f in self.finish_reasons.items() if i != 0))
        raw = self._done_raw if self._passthrough else None
        return StreamChunk(finish_reason=finish, usage=self._usage, raw=raw, other_finishes=others)
