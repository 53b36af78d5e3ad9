"""Reading Anthropic's answers: the Messages stream decoder, and the usage and error readers that the
non-streamed decode (``app.providers.anthropic``) shares with it.

A Messages stream is SSE with ``event:`` names: ``message_start`` (model, input usage), per content block a
``content_block_start`` / ``content_block_delta``... / ``content_block_stop``, then ``message_delta``
(stop reason, output usage) and ``message_stop``; ``ping`` may come at any time and ``error`` replaces the
rest of the stream when the upstream fails after the HTTP 200. The decoder reads the JSON ``type`` of each
event (the ``event:`` name when the JSON has none) and ignores event and delta types it does not know, as
Anthropic's versioning policy asks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import orjson

from app.domain import ChatRequest, StreamChunk, ToolCallDelta, Usage
from app.errors import UpstreamError, UpstreamStreamError
from app.providers.anthropic_request import JSON_OBJECT_NAME, json_object_mode
from app.providers.base import ModelTarget, SSEEvent, normalize_finish_reason
from app.providers.errors import from_status, malformed, sanitize

KIND = "anthropic"
PROTOCOL = "anthropic.messages"

# Anthropic's error types and the HTTP status each one comes with (docs: "Errors"); an error inside a
# stream (or a 200 whose body is an error) is typed by the status of its error type.
ERROR_STATUS: dict[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}
_AUTH_TYPES = frozenset({"authentication_error", "permission_error"})
_USAGE_FIELDS = ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")


# --- shared readers ----------------------------------------------------------------------------------


def parse_json(data: bytes | str, model: str, what: str) -> Any:
    """The JSON value of ``data``; ``malformed`` for empty, truncated, non-JSON or non-UTF-8 bytes."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        raise malformed(KIND, model, f"{what} is not JSON") from None


def typed_error(
    error: object, model: str, *, status: int | None = None, headers: Mapping[str, str] | None = None
) -> UpstreamError:
    """The gateway error for Anthropic's ``error`` object (``{"type", "message"}``): typed by the HTTP
    ``status`` when there is one, else by the status that Anthropic gives its error type."""
    err = error if isinstance(error, dict) else {}
    kind = err.get("type") if isinstance(err.get("type"), str) else None
    if status is None:
        status = ERROR_STATUS.get(kind or "", 500)
    message = sanitize(err.get("message")) if err.get("message") else f"{kind or 'error'} (no message)"
    return from_status(status, message, provider=KIND, model=model, headers=headers, auth_failed=kind in _AUTH_TYPES)


def usage_fields(raw: object, model: str, into: dict[str, int] | None = None) -> dict[str, int]:
    """The token counts of a ``usage`` object (``output_tokens_details.thinking_tokens`` as
    ``thinking_tokens``), over ``into``: later events override earlier values, absent or null fields are
    skipped, a count that is not a non-negative integer is malformed."""
    fields = dict(into or {})
    if raw is None:
        return fields
    if not isinstance(raw, dict):
        raise malformed(KIND, model, "usage is not an object")
    details = raw.get("output_tokens_details")
    if details is not None and not isinstance(details, dict):
        raise malformed(KIND, model, "usage.output_tokens_details is not an object")
    for name, source in [(name, raw) for name in _USAGE_FIELDS] + [("thinking_tokens", details or {})]:
        value = source.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise malformed(KIND, model, f"usage.{name} is not a token count")
        fields[name] = value
    return fields


def to_usage(fields: Mapping[str, int]) -> Usage | None:
    """Canonical usage: Anthropic's ``input_tokens`` excludes cache reads and writes, ours includes them.
    None when the upstream reported no token counts at all."""
    if "input_tokens" not in fields and "output_tokens" not in fields:
        return None
    cached = fields.get("cache_read_input_tokens", 0)
    written = fields.get("cache_creation_input_tokens", 0)
    return Usage(
        input_tokens=fields.get("input_tokens", 0) + cached + written,
        output_tokens=fields.get("output_tokens", 0),
        cached_input_tokens=cached,
        cache_write_tokens=written,
        reasoning_tokens=fields.get("thinking_tokens", 0),  # output_tokens_details.thinking_tokens
    )


def required_text(value: object, model: str, what: str) -> str:
    """``value`` if it is a string, else ``malformed``."""
    if not isinstance(value, str):
        raise malformed(KIND, model, f"{what} is not a string")
    return value


def _text(value: object, model: str, what: str) -> str:
    """An optional string field (None is empty)."""
    return "" if value is None else required_text(value, model, what)


# --- the stream decoder --------------------------------------------------------------------------------


class AnthropicStreamDecoder:
    """Decoder of one Messages stream. In pass-through mode every event yields one chunk that carries the
    event's bytes (``raw``), so the client gets the upstream's stream as it was sent.

    Content blocks map onto canonical chunks: ``text`` -> ``delta``, ``tool_use`` -> ``ToolCallDelta``
    (numbered in the order the tool blocks start), ``thinking`` -> ``reasoning`` and its closing
    ``signature``, ``redacted_thinking`` -> one ``redacted`` chunk with its data (the block comes whole in
    its ``content_block_start``). In JSON mode (``json_object_mode``) the
    call of JSON mode's tool is the answer: its ``input_json_delta`` fragments are text deltas, and its
    ``tool_use`` stop is ``stop``.
    """

    def __init__(self, request: ChatRequest, target: ModelTarget, *, passthrough: bool = False) -> None:
        self._model = target.name
        self._passthrough = passthrough
        self._usage: dict[str, int] = {}
        self._blocks: dict[int, str] = {}  # content block index -> block type
        self._tools: dict[int, int] = {}  # content block index -> tool call position
        self._json_mode = not passthrough and json_object_mode(request)
        self._answers: set[int] = set()  # content block indexes of JSON mode's tool call
        self._stop_reason: str | None = None
        self._done = False
        self.upstream_model: str | None = None

    @property
    def done(self) -> bool:
        return self._done

    def feed(self, event: SSEEvent) -> list[StreamChunk]:
        data = parse_json(event.data, self._model, f"stream event {event.event or '(unnamed)'}")
        if not isinstance(data, dict):
            raise malformed(KIND, self._model, "a stream event is not a JSON object")
        kind = data.get("type") if isinstance(data.get("type"), str) else event.event
        chunk = self._event(kind, data)
        if self._passthrough:
            return [self._with_raw(chunk, event.raw)]
        return [chunk] if chunk is not None and chunk.has_output else []

    def finish(self) -> StreamChunk:
        if not self._done:
            raise UpstreamStreamError("the upstream stream ended before message_stop", provider=KIND, model=self._model)
        stop_reason = self._stop_reason
        if stop_reason == "tool_use" and self._answers and not self._tools:
            stop_reason = "end_turn"  # JSON mode: the tool call was the answer
        finish = normalize_finish_reason(stop_reason) or "stop"
        return StreamChunk(finish_reason=finish, usage=to_usage(self._usage))

    # -- events ------------------------------------------------------------------------------------

    def _event(self, kind: str | None, data: dict[str, Any]) -> StreamChunk | None:
        if kind == "error":
            raise typed_error(data.get("error"), self._model)
        if kind == "message_start":
            message = data.get("message")
            if not isinstance(message, dict):
                raise malformed(KIND, self._model, "message_start without a message")
            if isinstance(message.get("model"), str):
                self.upstream_model = message["model"]
            self._usage = usage_fields(message.get("usage"), self._model, self._usage)
            return None
        if kind == "content_block_start":
            return self._block_start(data)
        if kind == "content_block_delta":
            return self._block_delta(data)
        if kind == "message_delta":
            delta = data.get("delta")
            if not isinstance(delta, dict):
                raise malformed(KIND, self._model, "message_delta without a delta")
            reason = delta.get("stop_reason")
            if reason is not None:
                self._stop_reason = _text(reason, self._model, "stop_reason")
            self._usage = usage_fields(data.get("usage"), self._model, self._usage)
            return None
        if kind == "message_stop":
            self._done = True
        # content_block_stop, ping and event types added after this decoder was written carry no output
        return None

    def _index(self, data: dict[str, Any]) -> int:
        index = data.get("index")
        if isinstance(index, bool) or not isinstance(index, int):
            raise malformed(KIND, self._model, f"{data.get('type')} without a block index")
        return index

    def _block_start(self, data: dict[str, Any]) -> StreamChunk | None:
        index = self._index(data)
        block = data.get("content_block")
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise malformed(KIND, self._model, "content_block_start without a typed content block")
        kind = self._blocks[index] = block["type"]
        if kind == "text":
            return StreamChunk(delta=_text(block.get("text"), self._model, "text"))
        if kind == "thinking":
            return StreamChunk(
                reasoning=_text(block.get("thinking"), self._model, "thinking"),
                signature=block.get("signature") or None,
            )
        if kind == "tool_use":
            call_id = required_text(block.get("id"), self._model, "tool_use.id")
            name = required_text(block.get("name"), self._model, "tool_use.name")
            start = block.get("input")
            arguments = orjson.dumps(start).decode() if isinstance(start, dict) and start else ""
            if self._json_mode and name == JSON_OBJECT_NAME:
                self._answers.add(index)
                return StreamChunk(delta=arguments)  # nothing (no output) unless the input came whole
            position = self._tools.setdefault(index, len(self._tools))
            return StreamChunk(tool_calls=(ToolCallDelta(position, id=call_id, name=name, arguments=arguments),))
        if kind == "redacted_thinking":
            return StreamChunk(redacted=required_text(block.get("data"), self._model, "redacted_thinking.data"))
        return None  # server tool blocks: nothing canonical to stream

    def _block_delta(self, data: dict[str, Any]) -> StreamChunk | None:
        index = self._index(data)
        delta = data.get("delta")
        if not isinstance(delta, dict):
            raise malformed(KIND, self._model, "content_block_delta without a delta")
        kind = delta.get("type")
        if kind == "text_delta":
            return StreamChunk(delta=_text(delta.get("text"), self._model, "text_delta.text"))
        if kind == "thinking_delta":
            return StreamChunk(reasoning=_text(delta.get("thinking"), self._model, "thinking_delta.thinking"))
        if kind == "signature_delta":
            return StreamChunk(signature=_text(delta.get("signature"), self._model, "signature_delta") or None)
        if kind == "input_json_delta":
            if index not in self._tools and index not in self._answers:
                raise malformed(KIND, self._model, "input_json_delta for a block that is not a tool call")
            fragment = _text(delta.get("partial_json"), self._model, "input_json_delta.partial_json")
            if not fragment:
                return None
            if index in self._answers:
                return StreamChunk(delta=fragment)
            return StreamChunk(tool_calls=(ToolCallDelta(self._tools[index], arguments=fragment),))
        return None  # citations_delta and delta types added later

    @staticmethod
    def _with_raw(chunk: StreamChunk | None, raw: bytes) -> StreamChunk:
        return StreamChunk(raw=raw) if chunk is None else replace(chunk, raw=raw)
