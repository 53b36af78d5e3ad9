"""Reassembly of streamed tool-call fragments, including OpenAI-compatible servers' quirks."""

from __future__ import annotations

import json

from app.domain import ToolCallDelta
from app.orchestration.toolcalls import ToolCallAssembler, assemble


def _forwarded(deltas: list[ToolCallDelta]) -> tuple[ToolCallAssembler, list[ToolCallDelta]]:
    assembler = ToolCallAssembler()
    out = [d for d in (assembler.add(x) for x in deltas) if d is not None]
    return assembler, out


def test_openai_style_fragments() -> None:
    assembler, out = _forwarded(
        [
            ToolCallDelta(0, id="call_a", name="f", arguments=""),
            ToolCallDelta(0, arguments='{"x"'),
            ToolCallDelta(0, arguments=": 1}"),
            ToolCallDelta(1, id="call_b", name="g"),
            ToolCallDelta(1, arguments="{}"),
        ]
    )
    calls = assembler.calls()
    assert [(c.id, c.name, json.loads(c.arguments)) for c in calls] == [("call_a", "f", {"x": 1}), ("call_b", "g", {})]
    assert [d.id for d in out] == ["call_a", None, None, "call_b", None]
    assert [d.index for d in out] == [0, 0, 0, 1, 1]


def test_id_and_name_repeated_on_every_fragment_are_sent_once() -> None:
    _, out = _forwarded(
        [
            ToolCallDelta(0, id="call_a", name="f", arguments='{"x":'),
            ToolCallDelta(0, id="call_a", name="f", arguments="2}"),
        ]
    )
    assert [(d.id, d.name, d.arguments) for d in out] == [("call_a", "f", '{"x":'), (None, None, "2}")]


def test_reused_index_with_a_new_id_is_a_new_call() -> None:
    calls = assemble(
        [
            ToolCallDelta(0, id="one", name="f", arguments='{"a":1}'),
            ToolCallDelta(0, id="two", name="g", arguments='{"b":2}'),
        ]
    )
    assert [(c.id, c.name, c.arguments) for c in calls] == [("one", "f", '{"a":1}'), ("two", "g", '{"b":2}')]


def test_missing_id_is_made_up_once_and_a_late_id_does_not_split_the_call() -> None:
    assembler, out = _forwarded(
        [ToolCallDelta(3, name="f"), ToolCallDelta(3, id="late", arguments="{}"), ToolCallDelta(3, arguments="")]
    )
    calls = assembler.calls()
    assert len(calls) == 1 and calls[0].id.startswith("call_") and calls[0].arguments == "{}"
    assert out[0].id == calls[0].id and out[0].index == 0
    assert len(out) == 2  # the empty fragment adds nothing


def test_no_arguments_become_an_empty_object() -> None:
    assert assemble([ToolCallDelta(0, id="x", name="now")])[0].arguments == "{}"
