"""The Anthropic Messages edge, table-driven: decoding bodies into the canonical request, encoding canonical
answers and chunks back, tool-use ids that name their model, and Anthropic's error statuses."""

from __future__ import annotations

from typing import Any

import pytest

from app.api.errors import anthropic_error_body, anthropic_status
from app.domain import Completion, ReasoningPart, StreamChunk, ToolCall, ToolCallDelta, Usage
from app.errors import (
    CapacityError,
    DeadlineExceededError,
    GatewayError,
    InvalidRequestError,
    ModelNotFoundError,
    PayloadTooLargeError,
    UpstreamRateLimitError,
    UpstreamServerError,
    UpstreamUnavailableError,
)
from app.providers.anthropic_thinking import ForeignSignature, open_signature
from app.schemas.anthropic_ids import model_of_tool_id, tag_tool_id
from app.schemas.anthropic_request import decode_messages_request
from app.schemas.anthropic_response import EventEncoder, message_body


@pytest.mark.parametrize("model", ["gpt-4o", "org/model:v1", "claude-3-5-sonnet-20241022", "ünï"])
@pytest.mark.parametrize("call_id", ["call_abc", "call:1", "x__ts_c2lnbmF0dXJl", ""])
def test_tool_ids_name_their_model(model: str, call_id: str) -> None:
    tagged = tag_tool_id(model, call_id)
    assert model_of_tool_id(tagged) == model
    assert tagged.replace("_", "").replace("-", "").isalnum()  # Anthropic's id alphabet
    assert tag_tool_id(model, tagged) == tagged  # not tagged twice


@pytest.mark.parametrize("call_id", ["toolu_01A09q90qw90lq917835lq9", "call_abc", "toolu_syzz_x", "toolu_sy123_x"])
def test_other_ids_name_no_model(call_id: str) -> None:
    assert model_of_tool_id(call_id) is None


def test_decode_full_request() -> None:
    body: dict[str, Any] = {
        "model": "m",
        "max_tokens": 10,
        "system": [{"type": "text", "text": "S", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": "q"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "t", "signature": "sig"},
                    {"type": "redacted_thinking", "data": "secret"},
                    {"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "t1",
                        "content": [{"type": "text", "text": "r"}],
                        "is_error": True,
                    },
                    {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "doc"}},
                ],
            },
        ],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
        "tools": [{"name": "f", "input_schema": {"type": "object"}}, {"type": "web_search_20250305", "name": "ws"}],
        "thinking": {"type": "enabled", "budget_tokens": 2000},
        "metadata": {"user_id": "u"},
        "stop_sequences": ["X"],
        "top_k": 5,
    }
    decoded = decode_messages_request(body, {"anthropic-beta": "b"})
    request = decoded.request
    roles = [m.role for m in request.messages]
    assert roles == ["system", "user", "assistant", "tool", "user"]
    assert request.messages[0].parts[0].cache_control == {"type": "ephemeral"}  # type: ignore[union-attr]
    assistant, tool = request.messages[2], request.messages[3]
    assert [(r.text, r.signature, r.redacted) for r in assistant.reasoning] == [
        ("t", "sig", False),
        ("", "secret", True),
    ]
    assert assistant.tool_calls == (ToolCall("t1", "f", '{"a":1}'),)
    assert tool.tool_call_id == "t1" and tool.is_error and tool.content == "r" and tool.name == "f"
    assert request.messages[4].content == "doc"
    assert request.tool_choice == "required" and request.parallel_tool_calls is False
    assert request.reasoning is not None and request.reasoning.budget_tokens == 2000
    assert request.user == "u" and request.stop == ("X",) and request.top_k == 5
    assert [t.name for t in request.tools] == ["f"]
    assert decoded.anthropic_only == ("tools.1 (web_search_20250305)",)
    assert "cache_control" in decoded.ignored and "header:anthropic-beta" in decoded.ignored
    assert (
        request.source is not None and request.source.body is body and request.source.headers == {"anthropic-beta": "b"}
    )


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "m", "messages": [{"role": "user", "content": "q"}]}, "max_tokens"),
        ({"model": "m", "max_tokens": 1, "messages": []}, "messages"),
        ({"model": "m", "max_tokens": 1, "messages": [{"role": "system", "content": "q"}]}, "messages.0.role"),
        (
            {"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": [{"type": "video"}]}]},
            "messages.0.content.0.type",
        ),
        (
            {
                "model": "m",
                "max_tokens": 1,
                "messages": [{"role": "user", "content": "q"}],
                "thinking": {"type": "enabled"},
            },
            "thinking.budget_tokens",
        ),
        (
            {
                "model": "m",
                "max_tokens": 1,
                "messages": [{"role": "user", "content": "q"}],
                "tool_choice": {"type": "tool"},
            },
            "tool_choice.name",
        ),
        (
            {"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "q"}], "temperature": 1.5},
            "temperature",
        ),
    ],
)
def test_decode_refuses_invalid(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        decode_messages_request(body)
    assert caught.value.details.get("param") == param


def test_message_body() -> None:
    completion = Completion(
        content="hi",
        model="gpt-4o",
        provider="openai",
        usage=Usage(100, 7, cached_input_tokens=30, cache_write_tokens=10),
        latency_ms=1.0,
        cost=None,
        finish_reason="tool_calls",
        tool_calls=(ToolCall("call_1", "f", '{"a": 1}'),),
        reasoning=(ReasoningPart("why"),),
    )
    body = message_body(completion, ident="msg_1")
    assert [b["type"] for b in body["content"]] == ["thinking", "text", "tool_use"]
    thinking = body["content"][0]
    assert thinking["thinking"] == "why" and open_signature(thinking["signature"]) == ForeignSignature(
        "openai", None, False
    )
    assert body["content"][2]["input"] == {"a": 1} and model_of_tool_id(body["content"][2]["id"]) == "gpt-4o"
    assert body["stop_reason"] == "tool_use"
    assert body["usage"] == {
        "input_tokens": 60,
        "cache_creation_input_tokens": 10,
        "cache_read_input_tokens": 30,
        "output_tokens": 7,
    }


def test_event_sequence() -> None:
    encoder = EventEncoder("msg_1", "gemini", 5, provider="google")
    chunks = [
        StreamChunk(reasoning="think"),
        StreamChunk(signature="sig"),
        StreamChunk(delta="Hel"),
        StreamChunk(delta="lo"),
        StreamChunk(tool_calls=(ToolCallDelta(0, id="c1", name="f", arguments='{"a"'),)),
        StreamChunk(tool_calls=(ToolCallDelta(0, arguments=": 1}"),)),
        StreamChunk(finish_reason="tool_calls", usage=Usage(5, 3)),
    ]
    events = encoder.start() + [e for c in chunks for e in encoder.encode(c)]
    shape = [
        (name, data.get("delta", {}).get("type") or (data.get("content_block") or {}).get("type"))
        for name, data in events
    ]
    assert shape == [
        ("message_start", None),
        ("content_block_start", "thinking"),
        ("ping", None),
        ("content_block_delta", "thinking_delta"),
        ("content_block_delta", "signature_delta"),
        ("content_block_stop", None),
        ("content_block_start", "text"),
        ("content_block_delta", "text_delta"),
        ("content_block_delta", "text_delta"),
        ("content_block_stop", None),
        ("content_block_start", "tool_use"),
        ("content_block_delta", "input_json_delta"),
        ("content_block_delta", "input_json_delta"),
        ("content_block_stop", None),
        ("message_delta", None),
        ("message_stop", None),
    ]
    assert [d["index"] for n, d in events if n == "content_block_start"] == [0, 1, 2]
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use" and events[-2][1]["usage"]["output_tokens"] == 3


@pytest.mark.parametrize(
    ("error", "status", "kind"),
    [
        (InvalidRequestError("x"), 400, "invalid_request_error"),
        (ModelNotFoundError("x"), 404, "not_found_error"),
        (PayloadTooLargeError("x"), 413, "request_too_large"),
        (UpstreamRateLimitError("x", retry_after=2), 429, "rate_limit_error"),
        (UpstreamUnavailableError("x"), 529, "overloaded_error"),
        (CapacityError("x"), 529, "overloaded_error"),
        (UpstreamServerError("x"), 500, "api_error"),
        (DeadlineExceededError("x"), 504, "timeout_error"),
        (GatewayError("x"), 500, "api_error"),
    ],
)
def test_anthropic_error_statuses(error: GatewayError, status: int, kind: str) -> None:
    assert anthropic_status(error) == status
    body = anthropic_error_body(error)
    assert body["type"] == "error" and body["error"] == {"type": kind, "message": "x"}


CACHED = {"type": "ephemeral"}
PIXEL = {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}


@pytest.mark.parametrize(
    "message",
    [
        {"role": "user", "content": [{"type": "image", "source": PIXEL, "cache_control": CACHED}]},
        {
            "role": "user",
            "content": [{"type": "document", "source": {"type": "text", "data": "d"}, "cache_control": CACHED}],
        },
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}, "cache_control": CACHED}],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "t", "content": "r", "cache_control": CACHED}],
        },
    ],
)
def test_a_cache_breakpoint_on_any_block_is_named(message: dict[str, Any]) -> None:
    body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "q"}, message]}
    assert "cache_control" in decode_messages_request(body).ignored
    plain = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "q"}]}
    assert "cache_control" not in decode_messages_request(plain).ignored
