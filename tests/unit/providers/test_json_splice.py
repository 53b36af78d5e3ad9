"""``splice``: the client's bytes with only the gateway's members changed, and the same JSON as a fresh
encoding in every case (property-tested over arbitrary objects and spellings)."""

from __future__ import annotations

import json
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from app.providers.json_splice import splice

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(["model", "a", "é", 'q"k']), inner),
    max_leaves=12,
)
SPELLINGS = st.sampled_from([(",", ":"), (", ", ": "), (" ,  ", " :\n ")])


def encode(value: Any, separators: tuple[str, str], ascii_only: bool) -> bytes:
    return json.dumps(value, separators=separators, ensure_ascii=ascii_only).encode()


@settings(max_examples=300, deadline=None)
@given(
    members=st.dictionaries(st.text(max_size=6), VALUES, max_size=5),
    separators=SPELLINGS,
    ascii_only=st.booleans(),
    model_first=st.booleans(),
    add_stream=st.booleans(),
)
def test_the_result_is_the_body(
    members: dict[str, Any], separators: tuple[str, str], ascii_only: bool, model_first: bool, add_stream: bool
) -> None:
    members.pop("stream", None)
    original = {"model": "client-model", **members} if model_first else {**members, "model": "client-model"}
    raw = encode(original, separators, ascii_only)
    parsed = orjson.loads(raw)
    body = {**parsed, "model": "upstream/model-1"}
    if add_stream:
        body["stream"] = True
    out = splice(raw, parsed, body)
    assert orjson.loads(out) == body
    if not add_stream:  # only a string swapped: everything else is the client's spelling, byte for byte
        assert out == encode({**original, "model": "upstream/model-1"}, separators, ascii_only)


def test_nested_members_of_the_same_name_are_left_alone() -> None:
    raw = b'{"messages": [{"role": "user", "content": {"model": "x"}}], "tools": [{"model": "y"}], "model": "x"}'
    parsed = orjson.loads(raw)
    out = splice(raw, parsed, {**parsed, "model": "up"})
    assert (
        out == b'{"messages": [{"role": "user", "content": {"model": "x"}}], "tools": [{"model": "y"}], "model": "up"}'
    )


def test_unchanged_bodies_are_the_clients_bytes() -> None:
    raw = b'{ "model" : "m",\n  "temperature": 1e0 }'
    parsed = orjson.loads(raw)
    assert splice(raw, parsed, dict(parsed)) is raw


def test_a_replaced_object_and_an_added_member() -> None:
    raw = b'{"model":"m","stream":true,"stream_options":{"x":1},"n":1.50}'
    parsed = orjson.loads(raw)
    body = {**parsed, "model": "u", "stream_options": {"x": 1, "include_usage": True}, "seed": 7}
    out = splice(raw, parsed, body)
    assert out == b'{"model":"u","stream":true,"stream_options":{"x":1,"include_usage":true},"n":1.50,"seed":7}'


def test_what_cannot_be_spliced_is_encoded_afresh() -> None:
    raw = b'{"model":"m","stream":true}'
    parsed = orjson.loads(raw)
    removed = {"model": "u"}
    assert splice(raw, parsed, removed) == b'{"model":"u"}'
    escaped = b'{"mod\\u0065l":"m"}'  # a key spelled with escapes is not found in the text
    parsed = orjson.loads(escaped)
    assert orjson.loads(splice(escaped, parsed, {"model": "u"})) == {"model": "u"}
    assert splice(None, {"model": "m"}, {"model": "u"}) == b'{"model":"u"}'
    assert splice(b"{}", {}, {"model": "u"}) == b'{"model":"u"}'
