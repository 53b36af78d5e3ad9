"""The Anthropic Messages codec, answer side: recorded Messages answers and SSE streams -> canonical,
malformed and truncated payloads -> typed errors (``app.providers.anthropic``,
``app.providers.anthropic_stream``)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from app.domain import (
    ChatRequest,
    Message,
    Passthrough,
    ReasoningPart,
    ResponseFormat,
    SourceBody,
    StreamChunk,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from app.errors import (
    UpstreamAuthError,
    UpstreamBadRequestError,
    UpstreamConfigError,
    UpstreamError,
    UpstreamRateLimitError,
    UpstreamServerError,
    UpstreamStreamError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from app.pricing import Price
from app.providers.anthropic import CODEC, REFUSAL_NOTE
from app.providers.base import HttpAnswer, ModelTarget, SSEEvent
from app.providers.sse import SSEParser
from app.settings.catalogue import ModelConfig
from tests.fakes import anthropic_wire
from tests.fakes.scripts import ParsedRequest, Reply, resolve

TARGET = ModelTarget(
    "claude",
    "anthropic",
    "claude-sonnet-4-5-20250929",
    30.0,
    Price(3.0, 15.0, "config"),
    ModelConfig(provider="anthropic"),
)
REQUEST = ChatRequest((Message("user", "What is the weather in Paris?"),))
PASSTHROUGH = ChatRequest(REQUEST.messages, source=SourceBody("anthropic.messages", {"model": "c", "messages": []}))
SIGNATURE = "EqQBCkgIBxABGAIiQMoTGfN2bQ8m0yFLtd6pTkdLNGUoP3vYzCy8JRvTL5KbH2xGnP8vJ3Kx1LsjqKTd9u2ZXrq0WNjUVqzn8="
USAGE = {
    "input_tokens": 472,
    "cache_creation_input_tokens": 120,
    "cache_read_input_tokens": 1024,
    "cache_creation": {"ephemeral_5m_input_tokens": 120, "ephemeral_1h_input_tokens": 0},
    "output_tokens": 89,
    "service_tier": "standard",
}


def _message(content: list[dict[str, Any]], stop_reason: str | None = "end_turn", **extra: Any) -> dict[str, Any]:
    return {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": 12, "output_tokens": 6},
        **extra,
    }


def _answer(body: object) -> HttpAnswer:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return HttpAnswer(200, {"content-type": "application/json"}, raw)


def _decode(body: object, request: ChatRequest = REQUEST) -> Any:
    return CODEC.decode(_answer(body), request, TARGET)


# --- answers ------------------------------------------------------------------------------------------


def test_text_answer() -> None:
    decoded = _decode(
        _message([{"type": "text", "text": "Hello"}, {"type": "text", "text": " there", "citations": None}])
    )
    assert (decoded.content, decoded.finish_reason, decoded.usage) == ("Hello there", "stop", Usage(12, 6))
    assert decoded.upstream_model == "claude-sonnet-4-5-20250929"
    assert (decoded.tool_calls, decoded.reasoning, decoded.refusal, decoded.passthrough) == ((), (), None, None)


def test_thinking_tool_use_and_cache_usage() -> None:
    body = _message(
        [
            {"type": "thinking", "thinking": "The user wants Paris weather.", "signature": SIGNATURE},
            {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4a"},
            {"type": "text", "text": "I'll check."},
            {
                "type": "tool_use",
                "id": "toolu_01A09q90qw90lq917835lq9",
                "name": "get_weather",
                "input": {"city": "Paris"},
            },
            {"type": "tool_use", "id": "toolu_02", "name": "now", "input": {}},
        ],
        "tool_use",
        usage={**USAGE, "output_tokens_details": {"thinking_tokens": 40}},
    )
    decoded = _decode(body)
    assert decoded.content == "I'll check." and decoded.finish_reason == "tool_calls"
    assert decoded.tool_calls == (
        ToolCall("toolu_01A09q90qw90lq917835lq9", "get_weather", '{"city":"Paris"}'),
        ToolCall("toolu_02", "now", "{}"),
    )
    assert decoded.reasoning == (
        ReasoningPart("The user wants Paris weather.", SIGNATURE, provider="anthropic"),
        ReasoningPart("", "EmwKAhgBEgy3va3pzix/LafPsn4a", redacted=True, provider="anthropic"),
    )
    assert decoded.usage == Usage(
        472 + 1024 + 120, 89, cached_input_tokens=1024, cache_write_tokens=120, reasoning_tokens=40
    )


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("tool_use", "tool_calls"),
        ("pause_turn", "stop"),
        ("refusal", "stop"),  # a refusal is finish "stop" with the refusal set, as OpenAI reports it
    ],
)
def test_stop_reasons(stop_reason: str, finish: str) -> None:
    assert _decode(_message([{"type": "text", "text": "x"}], stop_reason)).finish_reason == finish


def test_refusal_moves_the_text_to_refusal() -> None:
    decoded = _decode(_message([{"type": "text", "text": "I can't help with that."}], "refusal"))
    assert (decoded.content, decoded.refusal, decoded.finish_reason) == (
        "",
        "I can't help with that.",
        "stop",
    )
    assert _decode(_message([], "refusal")).refusal == REFUSAL_NOTE


def test_legit_empty_answer_and_missing_usage() -> None:
    empty = _decode(_message([], "end_turn"))
    assert (empty.content, empty.finish_reason, empty.usage) == ("", "stop", Usage(12, 6))
    body = _message([{"type": "text", "text": "hi"}])
    del body["usage"]
    assert _decode(body).usage is None
    assert _decode({**body, "usage": {}}).usage is None
    assert _decode({**body, "usage": None}).usage is None


def test_server_tool_blocks_are_skipped() -> None:
    body = _message(
        [
            {"type": "server_tool_use", "id": "srvtoolu_01", "name": "web_search", "input": {"query": "paris"}},
            {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_01", "content": []},
            {"type": "text", "text": "Sunny."},
        ]
    )
    decoded = _decode(body)
    assert (decoded.content, decoded.tool_calls) == ("Sunny.", ())


def test_passthrough_keeps_the_answer_bytes() -> None:
    raw = orjson.dumps(_message([{"type": "text", "text": "hi"}], container={"id": "cntr_01"}))
    decoded = CODEC.decode(HttpAnswer(200, {"content-type": "application/json"}, raw), PASSTHROUGH, TARGET)
    assert decoded.passthrough == Passthrough("anthropic.messages", raw, "application/json")
    assert decoded.content == "hi" and decoded.usage == Usage(12, 6)


JSON_MODE = ChatRequest(REQUEST.messages, response_format=ResponseFormat("json_object"))
JSON_INPUT = {"city": "Paris", "celsius": 21, "tags": ["sunny", "warm"], "wind": None}
JSON_USE = {"type": "tool_use", "id": "toolu_01D7FLrfh4GYq7yT1ULFeyMV", "name": "json_object", "input": JSON_INPUT}


def test_json_mode_tool_call_is_the_answer() -> None:
    decoded = _decode(_message([JSON_USE], "tool_use"), JSON_MODE)
    assert decoded.content == '{"city":"Paris","celsius":21,"tags":["sunny","warm"],"wind":null}'
    assert orjson.loads(decoded.content) == JSON_INPUT
    assert (decoded.tool_calls, decoded.finish_reason, decoded.usage) == ((), "stop", Usage(12, 6))
    empty = _decode(_message([{**JSON_USE, "input": {}}], "tool_use"), JSON_MODE)
    assert (empty.content, empty.finish_reason) == ("{}", "stop")


@pytest.mark.parametrize(
    ("stop_reason", "finish"), [("max_tokens", "length"), ("end_turn", "stop"), ("refusal", "stop")]
)
def test_json_mode_keeps_the_other_stop_reasons(stop_reason: str, finish: str) -> None:
    assert _decode(_message([JSON_USE], stop_reason), JSON_MODE).finish_reason == finish


def test_json_mode_tool_is_a_tool_call_when_the_request_did_not_ask_json_object() -> None:
    for request in (REQUEST, PASSTHROUGH):
        decoded = _decode(_message([JSON_USE], "tool_use"), request)
        assert decoded.content == "" and decoded.finish_reason == "tool_calls"
        assert [c.name for c in decoded.tool_calls] == ["json_object"]


def test_json_mode_answer_from_the_fake() -> None:
    """The fake (tests/fakes/anthropic_wire.py) answers a forced json_object tool with a tool_use."""
    body = CODEC.encode(JSON_MODE, TARGET, stream=False).body
    plan = resolve(Reply(text='{"ok": true}'), anthropic_wire.parse(orjson.loads(body)))
    message = anthropic_wire.completion(plan)
    assert [b["type"] for b in message["content"]] == ["tool_use"] and message["stop_reason"] == "tool_use"
    decoded = _decode(message, JSON_MODE)
    assert (decoded.content, decoded.finish_reason, decoded.tool_calls) == ('{"ok":true}', "stop", ())


MALFORMED: list[tuple[str, bytes | object, type[UpstreamError]]] = [
    ("empty body", b"", UpstreamServerError),
    ("truncated JSON", b'{"id":"msg_01","type":"message","content":[{"type":"text","te', UpstreamServerError),
    ("invalid UTF-8", b"\xff", UpstreamServerError),
    ("HTML", b"<html><body>upstream connect error</body></html>", UpstreamServerError),
    ("array", b"[]", UpstreamServerError),
    ("string", b'"hello"', UpstreamServerError),
    ("null", b"null", UpstreamServerError),
    ("no content", {**_message([]), "content": None}, UpstreamServerError),
    ("content not a list", {**_message([]), "content": "hi"}, UpstreamServerError),
    ("empty without stop reason", _message([], None), UpstreamServerError),
    ("block without type", _message([{"text": "hi"}]), UpstreamServerError),
    ("block not an object", _message(["hi"]), UpstreamServerError),  # type: ignore[list-item]
    ("text not a string", _message([{"type": "text", "text": 5}]), UpstreamServerError),
    (
        "tool input not an object",
        _message([{"type": "tool_use", "id": "t", "name": "f", "input": [1]}]),
        UpstreamServerError,
    ),
    ("tool without id", _message([{"type": "tool_use", "name": "f", "input": {}}]), UpstreamServerError),
    ("stop reason not a string", _message([{"type": "text", "text": "x"}], 3), UpstreamServerError),  # type: ignore[arg-type]
    ("usage not an object", {**_message([]), "usage": [1]}, UpstreamServerError),
    (
        "usage of the wrong type",
        {**_message([]), "usage": {"input_tokens": "many", "output_tokens": 1}},
        UpstreamServerError,
    ),
    ("negative usage", {**_message([]), "usage": {"input_tokens": -1, "output_tokens": 1}}, UpstreamServerError),
    ("boolean usage", {**_message([]), "usage": {"input_tokens": True, "output_tokens": 1}}, UpstreamServerError),
    (
        "200 overloaded",
        {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
        UpstreamUnavailableError,
    ),
    (
        "200 rate limit",
        {"type": "error", "error": {"type": "rate_limit_error", "message": "slow"}},
        UpstreamRateLimitError,
    ),
    (
        "200 invalid request",
        {"type": "error", "error": {"type": "invalid_request_error", "message": "no"}},
        UpstreamBadRequestError,
    ),
    ("200 error without type", {"error": {"message": "boom"}}, UpstreamServerError),
]


@pytest.mark.parametrize(("name", "body", "expected"), MALFORMED, ids=[c[0] for c in MALFORMED])
def test_malformed_answers_are_typed_errors(name: str, body: bytes | object, expected: type[UpstreamError]) -> None:
    with pytest.raises(expected) as info:
        _decode(body)
    assert type(info.value) is expected and info.value.provider == "anthropic" and info.value.model == "claude"


# --- streams ------------------------------------------------------------------------------------------


def _event(name: str, payload: dict[str, Any]) -> SSEEvent:
    data = orjson.dumps(payload).decode()
    return SSEEvent(event=name, data=data, raw=f"event: {name}\ndata: {data}\n\n".encode())


def _delta(index: int, delta: dict[str, Any]) -> SSEEvent:
    return _event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})


def _start(index: int, block: dict[str, Any]) -> SSEEvent:
    return _event("content_block_start", {"type": "content_block_start", "index": index, "content_block": block})


def _stop(index: int) -> SSEEvent:
    return _event("content_block_stop", {"type": "content_block_stop", "index": index})


MESSAGE_START = _event(
    "message_start",
    {"type": "message_start", "message": {**_message([], None), "usage": {**USAGE, "output_tokens": 1}}},
)
PING = _event("ping", {"type": "ping"})
MESSAGE_STOP = _event("message_stop", {"type": "message_stop"})


def _message_delta(stop_reason: str, usage: dict[str, Any]) -> SSEEvent:
    delta = {"stop_reason": stop_reason, "stop_sequence": None}
    return _event("message_delta", {"type": "message_delta", "delta": delta, "usage": usage})


# A recorded extended-thinking stream with text and a tool call (as the Messages API sends it).
RECORDED = [
    MESSAGE_START,
    _start(0, {"type": "thinking", "thinking": "", "signature": ""}),
    PING,
    _delta(0, {"type": "thinking_delta", "thinking": "The user asks about Paris. "}),
    _delta(0, {"type": "thinking_delta", "thinking": "I should call get_weather."}),
    _delta(0, {"type": "signature_delta", "signature": SIGNATURE}),
    _stop(0),
    _start(1, {"type": "text", "text": ""}),
    _delta(1, {"type": "text_delta", "text": "I'll check "}),
    _delta(1, {"type": "text_delta", "text": "the weather."}),
    _stop(1),
    _start(2, {"type": "tool_use", "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "name": "get_weather", "input": {}}),
    _delta(2, {"type": "input_json_delta", "partial_json": ""}),
    _delta(2, {"type": "input_json_delta", "partial_json": '{"city": '}),
    _delta(2, {"type": "input_json_delta", "partial_json": '"Paris"}'}),
    _stop(2),
    _message_delta("tool_use", {"output_tokens": 89, "output_tokens_details": {"thinking_tokens": 30}}),
    MESSAGE_STOP,
]


def _feed(events: list[SSEEvent], request: ChatRequest = REQUEST) -> tuple[list[StreamChunk], Any]:
    decoder = CODEC.stream_decoder(request, TARGET)
    chunks = [chunk for event in events for chunk in decoder.feed(event)]
    return chunks, decoder


def test_recorded_stream_with_thinking_text_and_tool_use() -> None:
    chunks, decoder = _feed(RECORDED)
    assert decoder.done
    assert "".join(c.reasoning for c in chunks) == "The user asks about Paris. I should call get_weather."
    assert [c.signature for c in chunks if c.signature] == [SIGNATURE]
    assert "".join(c.delta for c in chunks) == "I'll check the weather."
    assert [d for c in chunks for d in c.tool_calls] == [
        ToolCallDelta(0, id="toolu_01T1x1fJ34qAmk2tNTrN7Up6", name="get_weather"),
        ToolCallDelta(0, arguments='{"city": '),
        ToolCallDelta(0, arguments='"Paris"}'),
    ]
    assert all(c.has_output and c.finish_reason is None and c.usage is None and c.raw is None for c in chunks)
    last = decoder.finish()
    assert last.finish_reason == "tool_calls"
    assert last.usage == Usage(
        472 + 1024 + 120, 89, cached_input_tokens=1024, cache_write_tokens=120, reasoning_tokens=30
    )


def test_message_delta_may_carry_the_final_input_usage() -> None:
    usage = {"input_tokens": 500, "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0, "output_tokens": 3}
    events = [MESSAGE_START, _start(0, {"type": "text", "text": ""}), _delta(0, {"type": "text_delta", "text": "Hi"})]
    _, decoder = _feed([*events, _stop(0), _message_delta("end_turn", usage), MESSAGE_STOP])
    assert decoder.finish() == StreamChunk(finish_reason="stop", usage=Usage(500, 3))


def test_stream_without_usage_and_unknown_events() -> None:
    start = _event("message_start", {"type": "message_start", "message": {**_message([], None), "usage": None}})
    events = [
        start,
        _start(0, {"type": "text", "text": ""}),
        _delta(0, {"type": "citations_delta", "citation": {"type": "char_location", "cited_text": "x"}}),
        _delta(0, {"type": "text_delta", "text": "ok"}),
        _event("brand_new_event", {"type": "brand_new_event"}),
        _start(1, {"type": "redacted_thinking", "data": "EmwKAhgBEgy3"}),
        _message_delta("max_tokens", {}),
        MESSAGE_STOP,
    ]
    chunks, decoder = _feed(events)
    assert [(c.delta, c.redacted) for c in chunks] == [("ok", None), ("", "EmwKAhgBEgy3")]
    assert decoder.finish() == StreamChunk(finish_reason="length", usage=None)


@pytest.mark.parametrize("cut", [0, 1, 5, 10, len(RECORDED) - 1])
def test_truncated_stream_finish_raises(cut: int) -> None:
    _, decoder = _feed(RECORDED[:cut])
    assert not decoder.done
    with pytest.raises(UpstreamStreamError):
        decoder.finish()


STREAM_ERRORS: list[tuple[str, type[UpstreamError], int]] = [
    ("overloaded_error", UpstreamUnavailableError, 529),
    ("rate_limit_error", UpstreamRateLimitError, 429),
    ("api_error", UpstreamServerError, 500),
    ("invalid_request_error", UpstreamBadRequestError, 400),
    ("authentication_error", UpstreamAuthError, 401),
    ("permission_error", UpstreamAuthError, 403),
    ("not_found_error", UpstreamConfigError, 404),
    ("request_too_large", UpstreamBadRequestError, 413),
    ("timeout_error", UpstreamTimeoutError, 504),
    ("something_new_error", UpstreamServerError, 500),
]


@pytest.mark.parametrize(("kind", "expected", "status"), STREAM_ERRORS)
def test_error_event_mid_stream(kind: str, expected: type[UpstreamError], status: int) -> None:
    decoder = CODEC.stream_decoder(REQUEST, TARGET)
    for event in RECORDED[:9]:
        decoder.feed(event)
    error = _event("error", {"type": "error", "error": {"type": kind, "message": "Overloaded"}})
    with pytest.raises(expected) as info:
        decoder.feed(error)
    assert type(info.value) is expected and info.value.details["upstream_status"] == status
    if expected is UpstreamRateLimitError:
        assert info.value.retry_after is not None  # type: ignore[attr-defined]


MALFORMED_EVENTS: list[tuple[str, SSEEvent]] = [
    ("truncated data", SSEEvent("content_block_delta", '{"type":"content_block_delta","index":0,"delta":{"ty', b"")),
    ("empty data", SSEEvent("message_start", "", b"")),
    ("not an object", SSEEvent("message_start", "[1, 2]", b"")),
    ("message_start without message", _event("message_start", {"type": "message_start"})),
    ("usage of the wrong type", _message_delta("end_turn", {"output_tokens": "many"})),
    ("message_delta without delta", _event("message_delta", {"type": "message_delta", "usage": {}})),
    (
        "delta without index",
        _event("content_block_delta", {"type": "content_block_delta", "delta": {"type": "text_delta"}}),
    ),
    ("text of the wrong type", _delta(0, {"type": "text_delta", "text": 5})),
    ("json for no tool", _delta(7, {"type": "input_json_delta", "partial_json": "{}"})),
    ("block without type", _start(0, {"text": ""})),
    ("tool without name", _start(0, {"type": "tool_use", "id": "toolu_1", "name": None, "input": {}})),
]


@pytest.mark.parametrize(("name", "event"), MALFORMED_EVENTS, ids=[c[0] for c in MALFORMED_EVENTS])
def test_malformed_events(name: str, event: SSEEvent) -> None:
    decoder = CODEC.stream_decoder(REQUEST, TARGET)
    decoder.feed(MESSAGE_START)
    with pytest.raises(UpstreamServerError, match="malformed"):
        decoder.feed(event)


def test_passthrough_stream_carries_every_event() -> None:
    chunks, decoder = _feed(RECORDED, PASSTHROUGH)
    assert [c.raw for c in chunks] == [e.raw for e in RECORDED]
    assert "".join(c.delta for c in chunks) == "I'll check the weather."
    assert all(c.finish_reason is None for c in chunks)
    last = decoder.finish()
    assert last.raw is None and last.finish_reason == "tool_calls"


def test_the_fakes_stream_decodes_through_the_sse_parser() -> None:
    """The fake's wire bytes (tests/fakes/anthropic_wire.py) through the real SSE parser and this decoder."""
    reply = Reply(text="It is sunny.", reasoning="Think first.", tool_calls=[{"name": "f", "arguments": {"a": 1}}])
    parsed = ParsedRequest(
        model="claude-x", stream=True, last_user_text="hi", input_text="hi there", include_usage=False
    )
    plan = resolve(Reply(**{**reply.__dict__, "cached_input_tokens": 1}), parsed)
    wire = b"".join(e.data for e in anthropic_wire.stream_events(plan, parsed))
    parser = SSEParser()
    events = parser.feed(wire[:37]) + parser.feed(wire[37:]) + parser.close()
    chunks, decoder = _feed(events)
    assert "".join(c.reasoning for c in chunks) == "Think first."
    assert [c.signature for c in chunks if c.signature] == [anthropic_wire.signature(plan)]
    assert "".join(c.delta for c in chunks) == "It is sunny."
    assert "".join(d.arguments for c in chunks for d in c.tool_calls) == '{"a":1}'
    assert decoder.finish().usage == Usage(2, plan.output_tokens + 2, cached_input_tokens=1, reasoning_tokens=2)


# JSON mode (a forced json_object tool), streamed as the Messages API sends a forced tool call.
JSON_STREAM = [
    MESSAGE_START,
    _start(0, {"type": "tool_use", "id": "toolu_01D7FLrfh4GYq7yT1ULFeyMV", "name": "json_object", "input": {}}),
    PING,
    _delta(0, {"type": "input_json_delta", "partial_json": ""}),
    _delta(0, {"type": "input_json_delta", "partial_json": '{"city": "Pa'}),
    _delta(0, {"type": "input_json_delta", "partial_json": 'ris", "celsius": 21}'}),
    _stop(0),
    _message_delta("tool_use", {"output_tokens": 18}),
    MESSAGE_STOP,
]


def test_json_mode_stream_is_text() -> None:
    decoder = CODEC.stream_decoder(JSON_MODE, TARGET)
    per_event = [decoder.feed(event) for event in JSON_STREAM]
    assert per_event[1] == []  # the tool_use's content_block_start: nothing
    chunks = [chunk for chunks in per_event for chunk in chunks]
    assert [c.delta for c in chunks] == ['{"city": "Pa', 'ris", "celsius": 21}']
    assert all(not c.tool_calls and c.finish_reason is None for c in chunks)
    assert orjson.loads("".join(c.delta for c in chunks)) == {"city": "Paris", "celsius": 21}
    last = decoder.finish()
    assert last.finish_reason == "stop" and last.usage is not None and last.usage.output_tokens == 18


def test_json_mode_stream_cut_by_max_tokens_is_length() -> None:
    events = [*JSON_STREAM[:5], _stop(0), _message_delta("max_tokens", {"output_tokens": 4}), MESSAGE_STOP]
    chunks, decoder = _feed(events, JSON_MODE)
    assert "".join(c.delta for c in chunks) == '{"city": "Pa' and decoder.finish().finish_reason == "length"


def test_json_tool_stream_without_json_mode_is_a_tool_call() -> None:
    for request in (REQUEST, PASSTHROUGH):
        chunks, decoder = _feed(JSON_STREAM, request)
        assert "".join(c.delta for c in chunks) == ""
        assert "".join(d.arguments for c in chunks for d in c.tool_calls) == '{"city": "Paris", "celsius": 21}'
        assert decoder.finish().finish_reason == "tool_calls"


def test_json_mode_stream_from_the_fake() -> None:
    body = orjson.loads(CODEC.encode(JSON_MODE, TARGET, stream=True).body)
    parsed = anthropic_wire.parse(body)
    plan = resolve(Reply(text='{"ok": true, "n": [1, 2, 3]}'), parsed)
    wire = b"".join(e.data for e in anthropic_wire.stream_events(plan, parsed))
    parser = SSEParser()
    chunks, decoder = _feed(parser.feed(wire) + parser.close(), JSON_MODE)
    assert orjson.loads("".join(c.delta for c in chunks)) == {"ok": True, "n": [1, 2, 3]}
    assert not any(c.tool_calls for c in chunks) and decoder.finish().finish_reason == "stop"
    # without the forced tool, the fake answers the scripted text as text
    plain = anthropic_wire.parse({**body, "tool_choice": {"type": "auto"}})
    assert anthropic_wire.completion(resolve(Reply(text='{"ok": true}'), plain))["content"] == [
        {"type": "text", "text": '{"ok": true}'}
    ]
