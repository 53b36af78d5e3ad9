"""Encoding canonical answers as OpenAI ``chat.completion`` bodies and ``chat.completion.chunk`` events,
each checked against the official openai SDK's own response types."""

from __future__ import annotations

from typing import Any

from openai.types.chat import ChatCompletion, ChatCompletionChunk

from app.domain import Choice, Completion, ReasoningPart, StreamChunk, ToolCall, ToolCallDelta, Usage
from app.schemas.openai_response import ChunkEncoder, completion_body

LOGPROBS = {"content": [{"token": "Hi", "logprob": -0.1, "bytes": [72, 105], "top_logprobs": []}], "refusal": None}


def completion(**fields: Any) -> Completion:
    base: dict[str, Any] = {
        "content": "Hi",
        "model": "gpt-4o-mini",
        "provider": "openai",
        "usage": Usage(10, 5),
        "latency_ms": 12.0,
        "cost": 0.001,
        "finish_reason": "stop",
    }
    return Completion(**{**base, **fields})


def body_of(c: Completion) -> dict[str, Any]:
    return completion_body(c, ident="chatcmpl-1", created=1700000000, extra={"provider": c.provider})


def test_a_plain_answer_has_every_field_openai_returns() -> None:
    body = body_of(completion())
    assert body["object"] == "chat.completion"
    assert (body["id"], body["created"], body["model"]) == ("chatcmpl-1", 1700000000, "gpt-4o-mini")
    assert body["system_fingerprint"] is None
    assert body["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hi", "refusal": None, "annotations": []},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ]
    assert body["switchyard"] == {"provider": "openai"}
    parsed = ChatCompletion.model_validate(body)
    assert parsed.choices[0].message.content == "Hi"
    assert parsed.choices[0].message.audio is None


def test_usage_details() -> None:
    usage = Usage(100, 40, cached_input_tokens=60, cache_write_tokens=10, reasoning_tokens=25)
    parsed = ChatCompletion.model_validate(body_of(completion(usage=usage)))
    assert parsed.usage is not None
    assert (parsed.usage.prompt_tokens, parsed.usage.completion_tokens, parsed.usage.total_tokens) == (100, 40, 140)
    assert parsed.usage.prompt_tokens_details and parsed.usage.prompt_tokens_details.cached_tokens == 60
    details = parsed.usage.completion_tokens_details
    assert details and details.reasoning_tokens == 25


def test_tool_calls_refusal_reasoning_and_logprobs() -> None:
    calls = (ToolCall("call_1", "get_weather", '{"city":"Paris"}'),)
    body = body_of(completion(content="", tool_calls=calls, finish_reason="tool_calls", logprobs=LOGPROBS))
    message = body["choices"][0]["message"]
    assert message["content"] is None
    assert message["tool_calls"] == [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}
    ]
    parsed = ChatCompletion.model_validate(body)
    assert parsed.choices[0].finish_reason == "tool_calls"
    assert parsed.choices[0].logprobs and parsed.choices[0].logprobs.content
    assert parsed.choices[0].logprobs.content[0].token == "Hi"

    refused = body_of(completion(content="", refusal="I can't help with that."))["choices"][0]["message"]
    assert (refused["content"], refused["refusal"]) == (None, "I can't help with that.")

    thought = (ReasoningPart("step one; "), ReasoningPart("hidden", redacted=True), ReasoningPart("step two"))
    message = body_of(completion(reasoning=thought))["choices"][0]["message"]
    assert message["reasoning_content"] == "step one; step two"


def test_n_choices() -> None:
    more = (Choice(1, "Hello"), Choice(2, "", finish_reason="length"))
    parsed = ChatCompletion.model_validate(body_of(completion(more_choices=more)))
    assert [(c.index, c.message.content, c.finish_reason) for c in parsed.choices] == [
        (0, "Hi", "stop"),
        (1, "Hello", "stop"),
        (2, "", "length"),
    ]


def test_a_missing_finish_reason_is_stop_or_tool_calls() -> None:
    assert body_of(completion(finish_reason=None))["choices"][0]["finish_reason"] == "stop"
    calls = (ToolCall("c", "f", "{}"),)
    assert body_of(completion(finish_reason=None, tool_calls=calls))["choices"][0]["finish_reason"] == "tool_calls"


def encode_stream(chunks: list[StreamChunk], *, include_usage: bool) -> list[dict[str, Any]]:
    encoder = ChunkEncoder("chatcmpl-2", 1700000000, "claude", include_usage=include_usage)
    bodies = [encoder.role()]
    for chunk in chunks:
        bodies.extend(encoder.encode(chunk))
    for body in bodies:
        ChatCompletionChunk.model_validate(body)
    return bodies


STREAM = [
    StreamChunk(reasoning="thinking"),
    StreamChunk(delta="Hel"),
    StreamChunk(delta="lo", logprobs=LOGPROBS),
    StreamChunk(tool_calls=(ToolCallDelta(0, "call_1", "f", '{"a"'),)),
    StreamChunk(tool_calls=(ToolCallDelta(0, arguments=": 1}"),)),
    StreamChunk(finish_reason="tool_calls", usage=Usage(7, 3, cached_input_tokens=2, reasoning_tokens=1)),
]


def test_stream_chunks() -> None:
    bodies = encode_stream(STREAM, include_usage=False)
    deltas = [b["choices"][0]["delta"] for b in bodies]
    assert deltas[0] == {"role": "assistant", "content": "", "refusal": None}
    assert deltas[1] == {"reasoning_content": "thinking"}
    assert deltas[2:4] == [{"content": "Hel"}, {"content": "lo"}]
    assert bodies[3]["choices"][0]["logprobs"] == LOGPROBS
    assert deltas[4] == {
        "tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a"'}}]
    }
    assert deltas[5] == {"tool_calls": [{"index": 0, "function": {"arguments": ": 1}"}}]}
    assert bodies[-1]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "tool_calls"}
    assert all("usage" not in b for b in bodies)
    assert len({(b["id"], b["created"], b["model"]) for b in bodies}) == 1


def test_stream_usage_chunk_when_asked() -> None:
    bodies = encode_stream(STREAM, include_usage=True)
    assert all(b["usage"] is None for b in bodies[:-1])
    last = ChatCompletionChunk.model_validate(bodies[-1])
    assert last.choices == []
    assert last.usage and (last.usage.prompt_tokens, last.usage.completion_tokens) == (7, 3)
    assert last.usage.prompt_tokens_details and last.usage.prompt_tokens_details.cached_tokens == 2


def test_stream_refusal_and_other_choices() -> None:
    bodies = encode_stream(
        [StreamChunk(refusal="No."), StreamChunk(delta="b", choice=1), StreamChunk(finish_reason="stop")],
        include_usage=False,
    )
    indexed = [(b["choices"][0]["index"], b["choices"][0]["delta"]) for b in bodies]
    assert indexed[1] == (0, {"refusal": "No."})
    assert indexed[2] == (1, {"role": "assistant", "content": "", "refusal": None})  # choice 1's opening
    assert indexed[3] == (1, {"content": "b"})
