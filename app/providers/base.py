"""The provider contract: every vendor is one pure ``Codec`` over the shared ``Transport``.

``ModelTarget`` is a catalogue entry resolved at startup (upstream id, price, deadlines). A codec turns the
canonical request into an ``HttpCall`` and the vendor's answer (``HttpAnswer`` or SSE events) back into
canonical values; it never does I/O. The transport (``app.providers.transport``) owns the pooled aiohttp
session, the auth header, the timeouts and the one error boundary. ``CodecProvider``
(``app.providers.provider``) joins the two into a ``Provider``; the in-process model implements
``Provider`` directly.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import field
from typing import Any, ClassVar, Protocol, runtime_checkable

from app.domain import ChatRequest, Choice, Completion, Passthrough, ReasoningPart, StreamChunk, ToolCall, Usage
from app.errors import UpstreamError
from app.pricing import Price
from app.records import record
from app.settings.catalogue import ModelConfig


@record(slots=True)
class ModelTarget:
    """A catalogue model ready to call. ``timeout_s`` bounds the time to the first byte, ``idle_timeout_s``
    every idle gap between chunks; neither bounds the length of a healthy stream."""

    name: str
    provider: str
    upstream_model: str
    timeout_s: float
    price: Price
    config: ModelConfig

    @property
    def idle_timeout_s(self) -> float:
        """The longest gap between two chunks of an answer (``idle_timeout_s`` in the catalogue, else
        ``timeout_s``)."""
        return self.config.idle_timeout_s or self.timeout_s


# --- what a codec says to the transport ------------------------------------------------------------------


@record(slots=True)
class HttpCall:
    """One upstream HTTP request. ``path`` is appended to the endpoint's base URL."""

    path: str
    body: bytes
    stream: bool = False
    method: str = "POST"
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)  # besides content-type and auth


@record(slots=True)
class HttpAnswer:
    """A complete upstream answer: status, headers (lower-case names) and body bytes."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()


@record(slots=True)
class SSEEvent:
    """One server-sent event: its ``event`` name (None when absent), its joined ``data`` lines and the
    event's bytes exactly as received (for the pass-through)."""

    event: str | None
    data: str
    raw: bytes


@record(slots=True)
class Decoded:
    """A vendor answer in canonical form, before the provider adds timing and cost."""

    content: str
    finish_reason: str | None
    usage: Usage | None  # None: the vendor sent none (the provider estimates it and flags it)
    tool_calls: tuple[ToolCall, ...] = ()
    reasoning: tuple[ReasoningPart, ...] = ()
    refusal: str | None = None
    logprobs: Any = None
    upstream_model: str | None = None
    more_choices: tuple[Choice, ...] = ()
    passthrough: Passthrough | None = None


@record(slots=True)
class Capabilities:
    """What a target can honour; the gateway refuses (explicit model) or skips (routing) a target that
    lacks a feature the request needs, before any call."""

    images: bool = True
    image_urls: bool = True  # fetches https images itself (else the gateway fetches and inlines them)
    files: bool = False
    json_schema: bool = True
    json_object: bool = True
    tools: bool = True
    strict_tools: bool = True
    parallel_tool_control: bool = True
    reasoning: bool = True
    logprobs: bool = False
    logit_bias: bool = False
    seed: bool = True
    penalties: bool = True
    top_k: bool = False
    native_n: bool = False  # else n > 1 runs as parallel calls
    droppable: frozenset[str] = frozenset()  # which DROPPABLE_OPTIONS are forwarded (the rest are dropped)


class StreamDecoder(Protocol):
    """Stateful decoder of one upstream stream."""

    def feed(self, event: SSEEvent) -> Iterable[StreamChunk]:
        """The canonical chunks of one event; raises ``UpstreamError`` for an in-stream error event or a
        malformed event."""
        ...

    def finish(self) -> StreamChunk:
        """The closing chunk (finish reason, usage; ``usage`` None if the vendor sent none) once the
        upstream ended; raises ``UpstreamStreamError`` if it ended before the model finished."""
        ...

    @property
    def done(self) -> bool:
        """The vendor's own end marker was seen (``[DONE]``, ``message_stop``, a finish reason)."""
        ...


class Codec(Protocol):
    """One vendor's wire format, pure: no I/O, no clock."""

    kind: ClassVar[str]
    default_base_url: ClassVar[str]
    protocol: ClassVar[str | None]  # the client protocol it speaks natively ("openai.chat"), for pass-through

    def auth_headers(self, api_key: str | None) -> dict[str, str]:
        """The headers that carry the key (``Authorization: Bearer``, ``x-api-key``, ``x-goog-api-key``)."""
        ...

    def capabilities(self, target: ModelTarget) -> Capabilities: ...

    def encode(self, request: ChatRequest, target: ModelTarget, *, stream: bool) -> HttpCall:
        """The vendor request; ``InvalidRequestError`` if the request cannot be expressed."""
        ...

    def decode(self, answer: HttpAnswer, request: ChatRequest, target: ModelTarget) -> Decoded:
        """A 2xx answer in canonical form; ``UpstreamError`` if it is malformed, empty or an error. For a
        pass-through request ``Decoded.passthrough`` keeps the answer's bytes."""
        ...

    def stream_decoder(self, request: ChatRequest, target: ModelTarget) -> StreamDecoder:
        """A decoder for the stream of ``request`` (in pass-through mode when ``request.source`` is in
        this codec's ``protocol``: every chunk then carries its event's ``raw`` bytes)."""
        ...

    def error(self, answer: HttpAnswer, target: ModelTarget) -> UpstreamError:
        """The typed error for a non-2xx answer (reads the vendor's error body; never the text)."""
        ...


@runtime_checkable
class Provider(Protocol):
    """One vendor endpoint with its long-lived pooled client."""

    kind: str

    def capabilities(self, target: ModelTarget) -> Capabilities: ...

    async def complete(self, request: ChatRequest, target: ModelTarget) -> Completion:
        """One non-streamed completion; raises ``UpstreamError`` subclasses on failure."""
        ...

    def stream(self, request: ChatRequest, target: ModelTarget) -> AsyncIterator[StreamChunk]:
        """Stream the answer; the last chunk carries ``usage`` and ``finish_reason``."""
        ...

    async def aclose(self) -> None:
        """Close the pooled client."""
        ...


FINISH_REASONS = {
    # OpenAI's names are ours; Anthropic and Gemini values map onto them.
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "stop",  # as OpenAI reports a refusal: finish "stop" with the message's ``refusal`` set
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "BLOCKLIST": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "MALFORMED_FUNCTION_CALL": "error",
}


def normalize_finish_reason(reason: object) -> str | None:
    """The OpenAI-style finish reason for any vendor's value."""
    if reason is None:
        return None
    text = str(reason)
    return FINISH_REASONS.get(text, text.lower())
