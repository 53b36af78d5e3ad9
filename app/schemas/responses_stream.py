"""Canonical ``StreamChunk``s as the Responses API's event sequence, with a ``sequence_number`` that grows by
one per event: ``response.created``, ``response.in_progress``; per output item ``response.output_item.added``,
its deltas (``response.reasoning_summary_part.added`` / ``response.reasoning_summary_text.delta`` for
reasoning; ``response.content_part.added`` / ``response.output_text.delta`` or ``response.refusal.delta``
for the message; ``response.function_call_arguments.delta`` for a tool call), their ``.done`` events and
``response.output_item.done``; then ``response.completed`` (or ``response.incomplete``). A failure after
the stream started is ``response.failed``, and nothing follows it.

One item is open at a time: output of another kind (or another tool call) closes it, a reasoning
signature closes the reasoning item it belongs to (one outside reasoning, a Gemini
thought signature on a text part, is not reasoning of its own).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from app.domain import ReasoningPart, StreamChunk, ToolCall, ToolCallDelta, Usage
from app.errors import GatewayError
from app.schemas.responses_request import DecodedResponses
from app.schemas.responses_response import (
    call_item,
    error_object,
    message_item,
    new_id,
    reasoning_item,
    response_body,
    status_of,
    text_part,
)

Event = tuple[str, dict[str, Any]]


@dataclass
class _Item:
    kind: str  # reasoning | message | function_call
    ident: str
    index: int  # output_index
    text: list[str] = field(default_factory=list)
    refusal: list[str] = field(default_factory=list)
    signature: str | None = None
    redacted: bool = False
    call_id: str = ""
    name: str = ""
    tool_index: int = -1


class ResponseEventEncoder:
    """Encodes one translated stream; ``output`` (full items, encrypted reasoning included) and ``usage``
    are there for storing the response once it completed."""

    def __init__(self, decoded: DecodedResponses, ident: str, model: str, provider: str | None = None) -> None:
        self.decoded, self.ident, self.model, self.provider = decoded, ident, model, provider
        self.created_at = int(time.time())
        self.sequence = 0
        self.output: list[dict[str, Any]] = []
        self.usage: Usage | None = None
        self.status = "in_progress"
        self._cut = False  # the answer stopped at its token limit or a filter: its message is incomplete
        self._open: _Item | None = None
        self._calls: dict[int, _Item] = {}

    # -- envelope

    def _event(self, kind: str, **fields: Any) -> Event:
        body = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return kind, body

    def snapshot(self, status: str, **extra: Any) -> dict[str, Any]:
        output = [self.public(item) for item in self.output]
        return response_body(
            self.decoded,
            ident=self.ident,
            created_at=self.created_at,
            model=self.model,
            status=status,
            output=output,
            usage=self.usage,
            **extra,
        )

    def public(self, item: dict[str, Any]) -> dict[str, Any]:
        """An item as the client sees it: encrypted reasoning only when it was included."""
        if item.get("type") == "reasoning" and not self.decoded.encrypted_reasoning:
            return {k: v for k, v in item.items() if k != "encrypted_content"}
        return item

    def start(self) -> list[Event]:
        return [
            self._event("response.created", response=self.snapshot("in_progress")),
            self._event("response.in_progress", response=self.snapshot("in_progress")),
        ]

    # -- chunks

    def encode(self, chunk: StreamChunk) -> list[Event]:
        events: list[Event] = []
        if chunk.reasoning:
            events += self._switch("reasoning")
            assert self._open is not None
            if not self._open.text:
                events.append(self._summary_part("response.reasoning_summary_part.added", ""))
            self._open.text.append(chunk.reasoning)
            events.append(
                self._item_event("response.reasoning_summary_text.delta", summary_index=0, delta=chunk.reasoning)
            )
        if chunk.redacted:  # one whole block of hidden reasoning
            events += self._switch("reasoning")
            assert self._open is not None
            self._open.signature, self._open.redacted = chunk.redacted, True
            events += self._close()
        if chunk.signature and self._open is not None and self._open.kind == "reasoning":
            self._open.signature = chunk.signature  # a signature outside reasoning (Gemini's) travels elsewhere
            events += self._close()
        if chunk.delta or chunk.refusal:
            events += self._text(chunk)
        for delta in chunk.tool_calls:
            events += self._tool(delta)
        if chunk.finish_reason is not None:
            status, incomplete = status_of(chunk.finish_reason)
            self._cut = status == "incomplete"
            events += self._close()
            self.usage = chunk.usage
            self.status = status
            kind = "response.completed" if self.status == "completed" else "response.incomplete"
            events.append(self._event(kind, response=self.snapshot(self.status, incomplete=incomplete)))
        return events

    def failed(self, exc: GatewayError) -> Event:
        """``response.failed`` for a stream that broke (the output so far as it is)."""
        self.status = "failed"
        return self._event("response.failed", response=self.snapshot("failed", error=error_object(exc)))

    def _item_event(self, kind: str, **fields: Any) -> Event:
        item = self._open
        assert item is not None
        return self._event(kind, item_id=item.ident, output_index=item.index, **fields)

    def _summary_part(self, kind: str, text: str) -> Event:
        return self._item_event(kind, summary_index=0, part={"type": "summary_text", "text": text})

    def _switch(self, kind: str, tool_index: int = -1) -> list[Event]:
        item = self._open
        if item is not None and item.kind == kind and item.tool_index == tool_index:
            return []
        events = self._close()
        prefix = {"reasoning": "rs", "message": "msg", "function_call": "fc"}[kind]
        item = _Item(kind, new_id(prefix), len(self.output), tool_index=tool_index)
        self._open = item
        self.output.append({})  # its place; filled when it is done
        if kind == "reasoning":
            added = reasoning_item(ReasoningPart(), item.ident, encrypted=False, done=False)
        elif kind == "message":
            added = message_item(item.ident, "", None, done=False)
        else:
            return events  # a function call is announced by _tool, which knows its id and name
        events.append(self._event("response.output_item.added", output_index=item.index, item=added))
        return events

    def _text(self, chunk: StreamChunk) -> list[Event]:
        events = self._switch("message")
        item = self._open
        assert item is not None
        if chunk.delta:
            if item.refusal:
                pass  # text after a refusal: kept in the refusal part's item as text below
            if not item.text:
                events.append(self._item_event("response.content_part.added", content_index=0, part=text_part("")))
            item.text.append(chunk.delta)
            events.append(
                self._item_event("response.output_text.delta", content_index=0, delta=chunk.delta, logprobs=[])
            )
        if chunk.refusal:
            index = 1 if item.text else 0
            if not item.refusal:
                part = {"type": "refusal", "refusal": ""}
                events.append(self._item_event("response.content_part.added", content_index=index, part=part))
            item.refusal.append(chunk.refusal)
            events.append(self._item_event("response.refusal.delta", content_index=index, delta=chunk.refusal))
        return events

    def _tool(self, delta: ToolCallDelta) -> list[Event]:
        events: list[Event] = []
        item = self._calls.get(delta.index)
        if item is None:
            events += self._switch("function_call", delta.index)
            item = self._open
            assert item is not None
            item.call_id, item.name = delta.id or new_id("call"), delta.name or ""
            self._calls[delta.index] = item
            space = self.decoded.namespaces.get(item.name)
            added = call_item(ToolCall(item.call_id, item.name, ""), item.ident, done=False, namespace=space)
            events.append(self._event("response.output_item.added", output_index=item.index, item=added))
        if delta.arguments:
            item.text.append(delta.arguments)
            events.append(
                self._event(
                    "response.function_call_arguments.delta",
                    item_id=item.ident,
                    output_index=item.index,
                    delta=delta.arguments,
                )
            )
        return events

    def _close(self) -> list[Event]:
        item = self._open
        if item is None:
            return []
        self._open = None
        text = "".join(item.text)
        events: list[Event] = []

        def ev(kind: str, **fields: Any) -> None:
            events.append(self._event(kind, item_id=item.ident, output_index=item.index, **fields))

        if item.kind == "reasoning":
            reasoning = ReasoningPart(text, item.signature, item.redacted, self.provider)
            full = reasoning_item(reasoning, item.ident, encrypted=True)
            if item.text:
                ev("response.reasoning_summary_text.done", summary_index=0, text=text)
                ev("response.reasoning_summary_part.done", summary_index=0, part={"type": "summary_text", "text": text})
        elif item.kind == "message":
            refusal = "".join(item.refusal)
            full = message_item(item.ident, text, None, cut=self._cut)
            full["content"] = []
            if item.text:
                ev("response.output_text.done", content_index=0, text=text, logprobs=[])
                ev("response.content_part.done", content_index=0, part=text_part(text))
                full["content"].append(text_part(text))
            if item.refusal:
                index = 1 if item.text else 0
                part = {"type": "refusal", "refusal": refusal}
                ev("response.refusal.done", content_index=index, refusal=refusal)
                ev("response.content_part.done", content_index=index, part=part)
                full["content"].append(part)
        else:
            call = ToolCall(item.call_id, item.name, text or "{}")
            full = call_item(call, item.ident, namespace=self.decoded.namespaces.get(item.name))
            ev("response.function_call_arguments.done", arguments=call.arguments, name=item.name)
        self.output[item.index] = full
        events.append(self._event("response.output_item.done", output_index=item.index, item=self.public(full)))
        return events
