"""Scripted behaviours for the fake upstream, and the vendor-neutral plan built from them."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

ToolCall = dict[str, Any]
"""One scripted tool call: ``{"name": str, "arguments": dict}``."""


@dataclass(frozen=True)
class Reply:
    """One scripted upstream behaviour, consumed by one request.

    ``text=None`` echoes ``"echo: <last user message text>"`` (or, when ``tool_calls`` is set,
    emits no text). ``status != 200`` answers with the vendor's error body instead.
    ``error_message=None`` uses a realistic per-vendor message for the status.
    ``retry_after`` sets a ``Retry-After`` header (a 429 without it gets ``Retry-After: 1``).
    ``cut_after_chunks`` (streaming) closes the connection abruptly after N content chunks,
    without terminating events; ``error_after_chunks`` (streaming) instead sends the vendor's
    in-stream error event after N content chunks (HTTP status stays 200) with
    ``stream_error_status`` choosing its type. ``truncated`` reports a max-tokens stop.
    ``input_tokens``/``output_tokens`` of None are whitespace word counts.
    ``reasoning`` is reasoning (thinking) text the model emits before its answer (each vendor in its own
    form, with a signature where the vendor signs it); ``refusal`` a refusal instead of the answer;
    ``cached_input_tokens``/``cache_write_tokens``/``reasoning_tokens`` are reported in the usage in the
    vendor's own fields.

    Faults (``tests/integration/test_faults.py``), each replacing the normal answer:
    ``raw_body`` is sent as the whole body with ``status`` and ``content_type`` (no vendor error body, no
    added headers: a 429 then has no ``Retry-After``); ``truncate_body`` cuts the vendor's JSON answer to N
    bytes (a complete HTTP body with a matching ``Content-Length``); ``body_transform`` rewrites the
    vendor's JSON answer (``choices: []``, usage with strings, no usage...) before it is sent;
    ``error_in_200`` answers HTTP 200 with the vendor's error body for that status; ``socket_fault``
    misbehaves below HTTP (``non_http``: bytes that are not HTTP, then close; ``close``: close without an
    answer; ``reset``: TCP reset without an answer; ``reset_mid_body``: the head and half the body, or for
    a stream its first two content chunks, then a reset); ``endless`` streams content chunks forever
    (every ``chunk_delay_s``, at least 10 ms; a non-streamed answer sends whitespace forever) until the
    client goes away; ``drip_s`` sends the answer one byte every ``drip_s`` seconds after
    ``drip_after_chunks`` content chunks went out normally.
    """

    text: str | None = None
    delay_s: float = 0.0
    status: int = 200
    error_message: str | None = None
    retry_after: float | None = None
    chunk_delay_s: float = 0.0
    cut_after_chunks: int | None = None
    error_after_chunks: int | None = None
    stream_error_status: int = 529
    tool_calls: list[ToolCall] | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    truncated: bool = False
    reasoning: str | None = None
    refusal: str | None = None
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    raw_body: bytes | None = None
    content_type: str = "application/json"
    truncate_body: int | None = None
    body_transform: Callable[[dict[str, Any]], Any] | None = None
    error_in_200: int | None = None
    socket_fault: Literal["non_http", "close", "reset", "reset_mid_body"] | None = None
    endless: bool = False
    drip_s: float | None = None
    drip_after_chunks: int = 0

    @property
    def is_fault(self) -> bool:
        """Whether this reply replaces the normal answer with one of the faults above."""
        return (
            self.raw_body is not None
            or self.truncate_body is not None
            or self.body_transform is not None
            or self.error_in_200 is not None
            or self.socket_fault is not None
            or self.endless
            or self.drip_s is not None
        )


@dataclass(frozen=True)
class ParsedRequest:
    """What the fake needs from a vendor request body."""

    model: str
    stream: bool
    last_user_text: str
    input_text: str
    include_usage: bool = False


@dataclass(frozen=True)
class Plan:
    """A resolved reply: exactly what to answer, in vendor-neutral form."""

    model: str
    text: str
    tool_calls: list[ToolCall]
    input_tokens: int
    output_tokens: int
    truncated: bool
    ident: str = field(default_factory=lambda: uuid.uuid4().hex[:24])
    reasoning: str | None = None
    refusal: str | None = None
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens


def word_count(text: str) -> int:
    """Whitespace word count, the fake's notion of a token."""
    return len(text.split())


def split_chunks(text: str) -> list[str]:
    """Split text into word chunks (each keeps its trailing whitespace); ''.join() restores it."""
    return [part for part in re.split(r"(?<=\s)(?=\S)", text) if part]


def json_fragments(text: str, size: int = 8) -> list[str]:
    """Split a JSON string into fixed-size fragments, like streamed tool arguments."""
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def arguments_json(call: ToolCall) -> str:
    """The tool call's arguments as the JSON string vendors put on the wire."""
    return json.dumps(call.get("arguments") or {}, separators=(",", ":"))


def resolve(reply: Reply, parsed: ParsedRequest) -> Plan:
    """Turn a scripted reply plus the parsed request into a concrete plan."""
    calls = [dict(c) for c in reply.tool_calls or []]
    default_text = "" if calls else f"echo: {parsed.last_user_text}"
    text = default_text if reply.text is None else reply.text
    out_words = word_count(text) + sum(word_count(f"{c['name']} {json.dumps(c.get('arguments') or {})}") for c in calls)
    return Plan(
        model=parsed.model,
        text=text,
        tool_calls=calls,
        input_tokens=word_count(parsed.input_text) if reply.input_tokens is None else reply.input_tokens,
        output_tokens=out_words if reply.output_tokens is None else reply.output_tokens,
        truncated=reply.truncated,
        reasoning=reply.reasoning,
        refusal=reply.refusal,
        cached_input_tokens=reply.cached_input_tokens,
        cache_write_tokens=reply.cache_write_tokens,
        reasoning_tokens=reply.reasoning_tokens,
    )


def content_text(content: Any, text_keys: tuple[str, ...] = ("text",)) -> str:
    """Join the text of a vendor content value: a string, or a list of typed parts/blocks.

    Nested ``content`` (e.g. Anthropic ``tool_result`` blocks) is included.
    """
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    pieces: list[str] = []
    if isinstance(content, list):
        for part in content:
            if isinstance(part, str):
                pieces.append(part)
            elif isinstance(part, dict):
                for key in text_keys:
                    if isinstance(part.get(key), str):
                        pieces.append(part[key])
                if "content" in part:
                    pieces.append(content_text(part["content"], text_keys))
    return " ".join(p for p in pieces if p)


@dataclass(frozen=True)
class StreamEvent:
    """One pre-encoded SSE event; ``content`` marks chunks that carry model output."""

    data: bytes
    content: bool = False


@dataclass(frozen=True)
class WireError:
    """A vendor error response: status, JSON body and extra headers."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def retry_after_value(seconds: float) -> str:
    """Format a Retry-After header value (integers without a decimal point)."""
    return str(int(seconds)) if float(seconds).is_integer() else str(seconds)
