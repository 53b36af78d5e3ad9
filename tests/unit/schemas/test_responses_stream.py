"""Table tests of the Responses encoders: a ``Completion`` as a ``response`` object (items, status, usage),
and canonical stream chunks as the event sequence (item order, sequence numbers, the final response
assembled from the deltas, ``response.failed`` after a break)."""

from __future__ import annotations

from typing import Any

import pytest

from app.domain import Completion, ReasoningPart, StreamChunk, ToolCall, ToolCallDelta, Usage
from app.errors import UpstreamStreamError
from app.schemas.responses_request import decode_responses
from app.schemas.responses_response import completion_response, usage_body
from app.schemas.responses_stream import ResponseEventEncoder

USAGE = Usage(input_tokens=10, output_tokens=5, cached_input_tokens=3, reasoning_tokens=2)


def decoded(**fields: Any):  # type: ignore[no-untyped-def]
    return decode_responses({"model": "m", "input": "x", **fields})


def completion(**fields: Any) -> Completion:
    base: dict[str, Any] = {
        "content": "",
        "model": "m",
        "provider": "anthropic",
        "usage": USAGE,
        "latency_ms": 1.0,
        "cost": None,
    }
    return Completion(**{**base, **fields})


def test_usage() -> None:
    assert usage_body(USAGE) == {
        "input_tokens": 10,
        "input_tokens_details": {"cached_tokens": 3},
        "output_tokens": 5,
        "output_tokens_details": {"reasoning_tokens": 2},
        "total_tokens": 15,
    }


@pytest.mark.parametrize(
    ("fields", "types", "status"),
    [
        ({"content": "hi", "finish_reason": "stop"}, ["message"], "completed"),
        ({"tool_calls": (ToolCall("c1", "f", "{}"),), "finish_reason": "tool_calls"}, ["function_call"], "completed"),
        (
            {
                "content": "a",
                "reasoning": (ReasoningPart("r", "s", provider="anthropic"),),
                "tool_calls": (ToolCall("c", "f", "{}"),),
            },
            ["reasoning", "message", "function_call"],
            "completed",
        ),
        ({"content": "cut", "finish_reason": "length"}, ["message"], "incomplete"),
        ({"refusal": "no", "finish_reason": "stop"}, ["message"], "completed"),
    ],
)
def test_completion_response(fields: dict[str, Any], types: list[str], status: str) -> None:
    body = completion_response(decoded(), completion(**fields), ident="resp_1", created_at=1, extra={})
    assert [i["type"] for i in body["output"]] == types and body["status"] == status
    assert body["object"] == "response" and body["usage"]["total_tokens"] == 15
    if status == "incomplete":
        assert body["incomplete_details"] == {"reason": "max_output_tokens"}
    message = next(i for i in body["output"] if i["type"] in ("message", "function_call"))
    assert message["status"] == status  # a message cut at its token limit is incomplete too
    if fields.get("refusal"):
        assert body["output"][0]["content"] == [{"type": "refusal", "refusal": "no"}]


def test_encrypted_reasoning_only_when_included() -> None:
    answer = completion(content="a", reasoning=(ReasoningPart("r", "sig", provider="anthropic"),))
    plain = completion_response(decoded(), answer, ident="r", created_at=1, extra={})
    assert "encrypted_content" not in plain["output"][0]
    included = completion_response(
        decoded(include=["reasoning.encrypted_content"]), answer, ident="r", created_at=1, extra={}
    )
    assert included["output"][0]["encrypted_content"].startswith("swy1.")


def run(encoder: ResponseEventEncoder, chunks: list[StreamChunk]) -> list[dict[str, Any]]:
    events = encoder.start()
    for chunk in chunks:
        events += encoder.encode(chunk)
    for name, data in events:
        assert name == data["type"]
    return [data for _, data in events]


def test_a_stream_cut_at_its_token_limit_has_an_incomplete_message() -> None:
    encoder = ResponseEventEncoder(decoded(), "resp_1", "m", "anthropic")
    events = run(encoder, [StreamChunk(delta="Hel"), StreamChunk(finish_reason="length", usage=USAGE)])
    done = next(e for e in events if e["type"] == "response.output_item.done")
    assert done["item"]["status"] == "incomplete"
    last = events[-1]
    assert last["type"] == "response.incomplete" and last["response"]["output"][0]["status"] == "incomplete"


def test_stream_sequence() -> None:
    encoder = ResponseEventEncoder(decoded(include=["reasoning.encrypted_content"]), "resp_1", "m", "anthropic")
    chunks = [
        StreamChunk(reasoning="thinking "),
        StreamChunk(reasoning="hard"),
        StreamChunk(signature="sig"),
        StreamChunk(delta="Hello "),
        StreamChunk(delta="world"),
        StreamChunk(tool_calls=(ToolCallDelta(0, "c1", "f", '{"a"'),)),
        StreamChunk(tool_calls=(ToolCallDelta(0, arguments=":1}"),)),
        StreamChunk(tool_calls=(ToolCallDelta(1, "c2", "g", "{}"),)),
        StreamChunk(finish_reason="tool_calls", usage=USAGE),
    ]
    events = run(encoder, chunks)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert [e["type"] for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    final = events[-1]["response"]
    assert final["status"] == "completed" and final["usage"]["output_tokens"] == 5
    reasoning, message, first, second = final["output"]
    assert reasoning["summary"] == [{"type": "summary_text", "text": "thinking hard"}]
    assert reasoning["encrypted_content"].startswith("swy1.")
    assert message["content"][0]["text"] == "Hello world"
    assert (first["call_id"], first["arguments"], second["name"]) == ("c1", '{"a":1}', "g")
    assert [e["output_index"] for e in events if e["type"] == "response.output_item.done"] == [0, 1, 2, 3]


def test_stream_incomplete_and_failed() -> None:
    encoder = ResponseEventEncoder(decoded(), "resp_1", "m")
    events = run(encoder, [StreamChunk(delta="cut"), StreamChunk(finish_reason="length", usage=USAGE)])
    assert events[-1]["type"] == "response.incomplete"
    assert events[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    broken = ResponseEventEncoder(decoded(), "resp_2", "m")
    events = run(broken, [StreamChunk(delta="half")])
    name, data = broken.failed(UpstreamStreamError("cut", provider="p", model="m"))
    assert name == "response.failed" and data["sequence_number"] == events[-1]["sequence_number"] + 1
    assert data["response"]["status"] == "failed" and data["response"]["error"]["code"] == "server_error"


def test_refusal_and_redacted_reasoning() -> None:
    encoder = ResponseEventEncoder(decoded(include=["reasoning.encrypted_content"]), "resp_1", "m", "anthropic")
    events = run(
        encoder,
        [StreamChunk(redacted="opaque"), StreamChunk(refusal="no"), StreamChunk(finish_reason="stop", usage=USAGE)],
    )
    kinds = [e["type"] for e in events]
    assert "response.refusal.delta" in kinds and "response.refusal.done" in kinds
    reasoning, message = events[-1]["response"]["output"]
    assert reasoning["summary"] == [] and reasoning["encrypted_content"].startswith("swy1.")
    assert message["content"] == [{"type": "refusal", "refusal": "no"}]


def test_a_signature_outside_reasoning_is_not_an_item() -> None:
    encoder = ResponseEventEncoder(decoded(), "resp_1", "m", "google")
    events = run(
        encoder, [StreamChunk(delta="hi"), StreamChunk(signature="s"), StreamChunk(finish_reason="stop", usage=USAGE)]
    )
    assert [i["type"] for i in events[-1]["response"]["output"]] == ["message"]


def test_namespaced_calls_name_their_namespace() -> None:
    tools = [{"type": "namespace", "name": "agents", "tools": [{"type": "function", "name": "spawn"}]}]
    request = decoded(tools=tools)
    answer = completion(tool_calls=(ToolCall("c1", "spawn", "{}"),), finish_reason="tool_calls")
    body = completion_response(request, answer, ident="r", created_at=1, extra={})
    assert body["output"][-1]["namespace"] == "agents"
    encoder = ResponseEventEncoder(request, "resp_1", "m")
    events = run(
        encoder,
        [StreamChunk(tool_calls=(ToolCallDelta(0, "c1", "spawn", "{}"),)), StreamChunk(finish_reason="tool_calls")],
    )
    added = [e["item"] for e in events if e["type"] == "response.output_item.added"]
    assert added[0]["namespace"] == "agents" and events[-1]["response"]["output"][0]["namespace"] == "agents"
