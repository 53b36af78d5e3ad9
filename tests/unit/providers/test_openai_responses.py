"""The OpenAI Responses upstream codec: the pass-through body (only the model replaced; Switchyard's
reasoning envelopes left out), recorded ``response`` objects and event streams into canonical values
(bytes kept), malformed and failed ones as typed errors; and the codec hook (provider ``openai`` only)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from app.domain import ChatRequest, Message, ReasoningPart, SourceBody, ToolCall, Usage
from app.errors import UpstreamError, UpstreamRateLimitError, UpstreamServerError, UpstreamStreamError
from app.providers.base import SSEEvent
from app.providers.openai import CODEC
from app.providers.openai_compatible import CODEC as COMPAT
from app.providers.openai_responses import ResponsesStreamDecoder, decode_response, passthrough_body
from tests.unit.providers.openai_payloads import COMPAT_TARGET, TARGET

RESPONSE: dict[str, Any] = {
    "id": "resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b",
    "object": "response",
    "created_at": 1741476542,
    "status": "completed",
    "model": "gpt-4.1-2025-04-14",
    "output": [
        {
            "type": "reasoning",
            "id": "rs_1",
            "summary": [{"type": "summary_text", "text": "Thinking."}],
            "encrypted_content": "gAAAAB-opaque",
        },
        {
            "type": "message",
            "id": "msg_1",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "In a peaceful grove...", "annotations": []}],
        },
        {
            "type": "function_call",
            "id": "fc_1",
            "call_id": "call_1",
            "name": "f",
            "arguments": '{"a":1}',
            "status": "completed",
        },
        {"type": "web_search_call", "id": "ws_1", "status": "completed"},
    ],
    "usage": {
        "input_tokens": 36,
        "input_tokens_details": {"cached_tokens": 6},
        "output_tokens": 87,
        "output_tokens_details": {"reasoning_tokens": 9},
        "total_tokens": 123,
    },
}


def test_passthrough_body() -> None:
    body = {
        "model": "alias",
        "input": [
            {"role": "user", "content": "x"},
            {"type": "message", "id": "msg_sy0123", "role": "assistant", "content": "from claude"},
            {"type": "message", "id": "msg_67ccd3acc8d4", "role": "assistant", "content": "from openai"},
            {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "swy1.eyJ9"},
            {"type": "reasoning", "summary": [{"type": "summary_text", "text": "Gemini's"}]},
            {"type": "reasoning", "id": "rs_2", "summary": [], "encrypted_content": "gAAAA"},
        ],
        "tools": [{"type": "web_search"}],
        "stream": True,
    }
    out = passthrough_body(body, "gpt-4.1", stream=False)
    assert out["model"] == "gpt-4.1" and "stream" not in out and out["tools"] == body["tools"]
    assert [i.get("encrypted_content") for i in out["input"]] == [None, None, None, "gAAAA"]
    assert [i.get("id") for i in out["input"]] == [None, None, "msg_67ccd3acc8d4", "rs_2"]
    assert passthrough_body({"model": "a", "input": "x"}, "b", stream=True) == {
        "model": "b",
        "input": "x",
        "stream": True,
    }


def test_decode_response() -> None:
    raw = json.dumps(RESPONSE).encode()
    decoded = decode_response(raw, provider="openai", model="gpt")
    assert decoded.content == "In a peaceful grove..." and decoded.finish_reason == "tool_calls"
    assert decoded.tool_calls == (ToolCall("call_1", "f", '{"a":1}'),)
    assert decoded.reasoning == (ReasoningPart("Thinking.", "gAAAAB-opaque", provider="openai"),)
    assert decoded.usage == Usage(36, 87, cached_input_tokens=6, reasoning_tokens=9)
    assert decoded.passthrough is not None and decoded.passthrough.body == raw
    incomplete = {**RESPONSE, "status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}}
    assert decode_response(json.dumps(incomplete).encode(), provider="openai", model="gpt").finish_reason == "length"


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"not json", UpstreamServerError),
        (b'{"object": "response"}', UpstreamServerError),
        (
            json.dumps({**RESPONSE, "status": "failed", "error": {"code": "server_error", "message": "x"}}).encode(),
            UpstreamServerError,
        ),
        (
            json.dumps({"status": "failed", "error": {"code": "rate_limit_exceeded", "message": "slow"}}).encode(),
            UpstreamRateLimitError,
        ),
        (json.dumps({**RESPONSE, "output": [{"type": "function_call", "name": "f"}]}).encode(), UpstreamServerError),
    ],
)
def test_malformed_or_failed(body: bytes, error: type[UpstreamError]) -> None:
    with pytest.raises(error):
        decode_response(body, provider="openai", model="gpt")


def event(kind: str, **fields: Any) -> SSEEvent:
    data = json.dumps({"type": kind, **fields})
    return SSEEvent(kind, data, f"event: {kind}\ndata: {data}\n\n".encode())


def test_stream_decoder() -> None:
    decoder = ResponsesStreamDecoder(provider="openai", model="gpt")
    events = [
        event("response.created", response={"id": "resp_1", "status": "in_progress", "output": []}),
        event("response.reasoning_summary_text.delta", output_index=0, delta="hm"),
        event("response.output_item.done", output_index=0, item={"type": "reasoning", "encrypted_content": "gA"}),
        event("response.output_text.delta", output_index=1, delta="Hi"),
        event(
            "response.output_item.added", output_index=2, item={"type": "function_call", "call_id": "c", "name": "f"}
        ),
        event("response.function_call_arguments.delta", output_index=2, delta="{}"),
        event("response.completed", response={**RESPONSE, "output": [RESPONSE["output"][2]]}),
    ]
    chunks = [c for e in events for c in decoder.feed(e)]
    assert all(c.raw is not None for c in chunks) and len(chunks) == 6
    assert [c.raw for c in chunks] == [e.raw for e in events[:6]]
    assert chunks[1].reasoning == "hm" and chunks[2].signature == "gA" and chunks[3].delta == "Hi"
    assert chunks[4].tool_calls[0].id == "c" and chunks[5].tool_calls[0].arguments == "{}"
    assert decoder.done
    final = decoder.finish()
    assert final.finish_reason == "tool_calls" and final.raw == events[-1].raw and final.usage is not None
    assert final.usage.input_tokens == 36


def test_stream_failures() -> None:
    failed = ResponsesStreamDecoder(provider="openai", model="gpt")
    with pytest.raises(UpstreamRateLimitError):
        failed.feed(
            event(
                "response.failed",
                response={"status": "failed", "error": {"code": "rate_limit_exceeded", "message": "m"}},
            )
        )
    with pytest.raises(UpstreamServerError):
        ResponsesStreamDecoder(provider="openai", model="gpt").feed(event("error", code="server_error", message="boom"))
    cut = ResponsesStreamDecoder(provider="openai", model="gpt")
    cut.feed(event("response.output_text.delta", output_index=0, delta="half"))
    with pytest.raises(UpstreamStreamError):
        cut.finish()


def test_codec_hook_is_openai_only() -> None:
    source = SourceBody("openai.responses", {"model": "x", "input": "hi", "tools": [{"type": "web_search"}]})
    request = ChatRequest(messages=(Message("user", "hi"),), source=source)
    call = CODEC.encode(request, TARGET, stream=True)
    assert call.path == "/responses" and json.loads(call.body)["tools"] == [{"type": "web_search"}]
    compat = COMPAT.encode(request, COMPAT_TARGET, stream=False)
    assert compat.path == "/chat/completions" and json.loads(compat.body)["messages"] == [
        {"role": "user", "content": "hi"}
    ]
