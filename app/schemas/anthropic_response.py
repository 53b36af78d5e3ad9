"""Anthropic Messages answers at the edge: a canonical ``Completion`` as a ``message`` body and canonical
``StreamChunk``s as Anthropic's stream events. Pure (the message id is passed in).

Content: reasoning -> ``thinking`` blocks or ``redacted_thinking`` (Anthropic's own signature; another
vendor's reasoning under a gateway-made one, ``app.providers.anthropic_thinking``, never an empty one); the
text -> one ``text`` block; tool calls -> ``tool_use`` blocks whose ids name the model
(``app.schemas.anthropic_ids``); a refusal -> its text with ``stop_reason: "refusal"``.
Usage in Anthropic's convention: ``input_tokens`` excludes cache reads (``cache_read_input_tokens``) and
cache writes (``cache_creation_input_tokens``), ``output_tokens`` includes the thinking.

A stream is exactly Anthropic's sequence: ``message_start``; per block ``content_block_start``,
``content_block_delta`` (``text_delta``, ``thinking_delta``, ``signature_delta``, ``input_json_delta``) and
``content_block_stop`` (one ``ping`` after the first block starts; a ``thinking`` block always closes with a
``signature_delta``, a ``redacted_thinking`` block comes whole in its start); then ``message_delta`` (stop reason,
usage) and ``message_stop``.
"""

from __future__ import annotations

import uuid
from typing import Any

from app.domain import Completion, StreamChunk, ToolCallDelta, Usage
from app.providers.anthropic_thinking import thinking_signature
from app.providers.codec_util import tool_arguments
from app.schemas.anthropic_ids import tag_tool_id

STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "content_filter": "refusal"}


def message_id() -> str:
    return f"msg_sy{uuid.uuid4().hex}"


def stop_reason(finish_reason: str | None, *, tools: bool = False) -> str:
    if finish_reason is None:
        return "tool_use" if tools else "end_turn"
    return STOP_REASONS.get(finish_reason, "end_turn")


def usage_dict(usage: Usage) -> dict[str, Any]:
    """Anthropic's usage object of canonical usage (whose input counts the cache reads and writes)."""
    cached, written = usage.cached_input_tokens, usage.cache_write_tokens
    return {
        "input_tokens": max(0, usage.input_tokens - cached - written),
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": cached,
        "output_tokens": usage.output_tokens,
    }


def message_body(completion: Completion, *, ident: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``message`` body; ``model`` is the catalogue name of the model that answered."""
    content: list[dict[str, Any]] = []
    for part in completion.reasoning:
        owner = part.provider or completion.provider
        if part.redacted:
            if part.signature:
                data = thinking_signature(owner, part.signature, redacted=True)
                content.append({"type": "redacted_thinking", "data": data})
        else:
            signature = thinking_signature(owner, part.signature)
            content.append({"type": "thinking", "thinking": part.text, "signature": signature})
    text = completion.refusal if completion.refusal is not None else completion.content
    if text or not completion.tool_calls:
        content.append({"type": "text", "text": text})
    for call in completion.tool_calls:
        content.append(
            {
                "type": "tool_use",
                "id": tag_tool_id(completion.model, call.id),
                "name": call.name,
                "input": tool_arguments(call.arguments),
            }
        )
    reason = "refusal" if completion.refusal is not None else stop_reason(completion.finish_reason)
    if completion.tool_calls and reason == "end_turn":
        reason = "tool_use"
    body: dict[str, Any] = {
        "id": ident,
        "type": "message",
        "role": "assistant",
        "model": completion.model,
        "content": content,
        "stop_reason": reason,
        "stop_sequence": None,
        "usage": usage_dict(completion.usage),
    }
    if extra is not None:
        body["switchyard"] = extra
    return body


# --- streams ----------------------------------------------------------------------------------------------

Event = tuple[str, dict[str, Any]]  # (event name, data)


class EventEncoder:
    """Anthropic stream events of one translated stream. ``start()`` opens it; ``encode(chunk)`` turns
    each canonical chunk into events (the closing chunk ends the message)."""

    def __init__(self, ident: str, model: str, input_tokens: int, *, provider: str) -> None:
        self.ident, self.model, self.input_tokens = ident, model, input_tokens
        self.provider = provider  # whose reasoning it is (signatures are sealed unless Anthropic's)
        self.index = -1  # the open content block's index
        self.open: str | None = None  # the open block's type
        self.signed = False  # the open thinking block got its signature
        self.tools: dict[int, int] = {}  # canonical tool call index -> content block index
        self.pinged = False
        self.refused = False
        self.called = False

    def start(self) -> list[Event]:
        message: dict[str, Any] = {
            "id": self.ident,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {
                "input_tokens": self.input_tokens,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": 1,
            },
        }
        return [("message_start", {"type": "message_start", "message": message})]

    def _close(self) -> list[Event]:
        if self.open is None:
            return []
        events = [] if self.open != "thinking" or self.signed else [self._signature(None)]
        self.open = None
        return [*events, ("content_block_stop", {"type": "content_block_stop", "index": self.index})]

    def _signature(self, signature: str | None) -> Event:
        """The ``signature_delta`` that closes the open thinking block (a gateway-made one for another
        vendor's reasoning, signed or not)."""
        self.signed = True
        return self._delta({"type": "signature_delta", "signature": thinking_signature(self.provider, signature)})

    def _redacted(self, data: str) -> list[Event]:
        """A whole ``redacted_thinking`` block: its start carries the data, no deltas."""
        block = {"type": "redacted_thinking", "data": thinking_signature(self.provider, data, redacted=True)}
        return [*self._open(block), *self._close()]

    def _open(self, block: dict[str, Any]) -> list[Event]:
        events = self._close()
        self.index += 1
        self.open, self.signed = block["type"], False
        start = {"type": "content_block_start", "index": self.index, "content_block": block}
        events.append(("content_block_start", start))
        if not self.pinged:
            self.pinged = True
            events.append(("ping", {"type": "ping"}))
        return events

    def _delta(self, delta: dict[str, Any], index: int | None = None) -> Event:
        at = self.index if index is None else index
        return ("content_block_delta", {"type": "content_block_delta", "index": at, "delta": delta})

    def _text(self, text: str) -> list[Event]:
        events = [] if self.open == "text" else self._open({"type": "text", "text": ""})
        return [*events, self._delta({"type": "text_delta", "text": text})]

    def _tool(self, delta: ToolCallDelta) -> list[Event]:
        events: list[Event] = []
        block = self.tools.get(delta.index)
        if block is None or (delta.id is not None and self.open != "tool_use"):
            call_id = tag_tool_id(self.model, delta.id or f"call_{uuid.uuid4().hex[:24]}")
            events += self._open({"type": "tool_use", "id": call_id, "name": delta.name or "", "input": {}})
            block = self.tools[delta.index] = self.index
            self.called = True
        if delta.arguments:
            events.append(self._delta({"type": "input_json_delta", "partial_json": delta.arguments}, block))
        return events

    def encode(self, chunk: StreamChunk) -> list[Event]:
        events: list[Event] = []
        if chunk.redacted:
            events += self._redacted(chunk.redacted)
        if chunk.reasoning:
            if self.open != "thinking" or self.signed:
                events += self._open({"type": "thinking", "thinking": "", "signature": ""})
            events.append(self._delta({"type": "thinking_delta", "thinking": chunk.reasoning}))
        if chunk.signature and self.open == "thinking" and not self.signed:
            events.append(self._signature(chunk.signature))
        if chunk.delta:
            events += self._text(chunk.delta)
        if chunk.refusal:
            self.refused = True
            events += self._text(chunk.refusal)
        for delta in chunk.tool_calls:
            events += self._tool(delta)
        if chunk.finish_reason is not None:
            events += self.finish(chunk.finish_reason, chunk.usage or Usage())
        return events

    def finish(self, finish_reason: str, usage: Usage) -> list[Event]:
        events = self._close()
        reason = "refusal" if self.refused else stop_reason(finish_reason)
        if self.called and reason == "end_turn":
            reason = "tool_use"
        delta = {"type": "message_delta", "delta": {"stop_reason": reason, "stop_sequence": None}}
        events.append(("message_delta", {**delta, "usage": usage_dict(usage)}))
        events.append(("message_stop", {"type": "message_stop"}))
        return events
