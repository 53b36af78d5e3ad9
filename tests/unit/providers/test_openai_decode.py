"""The OpenAI chat completions codec, complete answers: recorded ``chat.completion`` bodies, malformed ones
included (``app.providers.openai_decode``)."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest

from app.domain import ChatRequest, Message, Passthrough, ReasoningPart, SourceBody, ToolCall, Usage
from app.errors import (
    ContextWindowExceededError,
    UpstreamAuthError,
    UpstreamError,
    UpstreamRateLimitError,
    UpstreamServerError,
    UpstreamUnavailableError,
)
from app.providers.base import HttpAnswer
from app.providers.openai import CODEC
from app.providers.openai_compatible import CODEC as COMPAT
from tests.unit.providers.openai_payloads import TARGET, USAGE, choice, completion

REQUEST = ChatRequest((Message("user", "hi"),))


def decode(body: bytes | dict[str, Any] | list[Any], request: ChatRequest = REQUEST, codec: Any = CODEC) -> Any:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return codec.decode(HttpAnswer(200, {"content-type": "application/json"}, raw), request, TARGET)


# --- complete answers -----------------------------------------------------------------------------------


def test_text_answer_with_usage_details() -> None:
    decoded = decode(completion(choice({"content": "Hello there."})))
    assert (decoded.content, decoded.finish_reason, decoded.upstream_model) == (
        "Hello there.",
        "stop",
        "gpt-4o-2024-08-06",
    )
    assert decoded.usage == Usage(1200, 300, cached_input_tokens=1024, reasoning_tokens=192)
    assert decoded.tool_calls == () and decoded.refusal is None and decoded.more_choices == ()
    assert decoded.passthrough is None


def test_tool_calls_with_null_content() -> None:
    calls = [
        {"id": "call_abc", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
        {"id": "call_def", "type": "function", "function": {"name": "noop", "arguments": ""}},
        {"type": "function", "function": {"name": "dict_args", "arguments": {"a": 1}}},  # a compatible server
        {"id": "ctm_1", "type": "custom", "custom": {"name": "grammar", "input": "x"}},
    ]
    decoded = decode(completion(choice({"content": None, "tool_calls": calls}, "tool_calls")))
    assert decoded.content == "" and decoded.finish_reason == "tool_calls"
    assert decoded.tool_calls[:2] == (
        ToolCall("call_abc", "get_weather", '{"city":"Paris"}'),
        ToolCall("call_def", "noop", "{}"),
    )
    third = decoded.tool_calls[2]
    assert third.id.startswith("call_") and (third.name, json.loads(third.arguments)) == ("dict_args", {"a": 1})
    assert len(decoded.tool_calls) == 3


def test_refusal() -> None:
    decoded = decode(completion(choice({"content": None, "refusal": "I'm sorry, I can't help with that."})))
    assert (decoded.content, decoded.refusal, decoded.finish_reason) == (
        "",
        "I'm sorry, I can't help with that.",
        "stop",
    )


def test_empty_content_with_a_finish_reason_is_a_legit_answer() -> None:
    decoded = decode(completion(choice({"content": ""}, "length")))
    assert (decoded.content, decoded.finish_reason) == ("", "length")


@pytest.mark.parametrize("key", ["reasoning_content", "reasoning"])
def test_reasoning_of_compatible_servers(key: str) -> None:
    decoded = decode(completion(choice({"content": "4", key: "2+2 is 4"})), codec=COMPAT)
    assert decoded.reasoning == (ReasoningPart(text="2+2 is 4", provider="openai_compatible"),)


def test_n_choices_and_logprobs() -> None:
    logprobs = {
        "content": [
            {
                "token": "Hi",
                "logprob": -0.31,
                "bytes": [72, 105],
                "top_logprobs": [{"token": "Hi", "logprob": -0.31, "bytes": [72, 105]}],
            }
        ],
        "refusal": None,
    }
    body = completion(
        choice({"content": "Hello"}, index=1),
        choice({"content": "Hi"}, index=0, logprobs=logprobs),
        choice(
            {
                "content": None,
                "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
            },
            "tool_calls",
            index=2,
        ),
    )
    decoded = decode(body)
    assert (decoded.content, decoded.logprobs) == ("Hi", logprobs)
    assert [(c.index, c.content, c.finish_reason) for c in decoded.more_choices] == [
        (1, "Hello", "stop"),
        (2, "", "tool_calls"),
    ]
    assert decoded.more_choices[1].tool_calls == (ToolCall("c", "f", "{}"),)


def test_content_as_a_list_of_text_parts() -> None:
    decoded = decode(
        completion(choice({"content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]})), codec=COMPAT
    )
    assert decoded.content == "ab"


@pytest.mark.parametrize("usage", [None, {}, {"total_tokens": 3}])
def test_missing_usage_is_none(usage: Any) -> None:
    body = completion(choice({"content": "x"}), usage=usage)
    if usage is None:
        del body["usage"]
    assert decode(body).usage is None


def test_usage_without_details() -> None:
    usage = {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12, "prompt_tokens_details": None}
    assert decode(completion(choice({"content": "x"}), usage=usage)).usage == Usage(5, 7)


def test_passthrough_keeps_the_exact_bytes() -> None:
    raw = (
        b'{"id":"chatcmpl-1","object":"chat.completion","model":"gpt-4o","x_new_field":1,'
        b'"choices":[{"index":0,"message":{"role":"assistant","content":"hey"},"finish_reason":"stop"}],'
        b'"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}'
    )
    request = ChatRequest((Message("user", "hi"),), source=SourceBody("openai.chat", {"model": "gpt", "messages": []}))
    decoded = decode(raw, request)
    assert decoded.passthrough == Passthrough("openai.chat", raw)
    assert (decoded.content, decoded.usage) == ("hey", Usage(3, 1))


MALFORMED = [
    ("empty body", b""),
    ("truncated JSON", b'{"id":"chatcmpl-1","choices":[{"index":0,"message":{"role":"assistant","content":"He'),
    ("invalid UTF-8", b"\xff\xfe"),
    ("HTML", b"<html><body><h1>502 Bad Gateway</h1></body></html>"),
    ("JSON array", b'[{"choices": []}]'),
    ("JSON string", b'"ok"'),
    ("no choices", orjson.dumps(completion())),
    ("choices missing", orjson.dumps({"id": "x", "object": "chat.completion", "usage": USAGE})),
    ("choices not a list", orjson.dumps(completion() | {"choices": {"0": {}}})),
    ("message missing", orjson.dumps(completion({"index": 0, "finish_reason": "stop"}))),
    ("message null, no finish", orjson.dumps(completion(choice({"content": None}, None)))),
    ("content a number", orjson.dumps(completion(choice({"content": 5})))),
    (
        "usage strings",
        orjson.dumps(completion(choice({"content": "x"}), usage={"prompt_tokens": "many", "completion_tokens": 1})),
    ),
    (
        "usage negative",
        orjson.dumps(completion(choice({"content": "x"}), usage={"prompt_tokens": -1, "completion_tokens": 1})),
    ),
    (
        "usage bool",
        orjson.dumps(completion(choice({"content": "x"}), usage={"prompt_tokens": True, "completion_tokens": 1})),
    ),
    (
        "cached tokens string",
        orjson.dumps(
            completion(choice({"content": "x"}), usage={**USAGE, "prompt_tokens_details": {"cached_tokens": "1"}})
        ),
    ),
    ("usage a list", orjson.dumps(completion(choice({"content": "x"}), usage=[1, 2]))),
    (
        "tool call without name",
        orjson.dumps(completion(choice({"tool_calls": [{"id": "c", "function": {"arguments": "{}"}}]}, "tool_calls"))),
    ),
]


@pytest.mark.parametrize("body", [m[1] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_malformed_answers_are_typed_errors(body: bytes) -> None:
    with pytest.raises(UpstreamServerError) as exc:
        decode(body)
    assert exc.value.error_type == "upstream_server_error" and exc.value.provider == "openai"
    assert exc.value.model == "gpt"


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ({"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}, UpstreamRateLimitError),
        (
            {"message": "too long", "type": "invalid_request_error", "code": "context_length_exceeded"},
            ContextWindowExceededError,
        ),
        ({"message": "bad key", "type": "invalid_request_error", "code": "invalid_api_key"}, UpstreamAuthError),
        ({"message": "boom", "type": "server_error", "code": None}, UpstreamServerError),
        ({"message": "overloaded", "type": "Overloaded", "code": 503}, UpstreamUnavailableError),
    ],
)
def test_error_body_with_a_200_is_the_typed_error(error: dict[str, Any], expected: type) -> None:
    with pytest.raises(UpstreamError) as exc:
        decode({"error": {"param": None, **error}})
    assert type(exc.value) is expected and exc.value.provider == "openai"
