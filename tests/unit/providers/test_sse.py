"""The SSE parser: events out of arbitrary byte splits, raw bytes kept exactly, bounded buffers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.providers.sse import EventTooLarge, SSEParser

STREAM = (
    b'event: message_start\ndata: {"x":1}\n\n'
    b": keep-alive comment\r\n"
    b"data: line1\r\ndata: line2\r\n\r\n"
    b"id: 7\nretry: 10\ndata:no-space\n\n"
    b"data: [DONE]\r\r"
)
EXPECTED = [("message_start", '{"x":1}'), (None, "line1\nline2"), (None, "no-space"), (None, "[DONE]")]


def parse_in_pieces(data: bytes, cuts: list[int]) -> list:
    parser = SSEParser()
    events = []
    last = 0
    for cut in sorted(set(cuts)):
        events += parser.feed(data[last:cut])
        last = cut
    events += parser.feed(data[last:])
    return events + parser.close()


@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=20))
def test_any_split_gives_the_same_events_and_bytes(cuts: list[int]) -> None:
    events = parse_in_pieces(STREAM, cuts)
    assert [(e.event, e.data) for e in events] == EXPECTED
    assert b"".join(e.raw for e in events) == STREAM


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"data: x", [(None, "x")]),  # no final blank line: still dispatched at the end
        (b"data: x\n", [(None, "x")]),
        (b"data: a\n\ndata: b", [(None, "a"), (None, "b")]),
        (b": only a comment\n\n", []),
        (b"event: ping\n\n", [("ping", "")]),
        (b"data\n\n", [(None, "")]),  # a field name alone has an empty value
        (b"data: \xff\xfe\n\n", [(None, "\ufffd\ufffd")]),  # invalid UTF-8 never raises here
    ],
)
def test_edge_cases(data: bytes, expected: list) -> None:
    parser = SSEParser()
    events = parser.feed(data) + parser.close()
    assert [(e.event, e.data) for e in events] == expected


def test_an_endless_line_is_bounded() -> None:
    parser = SSEParser(max_event_bytes=1024)
    parser.feed(b"data: " + b"x" * 1000)
    with pytest.raises(EventTooLarge):
        parser.feed(b"x" * 100)


def test_buffer_is_compacted_between_events() -> None:
    parser = SSEParser(max_event_bytes=1024)
    for _ in range(1000):  # 1000 small events never count against the bound together
        assert len(parser.feed(b"data: " + b"y" * 100 + b"\n\n")) == 1


LF_STREAM = (
    b'event: message_start\ndata: {"x":1}\n\n'
    b": keep-alive comment\n"
    b"data: line1\ndata: line2\n\n"
    b"\n\n"  # blank lines between events
    b": a comment alone\n\n"
    b"id: 7\nretry: 10\ndata:no-space\n\n\n"
    b"event: ping\n\n"
    b"data: [DONE]\n\n"
)


@given(st.lists(st.integers(min_value=0, max_value=len(LF_STREAM)), max_size=20))
def test_lf_only_streams_give_what_the_line_parser_gives(cuts: list[int]) -> None:
    """LF-only input takes the whole-event fast path; the same input with CRLF line ends takes the line
    parser: the same events, and each path keeps its input's bytes."""
    fast = parse_in_pieces(LF_STREAM, cuts)
    crlf = LF_STREAM.replace(b"\n", b"\r\n")
    slow = parse_in_pieces(crlf, [round(c * len(crlf) / len(LF_STREAM)) for c in cuts])
    assert [(e.event, e.data) for e in fast] == [(e.event, e.data) for e in slow]
    assert [(e.event, e.data) for e in fast][:3] == [
        ("message_start", '{"x":1}'),
        (None, "line1\nline2"),
        (None, "no-space"),
    ]
    kept = b"".join(e.raw for e in fast)
    assert kept.replace(b"\n", b"\r\n") == b"".join(e.raw for e in slow)
    assert kept == LF_STREAM.replace(b"\n\n\n\n: a comment alone\n\n", b"\n\n").replace(b"\n\n\n", b"\n\n")
