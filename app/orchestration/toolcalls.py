"""Reassembly of streamed tool calls, whatever the upstream's fragmenting quirks.

Vendors stream a tool call as fragments: OpenAI sends ``id``/``name`` on the first fragment of an ``index``
and argument pieces after it; Anthropic sends a ``tool_use`` block start and ``input_json_delta`` pieces;
Gemini sends each call whole. OpenAI-compatible servers add quirks: the ``id`` or ``name`` repeated on every
fragment (a client that concatenates strings would then see ``call_1call_1``), a missing ``id``, or the
same ``index`` reused for the next parallel call (told apart only by a new ``id``).

``ToolCallAssembler.add`` turns each upstream fragment into the normalized fragment to forward (the id,
type and name once, on a call's first fragment; then argument pieces) and keeps the complete calls.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from app.domain import ToolCall, ToolCallDelta


@dataclass
class _Slot:
    index: int
    id: str  # the id forwarded to the client
    upstream_id: str | None  # the id the upstream gave, if any
    name: str | None = None
    parts: list[str] = field(default_factory=list)


class ToolCallAssembler:
    """Folds upstream ``ToolCallDelta`` fragments into complete calls and normalized fragments."""

    def __init__(self) -> None:
        self._slots: list[_Slot] = []
        self._by_upstream: dict[int, _Slot] = {}

    def add(self, delta: ToolCallDelta) -> ToolCallDelta | None:
        """The normalized fragment to forward, or None when ``delta`` adds nothing new."""
        slot = self._by_upstream.get(delta.index)
        first = slot is None or (delta.id is not None and slot.upstream_id is not None and delta.id != slot.upstream_id)
        if first:
            slot = _Slot(len(self._slots), delta.id or f"call_{uuid.uuid4().hex[:24]}", delta.id)
            self._slots.append(slot)
            self._by_upstream[delta.index] = slot
        assert slot is not None
        if slot.upstream_id is None and delta.id is not None:
            slot.upstream_id = delta.id  # a late id; the client already has the one we made up
        name = None
        if delta.name and slot.name is None:
            slot.name = name = delta.name
        if delta.arguments:
            slot.parts.append(delta.arguments)
        if not first and name is None and not delta.arguments:
            return None
        return ToolCallDelta(index=slot.index, id=slot.id if first else None, name=name, arguments=delta.arguments)

    @property
    def started(self) -> bool:
        return bool(self._slots)

    def calls(self) -> tuple[ToolCall, ...]:
        """The complete calls in order; empty arguments become ``{}``."""
        return tuple(ToolCall(s.id, s.name or "", "".join(s.parts) or "{}") for s in self._slots)


def assemble(deltas: list[ToolCallDelta]) -> tuple[ToolCall, ...]:
    """Complete calls from a list of fragments (convenience for tests and non-streaming callers)."""
    assembler = ToolCallAssembler()
    for delta in deltas:
        assembler.add(delta)
    return assembler.calls()
