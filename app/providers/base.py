"""The provider contract: every adapter speaks one vendor through its official SDK and offers the same
three methods. ``ModelTarget`` is a catalogue entry resolved at startup (upstream id, price, deadline).

Each adapter module has the same shape: pure translators (``to_vendor_request``, ``from_vendor_response``,
``from_vendor_chunk``) plus a class implementing ``Provider``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from app.domain import ChatRequest, Completion, StreamChunk, ToolCall, Usage
from app.pricing import Price
from app.settings.catalogue import ModelConfig


@dataclass(frozen=True, slots=True)
class ModelTarget:
    """A catalogue model ready to call."""

    name: str
    provider: str
    upstream_model: str
    timeout_s: float
    price: Price
    config: ModelConfig


@runtime_checkable
class Provider(Protocol):
    """One vendor endpoint with its long-lived pooled client."""

    kind: str

    async def complete(self, request: ChatRequest, target: ModelTarget) -> Completion:
        """One non-streamed completion; raises ``UpstreamError`` subclasses on failure."""
        ...

    def stream(self, request: ChatRequest, target: ModelTarget) -> AsyncIterator[StreamChunk]:
        """Stream the answer; the last chunk carries ``usage`` and ``finish_reason``."""
        ...

    async def aclose(self) -> None:
        """Close the pooled client."""
        ...


def build_completion(
    target: ModelTarget,
    *,
    content: str,
    usage: Usage,
    started: float,
    finish_reason: str | None,
    tool_calls: tuple[ToolCall, ...] = (),
    upstream_model: str | None = None,
) -> Completion:
    """Assemble a ``Completion``: latency from the monotonic ``started`` stamp, cost from the price."""
    return Completion(
        content=content,
        model=target.name,
        provider=target.provider,
        usage=usage,
        latency_ms=(time.perf_counter() - started) * 1000.0,
        cost=target.price.cost(usage.input_tokens, usage.output_tokens),
        finish_reason=finish_reason,
        tool_calls=tool_calls,
        upstream_model=upstream_model or target.upstream_model,
    )


FINISH_REASONS = {
    # OpenAI's names are ours; Anthropic and Gemini values map onto them.
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "BLOCKLIST": "content_filter",
    "SPII": "content_filter",
}


def normalize_finish_reason(reason: object) -> str | None:
    """The OpenAI-style finish reason for any vendor's value (enums are read by name)."""
    if reason is None:
        return None
    text = getattr(reason, "name", None) or str(reason)
    return FINISH_REASONS.get(text, text.lower())
