"""Chunks decoded from one read merge only where nothing is lost: plain text of one choice."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from app.domain import StreamChunk, ToolCallDelta, Usage
from app.providers.coalesce import coalesce


def test_a_run_of_text_becomes_one_chunk() -> None:
    merged = coalesce([StreamChunk(delta="one "), StreamChunk(delta="two "), StreamChunk(delta="three")])
    assert merged == [StreamChunk(delta="one two three")]


def test_anything_but_text_stays_as_it_is_and_ends_the_run() -> None:
    tool = StreamChunk(tool_calls=(ToolCallDelta(index=0, id="c1", name="f", arguments="{"),))
    thinking = StreamChunk(reasoning="hmm", signature="sig")
    final = StreamChunk(finish_reason="stop", usage=Usage(1, 2))
    chunks = [StreamChunk(delta="a"), StreamChunk(delta="b"), tool, tool, thinking, StreamChunk(delta="c"), final]
    assert coalesce(chunks) == [StreamChunk(delta="ab"), tool, tool, thinking, StreamChunk(delta="c"), final]


def test_choices_do_not_mix() -> None:
    chunks = [StreamChunk(delta="a"), StreamChunk(delta="x", choice=1), StreamChunk(delta="y", choice=1)]
    assert coalesce(chunks) == [StreamChunk(delta="a"), StreamChunk(delta="xy", choice=1)]


def test_raw_bytes_merge_only_when_the_protocol_allows() -> None:
    chunks = [StreamChunk(raw=b"data: 1\n\n"), StreamChunk(delta="hi", raw=b"data: 2\n\n")]
    assert coalesce(chunks) == chunks
    assert coalesce(chunks, raw=True) == [StreamChunk(delta="hi", raw=b"data: 1\n\ndata: 2\n\n")]
    usage_only = StreamChunk(raw=b"data: u\n\n", raw_usage_only=True)
    assert coalesce([*chunks, usage_only], raw=True)[-1] is usage_only  # it is forwarded or not on its own


texts = st.lists(st.tuples(st.text(max_size=5), st.integers(0, 1), st.booleans()), max_size=12)


@given(texts)
def test_the_text_and_bytes_of_each_choice_are_kept_in_order(parts: list[tuple[str, int, bool]]) -> None:
    chunks = [
        StreamChunk(delta=text, choice=choice, finish_reason="stop" if final else None, raw=text.encode())
        for text, choice, final in parts
    ]
    merged = coalesce(chunks, raw=True)
    for choice in (0, 1):
        assert "".join(c.delta for c in merged if c.choice == choice) == "".join(
            c.delta for c in chunks if c.choice == choice
        )
    assert b"".join(c.raw or b"" for c in merged) == b"".join(c.raw or b"" for c in chunks)
    assert [c.finish_reason for c in merged if c.finish_reason] == [c.finish_reason for c in chunks if c.finish_reason]
