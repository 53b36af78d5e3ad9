"""The Gemini REST codec: canonical request -> GenerateContentRequest, answers and SSE streams -> canonical,
Google error bodies -> typed errors. Payloads are recorded in the shape the real API sends."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from typing import Any

import orjson
import pytest

from app.domain import (
    ChatRequest,
    FilePart,
    ImagePart,
    Message,
    Reasoning,
    ReasoningPart,
    ResponseFormat,
    StreamChunk,
    TextPart,
    ToolCall,
    ToolCallDelta,
    ToolSpec,
    Usage,
)
from app.errors import (
    InvalidRequestError,
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
from app.providers.base import Capabilities, HttpAnswer, ModelTarget, SSEEvent
from app.providers.google import CODEC, SIGNATURE_MARK, GoogleCodec, decode_call_id, encode_call_id
from app.providers.sse import SSEParser
from app.settings.catalogue import ModelConfig
from tests.fakes import gemini_wire
from tests.fakes.scripts import Reply, resolve

PRICE = Price(None, None, "config")
TARGET = ModelTarget("gem", "google", "gemini-2.5-flash", 30.0, PRICE, ModelConfig(provider="google"))
SIGNATURE = "CikBypeBEsobvcr6wjGzmiPcTaeG7/gUfE5yuYB3ha/uSLsKZQE+I+gWADlZSjOJT2Vk4bE0i716AA=="
WEATHER = ToolSpec(
    "get_weather",
    "Weather for a city",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    strict=True,
)


def _request(*messages: Message, **options: Any) -> ChatRequest:
    return ChatRequest(messages=messages or (Message("user", "hi"),), **options)


def _body(request: ChatRequest, stream: bool = False) -> dict[str, Any]:
    return orjson.loads(CODEC.encode(request, TARGET, stream=stream).body)


def _answer(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> HttpAnswer:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return HttpAnswer(status, headers or {"content-type": "application/json"}, raw)


def _decode(body: Any) -> Any:
    return CODEC.decode(_answer(body), _request(), TARGET)


def _event(payload: Any) -> SSEEvent:
    data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return SSEEvent(event=None, data=data, raw=f"data: {data}\r\n\r\n".encode())


# --- the codec's shape ----------------------------------------------------------------------------------


def test_codec_identity_auth_and_capabilities() -> None:
    assert isinstance(CODEC, GoogleCodec)
    assert (CODEC.kind, CODEC.default_base_url, CODEC.protocol) == (
        "google",
        "https://generativelanguage.googleapis.com",
        None,
    )
    assert CODEC.auth_headers("AIzaKEY") == {"x-goog-api-key": "AIzaKEY"}
    assert CODEC.auth_headers(None) == {}
    assert CODEC.capabilities(TARGET) == Capabilities(
        images=True,
        image_urls=False,
        files=True,
        json_schema=True,
        json_object=True,
        tools=True,
        strict_tools=True,
        parallel_tool_control=False,
        reasoning=True,
        logprobs=True,
        logit_bias=False,
        seed=True,
        penalties=True,
        top_k=True,
        native_n=True,
        droppable=frozenset(),
    )


def test_paths_and_stream_query() -> None:
    call = CODEC.encode(_request(), TARGET, stream=False)
    assert (call.path, dict(call.query), call.stream, call.method) == (
        "/v1beta/models/gemini-2.5-flash:generateContent",
        {},
        False,
        "POST",
    )
    stream = CODEC.encode(_request(), TARGET, stream=True)
    assert (stream.path, dict(stream.query), stream.stream) == (
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
        {"alt": "sse"},
        True,
    )
    prefixed = ModelTarget("gem", "google", "models/gemini-2.0-flash", 30.0, PRICE, TARGET.config)
    assert CODEC.encode(_request(), prefixed, stream=False).path == "/v1beta/models/gemini-2.0-flash:generateContent"


# --- encode ---------------------------------------------------------------------------------------------

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
SIGNED_ID = encode_call_id("call_1", base64.b64decode(SIGNATURE))
WEATHER_DECLARATION = {
    "name": "get_weather",
    "description": "Weather for a city",
    "parametersJsonSchema": WEATHER.parameters,
}
WEATHER_TOOLS = [{"functionDeclarations": [WEATHER_DECLARATION]}]

ENCODE_CASES: list[tuple[str, ChatRequest, dict[str, Any]]] = [
    (
        "system and merged roles",
        _request(
            Message("system", "be brief"),
            Message("system", "be kind"),
            Message("user", "hello"),
            Message("user", "there"),
            Message("assistant", "hi"),
            Message("user", "again"),
        ),
        {
            "systemInstruction": {"parts": [{"text": "be brief\n\nbe kind"}]},
            "contents": [
                {"role": "user", "parts": [{"text": "hello"}, {"text": "there"}]},
                {"role": "model", "parts": [{"text": "hi"}]},
                {"role": "user", "parts": [{"text": "again"}]},
            ],
        },
    ),
    (
        "inline image and pdf",
        _request(
            Message(
                "user",
                "look",
                parts=(
                    TextPart("look"),
                    ImagePart(data=PNG, media_type="image/png", detail="high"),
                    FilePart(data="JVBERi0xLjQ=", filename="a.pdf"),
                    FilePart(url="https://example.com/report.pdf", media_type="application/pdf"),
                ),
            )
        ),
        {
            "contents": [
                {
                    "role": "user",
                    "parts": [
                        {"text": "look"},
                        {"inlineData": {"mimeType": "image/png", "data": PNG}},
                        {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0xLjQ="}},
                        {"fileData": {"mimeType": "application/pdf", "fileUri": "https://example.com/report.pdf"}},
                    ],
                }
            ]
        },
    ),
    (
        "tool call with thought signature and its result",
        _request(
            Message("user", "weather in Paris?"),
            Message(
                "assistant",
                "",
                tool_calls=(ToolCall(SIGNED_ID, "get_weather", '{"city":"Paris"}'), ToolCall("c2", "get_time", "{")),
                reasoning=(ReasoningPart("thinking about weather", provider="google"),),
            ),
            Message("tool", '{"temp": 21}', tool_call_id=SIGNED_ID),
            Message("tool", "noon", tool_call_id="c2"),
            Message("tool", "boom", tool_call_id="unknown", name="explicit", is_error=True),
        ),
        {
            "contents": [
                {"role": "user", "parts": [{"text": "weather in Paris?"}]},
                {
                    "role": "model",
                    "parts": [
                        {
                            "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                            "thoughtSignature": SIGNATURE,
                        },
                        {"functionCall": {"name": "get_time", "args": {"_raw": "{"}}},
                    ],
                },
                {
                    "role": "user",
                    "parts": [
                        {"functionResponse": {"name": "get_weather", "response": {"temp": 21}}},
                        {"functionResponse": {"name": "get_time", "response": {"output": "noon"}}},
                        {"functionResponse": {"name": "explicit", "response": {"error": "boom"}}},
                    ],
                },
            ]
        },
    ),
    (
        "tools with strict and a tool without parameters",
        _request(tools=(WEATHER, ToolSpec("ping")), tool_choice="auto", parallel_tool_calls=False),
        {
            "tools": [
                {
                    "functionDeclarations": [
                        WEATHER_DECLARATION,
                        {"name": "ping"},
                    ]
                }
            ],
            "toolConfig": {"functionCallingConfig": {"mode": "AUTO"}},
        },
    ),
    (
        "tool choice none",
        _request(tools=(WEATHER,), tool_choice="none"),
        {"tools": WEATHER_TOOLS, "toolConfig": {"functionCallingConfig": {"mode": "NONE"}}},
    ),
    (
        "tool choice required",
        _request(tools=(WEATHER,), tool_choice="required"),
        {"tools": WEATHER_TOOLS, "toolConfig": {"functionCallingConfig": {"mode": "ANY"}}},
    ),
    (
        "tool choice named",
        _request(tools=(WEATHER,), tool_choice={"type": "function", "function": {"name": "get_weather"}}),
        {
            "tools": WEATHER_TOOLS,
            "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}},
        },
    ),
    (
        "json object",
        _request(response_format=ResponseFormat("json_object")),
        {"generationConfig": {"responseMimeType": "application/json"}},
    ),
    (
        "json schema",
        _request(response_format=ResponseFormat("json_schema", name="w", schema={"type": "object"}, strict=True)),
        {"generationConfig": {"responseMimeType": "application/json", "responseJsonSchema": {"type": "object"}}},
    ),
    ("text format", _request(response_format=ResponseFormat("text")), {}),
    *[
        (
            f"reasoning effort {effort}",
            _request(reasoning=Reasoning(effort=effort)),  # type: ignore[arg-type]
            {"generationConfig": {"thinkingConfig": {"thinkingBudget": budget, "includeThoughts": True}}},
        )
        for effort, budget in (("minimal", 512), ("low", 1024), ("medium", 8192), ("high", 24576), ("xhigh", 32768))
    ],
    (
        "reasoning effort none disables thinking",
        _request(reasoning=Reasoning(effort="none")),
        {"generationConfig": {"thinkingConfig": {"thinkingBudget": 0}}},
    ),
    (
        "explicit budget wins",
        _request(reasoning=Reasoning(effort="low", budget_tokens=2000)),
        {"generationConfig": {"thinkingConfig": {"thinkingBudget": 2000, "includeThoughts": True}}},
    ),
    (
        "summary only asks for thoughts",
        _request(reasoning=Reasoning(summary="auto")),
        {"generationConfig": {"thinkingConfig": {"includeThoughts": True}}},
    ),
    (
        "sampling",
        _request(
            max_tokens=64,
            temperature=0.2,
            top_p=0.9,
            top_k=40,
            stop=("END", "STOP"),
            seed=7,
            presence_penalty=0.5,
            frequency_penalty=-0.5,
            logprobs=True,
            top_logprobs=3,
            n=2,
        ),
        {
            "generationConfig": {
                "maxOutputTokens": 64,
                "temperature": 0.2,
                "topP": 0.9,
                "topK": 40,
                "stopSequences": ["END", "STOP"],
                "seed": 7,
                "presencePenalty": 0.5,
                "frequencyPenalty": -0.5,
                "responseLogprobs": True,
                "logprobs": 3,
                "candidateCount": 2,
            }
        },
    ),
    ("logprobs without top", _request(logprobs=True), {"generationConfig": {"responseLogprobs": True}}),
    (
        "droppable options are not forwarded",
        _request(
            store=True, user="u1", metadata={"k": "v"}, service_tier="flex", prompt_cache_key="p", safety_identifier="s"
        ),
        {},
    ),
]


@pytest.mark.parametrize(("request_", "expected"), [c[1:] for c in ENCODE_CASES], ids=[c[0] for c in ENCODE_CASES])
def test_encode(request_: ChatRequest, expected: dict[str, Any]) -> None:
    body = _body(request_)
    default_contents = [{"role": "user", "parts": [{"text": "hi"}]}]
    assert body == {"contents": default_contents, **expected}


@pytest.mark.parametrize(
    ("request_", "param"),
    [
        (
            _request(Message("user", "x", parts=(TextPart("x"), ImagePart(url="https://img.example/cat.png")))),
            "messages[0].content[1]",
        ),
        (_request(Message("user", "x", parts=(ImagePart(data=PNG),))), "messages[0].content[0]"),
        (
            _request(Message("system", "s"), Message("user", "x", parts=(FilePart(file_id="file-abc"),))),
            "messages[1].content[0]",
        ),
        (_request(logit_bias={"50256": -100}), "logit_bias"),
        (_request(tools=(WEATHER,), tool_choice="sometimes"), "tool_choice"),
        (_request(tools=(WEATHER,), tool_choice={"type": "function"}), "tool_choice"),
    ],
)
def test_encode_refuses_what_gemini_cannot_express(request_: ChatRequest, param: str) -> None:
    with pytest.raises(InvalidRequestError) as exc:
        CODEC.encode(request_, TARGET, stream=False)
    assert exc.value.details["param"] == param
    assert param in exc.value.message or param in ("logit_bias", "tool_choice")


def test_call_id_signature_round_trip() -> None:
    raw = base64.b64decode(SIGNATURE)
    call_id = encode_call_id("call_9", raw)
    assert call_id.startswith("call_9" + SIGNATURE_MARK)
    assert all(c.isalnum() or c in "_-" for c in call_id)
    assert decode_call_id(call_id) == raw
    assert decode_call_id("call_9") is None
    assert encode_call_id(None, None).startswith("call_")


# --- decode ---------------------------------------------------------------------------------------------

THINKING_CALL = {
    "candidates": [
        {
            "content": {
                "parts": [
                    {
                        "text": "**Checking the forecast**\n\nThe user wants the weather in Paris, so I call the tool.",
                        "thought": True,
                    },
                    {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": SIGNATURE},
                    {"functionCall": {"name": "get_weather", "args": {"city": "Lyon"}}},
                ],
                "role": "model",
            },
            "finishReason": "STOP",
            "index": 0,
        }
    ],
    "usageMetadata": {
        "promptTokenCount": 71,
        "candidatesTokenCount": 30,
        "totalTokenCount": 190,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 71}],
        "thoughtsTokenCount": 89,
    },
    "modelVersion": "gemini-2.5-flash",
    "responseId": "Yx5CaOXYJ4WkmNAP_L2H4Ak",
}

TWO_CANDIDATES = {
    "candidates": [
        {
            "content": {"parts": [{"text": "Second"}], "role": "model"},
            "finishReason": "MAX_TOKENS",
            "avgLogprobs": -0.3,
            "logprobsResult": {"chosenCandidates": [{"token": "Second", "tokenId": 17, "logProbability": -0.3}]},
            "index": 1,
        },
        {
            "content": {"parts": [{"text": "Hello"}, {"text": " world"}], "role": "model"},
            "finishReason": "STOP",
            "avgLogprobs": -0.1,
            "logprobsResult": {
                "topCandidates": [{"candidates": [{"token": "Hello", "tokenId": 9, "logProbability": -0.1}]}],
                "chosenCandidates": [{"token": "Hello", "tokenId": 9, "logProbability": -0.1}],
            },
            "index": 0,
        },
    ],
    "usageMetadata": {
        "promptTokenCount": 1200,
        "candidatesTokenCount": 4,
        "totalTokenCount": 1204,
        "cachedContentTokenCount": 1024,
        "cacheTokensDetails": [{"modality": "TEXT", "tokenCount": 1024}],
    },
    "modelVersion": "gemini-2.0-flash-001",
}

SAFETY_STOP = {
    "candidates": [
        {
            "finishReason": "SAFETY",
            "index": 0,
            "safetyRatings": [{"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True}],
        }
    ],
    "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9},
    "modelVersion": "gemini-2.5-flash",
}


def test_decode_thoughts_and_signed_function_calls() -> None:
    decoded = _decode(THINKING_CALL)
    assert decoded.content == ""
    assert decoded.reasoning == (
        ReasoningPart(
            "**Checking the forecast**\n\nThe user wants the weather in Paris, so I call the tool.", provider="google"
        ),
    )
    assert decoded.finish_reason == "tool_calls"
    first, second = decoded.tool_calls
    assert (first.name, json.loads(first.arguments)) == ("get_weather", {"city": "Paris"})
    assert decode_call_id(first.id) == base64.b64decode(SIGNATURE)
    assert decode_call_id(second.id) is None and first.id != second.id
    assert decoded.usage == Usage(input_tokens=71, output_tokens=119, reasoning_tokens=89)
    assert decoded.upstream_model == "gemini-2.5-flash"
    # the next turn sends the signature back with the call, byte for byte
    history = _request(
        Message("user", "weather?"),
        Message("assistant", "", tool_calls=decoded.tool_calls),
        Message("tool", "21C", tool_call_id=first.id),
        Message("tool", "19C", tool_call_id=second.id),
    )
    model_turn = _body(history)["contents"][1]
    assert model_turn["parts"][0] == {
        "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
        "thoughtSignature": SIGNATURE,
    }
    assert "thoughtSignature" not in model_turn["parts"][1]


def test_decode_candidates_in_index_order_with_logprobs_and_cache() -> None:
    decoded = _decode(TWO_CANDIDATES)
    assert (decoded.content, decoded.finish_reason) == ("Hello world", "stop")
    assert decoded.logprobs == {  # in OpenAI's shape, which clients read
        "content": [
            {
                "token": "Hello",
                "logprob": -0.1,
                "bytes": list(b"Hello"),
                "top_logprobs": [{"token": "Hello", "logprob": -0.1, "bytes": list(b"Hello")}],
            }
        ],
        "refusal": None,
    }
    (other,) = decoded.more_choices
    assert (other.index, other.content, other.finish_reason) == (1, "Second", "length")
    assert other.logprobs["content"][0]["token"] == "Second" and other.logprobs["content"][0]["top_logprobs"] == []
    assert decoded.usage == Usage(input_tokens=1200, output_tokens=4, cached_input_tokens=1024)


def test_decode_safety_stop_and_missing_usage() -> None:
    decoded = _decode(SAFETY_STOP)
    assert (decoded.content, decoded.finish_reason, decoded.tool_calls) == ("", "content_filter", ())
    assert decoded.usage == Usage(input_tokens=9)
    no_usage = {"candidates": [{"content": {"parts": [{"text": "ok"}], "role": "model"}, "finishReason": "STOP"}]}
    decoded = _decode(no_usage)
    assert (decoded.content, decoded.usage) == ("ok", None)


def test_decode_empty_answer_after_thinking_is_a_length_stop() -> None:
    # thinking used up maxOutputTokens: content has a role but no parts
    body = {
        "candidates": [{"content": {"role": "model"}, "finishReason": "MAX_TOKENS", "index": 0}],
        "usageMetadata": {"promptTokenCount": 5, "totalTokenCount": 69, "thoughtsTokenCount": 64},
    }
    decoded = _decode(body)
    assert (decoded.content, decoded.finish_reason) == ("", "length")
    assert decoded.usage == Usage(input_tokens=5, output_tokens=64, reasoning_tokens=64)


MALFORMED: list[tuple[str, Any]] = [
    ("truncated", b'{"candidates": [{"content": {"parts": [{"text": "Hel'),
    ("empty", b""),
    ("invalid utf-8", b"\xff"),
    ("html", b"<html><body><h1>502 Bad Gateway</h1></body></html>"),
    ("array", [{"candidates": []}]),
    ("string", "just text"),
    ("candidates empty", {"candidates": [], "usageMetadata": {"promptTokenCount": 3}}),
    ("candidates missing", {"usageMetadata": {"promptTokenCount": 3}}),
    ("candidates not a list", {"candidates": {"content": {}}}),
    ("candidate not an object", {"candidates": ["hi"]}),
    ("candidate with nothing", {"candidates": [{"index": 0}]}),
    ("parts not a list", {"candidates": [{"content": {"parts": "hi"}, "finishReason": "STOP"}]}),
    ("text not a string", {"candidates": [{"content": {"parts": [{"text": 5}]}, "finishReason": "STOP"}]}),
    (
        "call without name",
        {"candidates": [{"content": {"parts": [{"functionCall": {"args": {}}}]}, "finishReason": "STOP"}]},
    ),
    (
        "call args not an object",
        {
            "candidates": [
                {"content": {"parts": [{"functionCall": {"name": "f", "args": "x"}}]}, "finishReason": "STOP"}
            ]
        },
    ),
    (
        "usage with strings",
        {
            "candidates": [{"content": {"parts": [{"text": "ok"}]}, "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": "many", "candidatesTokenCount": 1},
        },
    ),
    (
        "usage not an object",
        {"candidates": [{"content": {"parts": [{"text": "ok"}]}, "finishReason": "STOP"}], "usageMetadata": [1]},
    ),
]


@pytest.mark.parametrize("body", [c[1] for c in MALFORMED], ids=[c[0] for c in MALFORMED])
def test_decode_malformed_is_a_typed_server_error(body: Any) -> None:
    with pytest.raises(UpstreamServerError) as exc:
        _decode(body)
    assert exc.value.provider == "google" and exc.value.model == "gem"
    assert "malformed" in exc.value.message


def test_blocked_prompt_is_a_bad_request_with_its_reason() -> None:
    body = {
        "promptFeedback": {
            "blockReason": "PROHIBITED_CONTENT",
            "safetyRatings": [{"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH"}],
        },
        "usageMetadata": {"promptTokenCount": 12, "totalTokenCount": 12},
        "modelVersion": "gemini-2.5-flash",
    }
    for payload in (body, {**body, "candidates": []}):
        with pytest.raises(UpstreamBadRequestError) as exc:
            _decode(payload)
        assert "blocked" in exc.value.message and "PROHIBITED_CONTENT" in exc.value.message
        assert exc.value.details["block_reason"] == "PROHIBITED_CONTENT"
        assert not exc.value.retryable


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ({"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}, UpstreamUnavailableError),
        ({"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}, UpstreamRateLimitError),
        ({"message": "quota", "status": "RESOURCE_EXHAUSTED"}, UpstreamRateLimitError),
        ({"code": 500, "message": "Internal error encountered.", "status": "INTERNAL"}, UpstreamServerError),
        ("nonsense", UpstreamServerError),
    ],
)
def test_error_object_in_a_200_is_typed(error: Any, expected: type[UpstreamError]) -> None:
    with pytest.raises(expected) as exc:
        _decode({"error": error})
    assert exc.value.provider == "google"


# --- stream ---------------------------------------------------------------------------------------------

THINKING_TEXT_STREAM = [
    {
        "candidates": [
            {
                "content": {
                    "parts": [{"text": "**Weighing the greeting**\n\nA short answer.", "thought": True}],
                    "role": "model",
                },
                "index": 0,
            }
        ],
        "usageMetadata": {
            "promptTokenCount": 8,
            "totalTokenCount": 8,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 8}],
        },
        "modelVersion": "gemini-2.5-flash",
        "responseId": "f0FCaKGdIZ6nmNAPh_bEuAw",
    },
    {
        "candidates": [{"content": {"parts": [{"text": "Hello"}], "role": "model"}, "index": 0}],
        "usageMetadata": {"promptTokenCount": 8, "totalTokenCount": 40, "thoughtsTokenCount": 31},
        "modelVersion": "gemini-2.5-flash",
        "responseId": "f0FCaKGdIZ6nmNAPh_bEuAw",
    },
    {
        "candidates": [
            {
                "content": {"parts": [{"text": " there!", "thoughtSignature": SIGNATURE}], "role": "model"},
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {
            "promptTokenCount": 8,
            "candidatesTokenCount": 3,
            "totalTokenCount": 42,
            "cachedContentTokenCount": 4,
            "thoughtsTokenCount": 31,
        },
        "modelVersion": "gemini-2.5-flash",
        "responseId": "f0FCaKGdIZ6nmNAPh_bEuAw",
    },
]

CALL_STREAM = [
    {
        "candidates": [
            {
                "content": {
                    "parts": [
                        {
                            "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                            "thoughtSignature": SIGNATURE,
                        }
                    ],
                    "role": "model",
                },
                "index": 0,
            }
        ],
        "usageMetadata": {"promptTokenCount": 20, "totalTokenCount": 20},
    },
    {
        "candidates": [
            {
                "content": {
                    "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Lyon"}}}],
                    "role": "model",
                },
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {"promptTokenCount": 20, "candidatesTokenCount": 10, "totalTokenCount": 30},
    },
]


def _run(events: list[Any], n: int = 1) -> tuple[list[StreamChunk], Any]:
    decoder = CODEC.stream_decoder(_request(n=n), TARGET)
    chunks: list[StreamChunk] = []
    for payload in events:
        assert not decoder.done
        chunks.extend(decoder.feed(_event(payload)))
    return chunks, decoder


def test_stream_thoughts_text_and_usage() -> None:
    chunks, decoder = _run(THINKING_TEXT_STREAM)
    assert [(c.reasoning, c.delta) for c in chunks] == [
        ("**Weighing the greeting**\n\nA short answer.", ""),
        ("", "Hello"),
        ("", " there!"),
    ]
    assert all(c.finish_reason is None and c.usage is None for c in chunks)
    assert decoder.done
    final = decoder.finish()
    assert final.finish_reason == "stop"
    assert final.usage == Usage(input_tokens=8, output_tokens=34, cached_input_tokens=4, reasoning_tokens=31)


def test_stream_function_calls_are_complete_deltas_with_signed_ids() -> None:
    chunks, decoder = _run(CALL_STREAM)
    deltas = [d for c in chunks for d in c.tool_calls]
    assert [(d.index, d.name, json.loads(d.arguments)) for d in deltas] == [
        (0, "get_weather", {"city": "Paris"}),
        (1, "get_weather", {"city": "Lyon"}),
    ]
    assert decode_call_id(deltas[0].id or "") == base64.b64decode(SIGNATURE)
    assert all(isinstance(d, ToolCallDelta) and d.id for d in deltas)
    final = decoder.finish()
    assert (final.finish_reason, final.usage) == ("tool_calls", Usage(input_tokens=20, output_tokens=10))


def test_stream_two_candidates_and_logprobs() -> None:
    logprobs = {"chosenCandidates": [{"token": "A", "tokenId": 3, "logProbability": -0.2}]}
    events = [
        {
            "candidates": [
                {"content": {"parts": [{"text": "A"}], "role": "model"}, "index": 0, "logprobsResult": logprobs},
                {"content": {"parts": [{"text": "B"}], "role": "model"}, "index": 1},
            ]
        },
        {"candidates": [{"content": {"parts": [{"text": ""}], "role": "model"}, "finishReason": "STOP", "index": 0}]},
        {
            "candidates": [{"finishReason": "MAX_TOKENS", "index": 1}],
            "usageMetadata": {"promptTokenCount": 2, "candidatesTokenCount": 2},
        },
    ]
    decoder = CODEC.stream_decoder(_request(n=2), TARGET)
    chunks = [c for e in events[:2] for c in decoder.feed(_event(e))]
    converted = {"content": [{"token": "A", "logprob": -0.2, "bytes": [65], "top_logprobs": []}], "refusal": None}
    assert [(c.choice, c.delta, c.logprobs) for c in chunks] == [(0, "A", converted), (1, "B", None)]
    assert not decoder.done  # candidate 1 has not finished yet
    list(decoder.feed(_event(events[2])))
    assert decoder.done
    closing = StreamChunk(
        finish_reason="stop", usage=Usage(input_tokens=2, output_tokens=2), other_finishes=((1, "length"),)
    )
    assert decoder.finish() == closing  # candidate 1 ends on the same closing chunk
    assert decoder.finish_reason_of(1) == "length"  # type: ignore[attr-defined]


def test_stream_without_usage_and_blank_events() -> None:
    decoder = CODEC.stream_decoder(_request(), TARGET)
    assert list(decoder.feed(SSEEvent(event=None, data="", raw=b"data: \r\n\r\n"))) == []
    list(decoder.feed(_event({"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": "STOP"}]})))
    assert decoder.finish() == StreamChunk(finish_reason="stop", usage=None)


def test_stream_truncated_before_a_finish_reason_raises() -> None:
    _, decoder = _run(THINKING_TEXT_STREAM[:2])
    assert not decoder.done
    with pytest.raises(UpstreamStreamError):
        decoder.finish()
    with pytest.raises(UpstreamStreamError):
        CODEC.stream_decoder(_request(), TARGET).finish()


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (
            {"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}},
            UpstreamUnavailableError,
        ),
        ({"error": {"code": 529, "message": "overloaded", "status": "INTERNAL"}}, UpstreamUnavailableError),
        ({"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}}, UpstreamRateLimitError),
        ({"error": {"code": 504, "message": "Deadline expired", "status": "DEADLINE_EXCEEDED"}}, UpstreamTimeoutError),
        (
            {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 3}},
            UpstreamBadRequestError,
        ),
        ('{"candidates": [{"content": {"parts": [{"text": "Hel', UpstreamServerError),
        ("[1, 2]", UpstreamServerError),
        ("<html>oops</html>", UpstreamServerError),
        ({"candidates": "x"}, UpstreamServerError),
        ({"candidates": [{"content": {"parts": [{"text": "a"}]}, "index": "zero"}]}, UpstreamServerError),
        (
            {"candidates": [{"content": {"parts": [{"text": "a"}]}}], "usageMetadata": {"promptTokenCount": "3"}},
            UpstreamServerError,
        ),
    ],
)
def test_stream_error_and_malformed_events(payload: Any, expected: type[UpstreamError]) -> None:
    decoder = CODEC.stream_decoder(_request(), TARGET)
    list(decoder.feed(_event({"candidates": [{"content": {"parts": [{"text": "Hi"}]}, "index": 0}]})))
    with pytest.raises(expected) as exc:
        list(decoder.feed(_event(payload)))
    assert type(exc.value) is expected
    assert exc.value.provider == "google"


# --- errors ---------------------------------------------------------------------------------------------


def _google_error(code: int, status: str, message: str, details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details is not None:
        error["details"] = details
    return {"error": error}


def _error_info(reason: str) -> list[dict[str, Any]]:
    return [
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": reason,
            "domain": "googleapis.com",
            "metadata": {"service": "generativelanguage.googleapis.com"},
        },
        {
            "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
            "locale": "en-US",
            "message": "API key not valid.",
        },
    ]


@pytest.mark.parametrize("reason", ["API_KEY_INVALID", "API_KEY_SERVICE_BLOCKED", "ACCESS_TOKEN_EXPIRED"])
def test_bad_key_400_is_an_auth_failure(reason: str) -> None:
    body = _google_error(
        400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", _error_info(reason)
    )
    error = CODEC.error(_answer(body, 400), TARGET)
    assert type(error) is UpstreamAuthError
    assert error.upstream_status == 400 and not error.retryable


def test_rate_limit_without_retry_after_still_has_one() -> None:
    body = _google_error(429, "RESOURCE_EXHAUSTED", "You exceeded your current quota.")
    error = CODEC.error(_answer(body, 429), TARGET)
    assert isinstance(error, UpstreamRateLimitError) and error.retry_after is not None and error.retry_after > 0


def test_rate_limit_reads_retry_info_and_prefers_the_header() -> None:
    details = [
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{"quotaMetric": "x"}]},
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "34s"},
    ]
    body = _google_error(429, "RESOURCE_EXHAUSTED", "You exceeded your current quota.", details)
    error = CODEC.error(_answer(body, 429), TARGET)
    assert isinstance(error, UpstreamRateLimitError) and error.retry_after == 34.0
    error = CODEC.error(_answer(body, 429, {"content-type": "application/json", "retry-after": "5"}), TARGET)
    assert isinstance(error, UpstreamRateLimitError) and error.retry_after == 5.0


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            404,
            _google_error(404, "NOT_FOUND", "models/gemini-9 is not found for API version v1beta"),
            UpstreamConfigError,
        ),
        (
            400,
            _google_error(400, "INVALID_ARGUMENT", "The input token count exceeds the maximum"),
            UpstreamBadRequestError,
        ),
        (403, _google_error(403, "PERMISSION_DENIED", "denied"), UpstreamAuthError),
        (500, _google_error(500, "INTERNAL", "Internal error encountered."), UpstreamServerError),
        (503, _google_error(503, "UNAVAILABLE", "The model is overloaded."), UpstreamUnavailableError),
        (504, _google_error(504, "DEADLINE_EXCEEDED", "Deadline expired"), UpstreamTimeoutError),
        (500, b"<html><body>Internal Server Error</body></html>", UpstreamServerError),
        (502, b"", UpstreamServerError),
        (429, b"rate limited", UpstreamRateLimitError),
        (400, [_google_error(400, "INVALID_ARGUMENT", "wrapped", _error_info("API_KEY_INVALID"))], UpstreamAuthError),
    ],
)
def test_error_mapping(status: int, body: Any, expected: type[UpstreamError]) -> None:
    error = CODEC.error(_answer(body, status, {"content-type": "text/html"}), TARGET)
    assert type(error) is expected
    assert (error.provider, error.model, error.upstream_status) == ("google", "gem", status)


def test_error_messages_are_sanitised() -> None:
    body = _google_error(
        400, "INVALID_ARGUMENT", "Bad key AIzaSyA1234567890abcdefghijklmnop at https://internal.corp/x from 10.0.0.4"
    )
    error = CODEC.error(_answer(body, 400), TARGET)
    assert isinstance(error, UpstreamBadRequestError)
    for leak in ("AIzaSy", "internal.corp", "10.0.0.4"):
        assert leak not in error.message


# --- the fake upstream speaks what the codec reads ------------------------------------------------------


@pytest.mark.parametrize("tool_calls", [None, [{"name": "get_weather", "arguments": {"city": "Paris"}}]])
def test_codec_reads_the_fake_gemini(tool_calls: list[dict[str, Any]] | None) -> None:
    parsed = gemini_wire.GeminiRequest(
        model="gemini-x",
        stream=True,
        last_user_text="hi",
        input_text="be brief hi",
        candidate_count=2,
        include_thoughts=True,
        response_logprobs=True,
        top_logprobs=2,
    )
    reply = Reply(text="Hello there", reasoning="hmm, a greeting", reasoning_tokens=4, cached_input_tokens=1)
    plan = resolve(replace(reply, tool_calls=tool_calls), parsed)
    decoded = _decode(gemini_wire.completion(plan, parsed))
    assert (decoded.content, decoded.reasoning) == (
        "Hello there",
        (ReasoningPart("hmm, a greeting", provider="google"),),
    )
    assert decoded.finish_reason == ("tool_calls" if tool_calls else "stop")
    assert len(decoded.more_choices) == 1 and decoded.more_choices[0].content == "Hello there"
    assert decoded.logprobs["content"][0]["token"] == "Hello "
    usage = Usage(input_tokens=3, output_tokens=2 * plan.output_tokens + 4, cached_input_tokens=1, reasoning_tokens=4)
    assert decoded.usage == usage
    if tool_calls:
        assert decode_call_id(decoded.tool_calls[0].id) is not None  # the fake signs the call
        assert json.loads(decoded.tool_calls[0].arguments) == {"city": "Paris"}

    raw = b"".join(event.data for event in gemini_wire.stream_events(plan, parsed))
    decoder = CODEC.stream_decoder(_request(n=2), TARGET)
    chunks = [chunk for event in SSEParser().feed(raw) for chunk in decoder.feed(event)]
    assert decoder.done
    first = [c for c in chunks if c.choice == 0]
    assert "".join(c.reasoning for c in first) == "hmm, a greeting"
    assert "".join(c.delta for c in first) == "Hello there"
    calls = [d for c in first for d in c.tool_calls]
    assert [d.name for d in calls] == [c["name"] for c in tool_calls or []]
    others = tuple((c.index, c.finish_reason) for c in decoded.more_choices)
    assert decoder.finish() == StreamChunk(finish_reason=decoded.finish_reason, usage=usage, other_finishes=others)
