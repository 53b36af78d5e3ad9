"""The Anthropic Messages codec, request side and errors: canonical request -> Messages body, pass-through,
auth, capabilities, and Anthropic error bodies -> typed errors (``app.providers.anthropic``,
``app.providers.anthropic_request``). Answers and streams: test_anthropic_decode.py."""

from __future__ import annotations

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
    SourceBody,
    TextPart,
    ToolCall,
    ToolSpec,
)
from app.errors import (
    InvalidRequestError,
    UpstreamAuthError,
    UpstreamBadRequestError,
    UpstreamConfigError,
    UpstreamError,
    UpstreamRateLimitError,
    UpstreamServerError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from app.pricing import Price
from app.providers.anthropic import CODEC, AnthropicCodec
from app.providers.anthropic_request import (
    DEFAULT_MAX_TOKENS,
    JSON_OBJECT_TOOL,
    anthropic_tool_id,
    json_object_mode,
    strict_schema,
)
from app.providers.base import HttpAnswer, ModelTarget
from app.providers.errors import DEFAULT_RETRY_AFTER_S
from app.settings.catalogue import ModelConfig

TARGET = ModelTarget(
    "claude",
    "anthropic",
    "claude-sonnet-4-5-20250929",
    30.0,
    Price(3.0, 15.0, "config"),
    ModelConfig(provider="anthropic"),
)
USER = (Message("user", "hi"),)
WEATHER = ToolSpec("get_weather", "Weather of a city", {"type": "object", "properties": {"city": {"type": "string"}}})
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
PDF = "JVBERi0xLjQKJcfsj6IKNSAwIG9iago8PC9MZW5ndGggNiAwIFI+PgpzdHJlYW0K"
SIGNATURE = "EqQBCkgIBxABGAIiQMoTGfN2bQ8m0yFLtd6pTkdLNGUoP3vYzCy8JRvTL5KbH2xGnP8vJ3Kx1LsjqKTd9u2ZXrq0WNjUVqzn8="


def body_of(request: ChatRequest, *, stream: bool = False) -> dict[str, Any]:
    call = CODEC.encode(request, TARGET, stream=stream)
    assert call.path == "/v1/messages" and call.method == "POST" and call.stream is stream
    body: dict[str, Any] = orjson.loads(call.body)
    return body


def _thinking(effort: str | None = None, budget: int | None = None) -> Reasoning:
    return Reasoning(effort=effort, budget_tokens=budget)  # type: ignore[arg-type]


# --- codec shape ------------------------------------------------------------------------------------------


def test_codec_identity_and_auth() -> None:
    assert (AnthropicCodec.kind, AnthropicCodec.default_base_url, AnthropicCodec.protocol) == (
        "anthropic",
        "https://api.anthropic.com",
        "anthropic.messages",
    )
    assert isinstance(CODEC, AnthropicCodec)
    assert CODEC.auth_headers("sk-ant-1") == {"x-api-key": "sk-ant-1", "anthropic-version": "2023-06-01"}
    assert CODEC.auth_headers(None) == {"anthropic-version": "2023-06-01"}


def test_capabilities() -> None:
    caps = CODEC.capabilities(TARGET)
    assert all((caps.images, caps.image_urls, caps.files, caps.json_schema, caps.tools, caps.strict_tools))
    assert all((caps.parallel_tool_control, caps.reasoning, caps.top_k, caps.json_object))
    assert not any((caps.logprobs, caps.logit_bias, caps.seed, caps.penalties, caps.native_n))
    assert caps.droppable == frozenset({"user"})


# --- canonical request -> body ----------------------------------------------------------------------------

ENCODE_CASES: list[tuple[str, ChatRequest, dict[str, Any]]] = [
    ("max_tokens", ChatRequest(USER, max_tokens=50), {"max_tokens": 50}),
    (
        "sampling",
        ChatRequest(USER, temperature=0.3, top_p=0.9, top_k=40),
        {"temperature": 0.3, "top_p": 0.9, "top_k": 40},
    ),
    ("stop", ChatRequest(USER, stop=("END", "STOP")), {"stop_sequences": ["END", "STOP"]}),
    ("user", ChatRequest(USER, user="u-42"), {"metadata": {"user_id": "u-42"}}),
    ("metadata user_id", ChatRequest(USER, metadata={"user_id": "u-7", "team": "x"}), {"metadata": {"user_id": "u-7"}}),
    ("zero penalties are no penalties", ChatRequest(USER, presence_penalty=0.0, frequency_penalty=0.0), {}),
    (
        "json_schema",
        ChatRequest(
            USER,
            response_format=ResponseFormat(
                "json_schema",
                name="city",
                schema={"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]},
                strict=True,
            ),
        ),
        {
            "output_config": {
                "format": {
                    "type": "json_schema",
                    "schema": {
                        "type": "object",
                        "properties": {"name": {"type": "string"}},
                        "required": ["name"],
                        "additionalProperties": False,
                    },
                }
            }
        },
    ),
    ("text format", ChatRequest(USER, response_format=ResponseFormat()), {}),
]


@pytest.mark.parametrize(("name", "request_", "expected"), ENCODE_CASES, ids=[c[0] for c in ENCODE_CASES])
def test_encode_fields(name: str, request_: ChatRequest, expected: dict[str, Any]) -> None:
    body = body_of(request_)
    for key, value in expected.items():
        assert body[key] == value, key
    base = {"model", "max_tokens", "messages"}
    assert set(body) == base | set(expected)
    assert body["model"] == "claude-sonnet-4-5-20250929"


def test_defaults_system_and_alternating_turns() -> None:
    request = ChatRequest(
        (
            Message("system", "be brief"),
            Message("user", "hello"),
            Message("user", "are you there?"),
            Message("assistant", "hi"),
            Message("user", "again"),
        )
    )
    body = body_of(request)
    assert body["max_tokens"] == DEFAULT_MAX_TOKENS == 4096
    assert body["system"] == "be brief"
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert body["messages"][0]["content"] == [
        {"type": "text", "text": "hello"},
        {"type": "text", "text": "are you there?"},
    ]
    assert "stream" not in body and body_of(request, stream=True)["stream"] is True


def test_system_blocks_keep_cache_breakpoints() -> None:
    cached = Message("system", "long rules", parts=(TextPart("long rules", cache_control={"type": "ephemeral"}),))
    body = body_of(ChatRequest((cached, Message("system", "and be brief"), *USER)))
    assert body["system"] == [
        {"type": "text", "text": "long rules", "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "and be brief"},
    ]
    user = Message("user", "doc", parts=(TextPart("doc", cache_control={"type": "ephemeral", "ttl": "1h"}),))
    assert body_of(ChatRequest((user,)))["messages"][0]["content"] == [
        {"type": "text", "text": "doc", "cache_control": {"type": "ephemeral", "ttl": "1h"}}
    ]


def test_tool_turns_merge_with_results_first() -> None:
    call = ToolCall("call:1/x", "get_weather", '{"city": "Paris"}')
    request = ChatRequest(
        (
            Message("user", "weather?"),
            Message("assistant", "Let me check.", tool_calls=(call,)),
            Message("tool", "21C", tool_call_id="call:1/x"),
            Message("tool", "no such city", tool_call_id="call_2", is_error=True),
            Message("user", "thanks"),
        ),
        tools=(WEATHER,),
    )
    messages = body_of(request)["messages"]
    assert messages[1] == {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": "call_1_x", "name": "get_weather", "input": {"city": "Paris"}},
        ],
    }
    assert messages[2] == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "call_1_x", "content": "21C"},
            {"type": "tool_result", "tool_use_id": "call_2", "content": "no such city", "is_error": True},
            {"type": "text", "text": "thanks"},
        ],
    }


def test_tool_ids_are_made_acceptable() -> None:
    assert anthropic_tool_id("toolu_01A09q90qw90lq917835lq9") == "toolu_01A09q90qw90lq917835lq9"
    assert anthropic_tool_id("call:abc.def") == "call_abc_def"
    assert anthropic_tool_id(None) == anthropic_tool_id("") == "toolu_unknown"


def test_tool_result_with_an_image() -> None:
    result = Message("tool", "chart", tool_call_id="t1", parts=(TextPart("chart"), ImagePart(data=PNG)))
    block = body_of(ChatRequest((*USER, result)))["messages"][0]["content"][0]
    assert block["content"] == [
        {"type": "text", "text": "chart"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
    ]


IMAGE_CASES: list[tuple[str, ImagePart, dict[str, Any]]] = [
    ("inline", ImagePart(data=PNG, media_type="image/png"), {"type": "base64", "media_type": "image/png", "data": PNG}),
    (
        "sniffed",
        ImagePart(data="/9j/4AAQSkZJRg=="),
        {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQSkZJRg=="},
    ),
    (
        "data url",
        ImagePart(url=f"data:image/png;base64,{PNG}"),
        {"type": "base64", "media_type": "image/png", "data": PNG},
    ),
    (
        "https url",
        ImagePart(url="https://example.com/cat.png", detail="high"),
        {"type": "url", "url": "https://example.com/cat.png"},
    ),
]


@pytest.mark.parametrize(("name", "part", "source"), IMAGE_CASES, ids=[c[0] for c in IMAGE_CASES])
def test_images(name: str, part: ImagePart, source: dict[str, Any]) -> None:
    message = Message("user", "what is this?", parts=(TextPart("what is this?"), part))
    content = body_of(ChatRequest((message,)))["messages"][0]["content"]
    assert content == [{"type": "text", "text": "what is this?"}, {"type": "image", "source": source}]


FILE_CASES: list[tuple[str, FilePart, dict[str, Any]]] = [
    (
        "inline pdf",
        FilePart(data=PDF, media_type="application/pdf", filename="report.pdf"),
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": PDF},
            "title": "report.pdf",
        },
    ),
    (
        "pdf data url",
        FilePart(url=f"data:application/pdf;base64,{PDF}"),
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": PDF}},
    ),
    (
        "pdf url",
        FilePart(url="https://example.com/paper.pdf"),
        {"type": "document", "source": {"type": "url", "url": "https://example.com/paper.pdf"}},
    ),
]


@pytest.mark.parametrize(("name", "part", "block"), FILE_CASES, ids=[c[0] for c in FILE_CASES])
def test_pdf_documents(name: str, part: FilePart, block: dict[str, Any]) -> None:
    message = Message("user", "summarise", parts=(part, TextPart("summarise")))
    assert body_of(ChatRequest((message,)))["messages"][0]["content"][0] == block


REFUSED_PARTS: list[tuple[str, Message]] = [
    ("image without media type", Message("user", "", parts=(ImagePart(data="AAAA"),))),
    ("image with nothing", Message("user", "", parts=(ImagePart(),))),
    ("url-encoded data url", Message("user", "", parts=(ImagePart(url="data:image/svg+xml,%3Csvg%3E"),))),
    ("file id", Message("user", "", parts=(FilePart(file_id="file-abc"),))),
    ("not a pdf", Message("user", "", parts=(FilePart(data="aGVsbG8=", media_type="text/csv"),))),
    ("image from the assistant", Message("assistant", "", parts=(ImagePart(data=PNG, media_type="image/png"),))),
    ("image in the system prompt", Message("system", "", parts=(ImagePart(data=PNG, media_type="image/png"),))),
]


@pytest.mark.parametrize(("name", "message"), REFUSED_PARTS, ids=[c[0] for c in REFUSED_PARTS])
def test_parts_anthropic_cannot_take_are_refused(name: str, message: Message) -> None:
    with pytest.raises(InvalidRequestError) as info:
        body_of(ChatRequest((*USER, message)))
    assert info.value.details["param"] == "messages" and "messages[1]" in info.value.message


def test_reasoning_round_trip_keeps_only_anthropic_signatures() -> None:
    reasoning = (
        ReasoningPart("Let me think about Paris.", SIGNATURE, provider="anthropic"),
        ReasoningPart("", "EmwKAhgBEgy3va3pzix/LafPsn4a", redacted=True, provider="anthropic"),
        ReasoningPart("unsigned vendor-neutral text", None, provider=None),
        ReasoningPart("signed by nobody in particular", "Ep0BCkYIBRgC", provider=None),
        ReasoningPart("gemini thoughts", "CikBypeBEsobvcr6", provider="google"),
        ReasoningPart("encrypted o-series reasoning", "gAAAAABo...", provider="openai"),
        ReasoningPart("anthropic text lost its signature", None, provider="anthropic"),
    )
    assistant = Message("assistant", "It is sunny.", reasoning=reasoning)
    content = body_of(ChatRequest((*USER, assistant, Message("user", "thanks"))))["messages"][1]["content"]
    assert content == [
        {"type": "thinking", "thinking": "Let me think about Paris.", "signature": SIGNATURE},
        {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4a"},
        {"type": "thinking", "thinking": "signed by nobody in particular", "signature": "Ep0BCkYIBRgC"},
        {"type": "text", "text": "It is sunny."},
    ]


def test_strict_tools_carry_strict_and_a_constrained_schema() -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 80}, "days": {"type": "integer", "minimum": 1}},
        "required": ["city", "days"],
    }
    tools = (ToolSpec("forecast", "Forecast", schema, strict=True), WEATHER, ToolSpec("now"))
    sent = body_of(ChatRequest(USER, tools=tools))["tools"]
    assert sent[0] == {
        "name": "forecast",
        "description": "Forecast",
        "strict": True,
        "input_schema": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "{maxLength: 80}"},
                "days": {"type": "integer", "description": "{minimum: 1}"},
            },
            "required": ["city", "days"],
            "additionalProperties": False,
        },
    }
    assert sent[1] == {"name": "get_weather", "description": "Weather of a city", "input_schema": WEATHER.parameters}
    assert sent[2] == {"name": "now", "input_schema": {"type": "object", "properties": {}}}


def test_strict_schema_adapts_what_constrained_decoding_refuses() -> None:
    schema = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "description": "A trip",
        "properties": {
            "stops": {"type": "array", "items": {"$ref": "#/$defs/Stop"}, "minItems": 2},
            "when": {"type": "string", "format": "date"},
            "mode": {"oneOf": [{"type": "string", "enum": ["car", "train"]}, {"type": "null"}]},
            "tags": {"type": "object", "additionalProperties": {"type": "string"}},
        },
        "$defs": {"Stop": {"type": "object", "properties": {"city": {"type": "string", "format": "city-name"}}}},
    }
    assert strict_schema(schema) == {
        "type": "object",
        "description": "A trip",
        "properties": {
            "stops": {"type": "array", "items": {"$ref": "#/$defs/Stop"}, "description": "{minItems: 2}"},
            "when": {"type": "string", "format": "date"},
            "mode": {"anyOf": [{"type": "string", "enum": ["car", "train"]}, {"type": "null"}]},
            "tags": {"type": "object", "additionalProperties": False},
        },
        "$defs": {
            "Stop": {
                "type": "object",
                "properties": {"city": {"type": "string", "description": '{format: "city-name"}'}},
                "additionalProperties": False,
            }
        },
        "additionalProperties": False,
    }


TOOL_CHOICES: list[tuple[object, bool | None, dict[str, Any] | None]] = [
    (None, None, None),
    ("auto", None, {"type": "auto"}),
    ("required", None, {"type": "any"}),
    ("none", None, {"type": "none"}),
    ({"type": "function", "function": {"name": "get_weather"}}, None, {"type": "tool", "name": "get_weather"}),
    (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
    ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
    (
        {"type": "function", "function": {"name": "get_weather"}},
        False,
        {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True},
    ),
    ("none", False, {"type": "none"}),
    ("auto", True, {"type": "auto"}),
]


@pytest.mark.parametrize(("choice", "parallel", "expected"), TOOL_CHOICES)
def test_tool_choice_and_parallel_control(choice: Any, parallel: bool | None, expected: dict[str, Any] | None) -> None:
    body = body_of(ChatRequest(USER, tools=(WEATHER,), tool_choice=choice, parallel_tool_calls=parallel))
    assert body.get("tool_choice") == expected
    assert "tool_choice" not in body_of(ChatRequest(USER, tool_choice=choice, parallel_tool_calls=parallel))


@pytest.mark.parametrize(
    ("reasoning", "budget"),
    [
        (_thinking("minimal"), 1024),
        (_thinking("low"), 2048),
        (_thinking("medium"), 8192),
        (_thinking("high"), 24576),
        (_thinking("xhigh"), 32000),
        (_thinking("none"), None),
        (_thinking(), None),
        (_thinking("low", budget=5000), 5000),
        (_thinking(budget=100), 1024),
        (_thinking("high", budget=0), None),
    ],
)
def test_effort_table_and_budgets(reasoning: Reasoning, budget: int | None) -> None:
    body = body_of(ChatRequest(USER, reasoning=reasoning, max_tokens=64000))
    assert body.get("thinking") == (None if budget is None else {"type": "enabled", "budget_tokens": budget})


@pytest.mark.parametrize(
    ("max_tokens", "effort", "sent"),
    [(None, "high", 24576 + 4096), (100, "low", 2048 + 4096), (2048, "low", 2048 + 4096), (30000, "high", 30000)],
)
def test_max_tokens_exceeds_the_thinking_budget(max_tokens: int | None, effort: str, sent: int) -> None:
    body = body_of(ChatRequest(USER, max_tokens=max_tokens, reasoning=_thinking(effort)))
    assert body["max_tokens"] == sent > body["thinking"]["budget_tokens"]


def test_thinking_drops_the_sampling_it_does_not_allow() -> None:
    body = body_of(ChatRequest(USER, temperature=0.2, top_k=5, top_p=0.9, reasoning=_thinking("low")))
    assert "temperature" not in body and "top_k" not in body and "top_p" not in body
    body = body_of(ChatRequest(USER, temperature=1.0, top_p=0.97, reasoning=_thinking("low")))
    assert body["top_p"] == 0.97 and "temperature" not in body


def test_a_forced_tool_turns_thinking_off() -> None:
    for choice in ("required", {"type": "function", "function": {"name": "get_weather"}}):
        body = body_of(
            ChatRequest(USER, tools=(WEATHER,), tool_choice=choice, temperature=0.2, reasoning=_thinking("high"))
        )
        assert "thinking" not in body and body["temperature"] == 0.2
    body = body_of(ChatRequest(USER, tools=(WEATHER,), tool_choice="auto", reasoning=_thinking("high")))
    assert body["thinking"]["budget_tokens"] == 24576


def test_a_tool_turn_without_its_thinking_turns_thinking_off() -> None:
    call = ToolCall("toolu_01", "get_weather", '{"city": "Paris"}')
    signed = (ReasoningPart("weather needed", SIGNATURE, provider="anthropic"),)
    for reasoning, thinking in (((), False), (signed, True)):
        history = (
            *USER,
            Message("assistant", "", tool_calls=(call,), reasoning=reasoning),
            Message("tool", "21C", tool_call_id="toolu_01"),
        )
        body = body_of(ChatRequest(history, tools=(WEATHER,), reasoning=_thinking("low")))
        assert ("thinking" in body) is thinking
    older = (*USER, Message("assistant", "", tool_calls=(call,)), Message("tool", "21C", tool_call_id="toolu_01"))
    answered = (*older, Message("assistant", "It is 21C."), Message("user", "and tomorrow?"))
    assert "thinking" in body_of(ChatRequest(answered, tools=(WEATHER,), reasoning=_thinking("low")))


@pytest.mark.parametrize(
    ("options", "param"),
    [
        ({"seed": 7}, "seed"),
        ({"presence_penalty": 0.5}, "presence_penalty"),
        ({"frequency_penalty": -0.5}, "frequency_penalty"),
        ({"logprobs": True}, "logprobs"),
        ({"top_logprobs": 3}, "logprobs"),
        ({"logit_bias": {"50256": -100.0}}, "logit_bias"),
        ({"response_format": ResponseFormat("json_schema", name="x")}, "response_format"),
    ],
)
def test_what_the_messages_api_lacks_is_refused(options: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        body_of(ChatRequest(USER, **options))
    assert info.value.details == {"param": param, "provider": "anthropic"}


JSON_MODE = ResponseFormat("json_object")


@pytest.mark.parametrize("stream", [False, True])
def test_json_object_is_a_forced_tool(stream: bool) -> None:
    body = body_of(ChatRequest(USER, response_format=JSON_MODE, max_tokens=300), stream=stream)
    assert body["tools"] == [
        {"name": "json_object", "description": "Give the answer as a JSON object.", "input_schema": {"type": "object"}}
    ]
    assert body["tool_choice"] == {"type": "tool", "name": "json_object", "disable_parallel_tool_use": True}
    assert "output_config" not in body and body["max_tokens"] == 300
    assert JSON_OBJECT_TOOL["input_schema"] == {"type": "object"}  # the constant is not changed by encoding


def test_json_object_turns_thinking_off_and_keeps_the_sampling() -> None:
    request = ChatRequest(USER, response_format=JSON_MODE, reasoning=_thinking("high"), temperature=0.2, top_k=5)
    body = body_of(request)
    assert "thinking" not in body and (body["temperature"], body["top_k"]) == (0.2, 5)
    assert body["max_tokens"] == DEFAULT_MAX_TOKENS


def test_json_object_with_tools_of_its_own_is_refused() -> None:
    assert not json_object_mode(ChatRequest(USER, tools=(WEATHER,), response_format=JSON_MODE))
    for choice in (None, "auto", "none"):
        with pytest.raises(InvalidRequestError, match="tools") as info:
            body_of(ChatRequest(USER, tools=(WEATHER,), tool_choice=choice, response_format=JSON_MODE))
        assert info.value.details == {"param": "response_format", "provider": "anthropic"}
        assert "json_object" in str(info.value)


def test_json_object_mode_only_for_json_object() -> None:
    assert json_object_mode(ChatRequest(USER, response_format=JSON_MODE))
    for fmt in (None, ResponseFormat(), ResponseFormat("json_schema", name="x", schema={"type": "object"})):
        assert not json_object_mode(ChatRequest(USER, response_format=fmt))
        assert "tools" not in body_of(ChatRequest(USER, response_format=fmt))


def test_n_and_verbosity_are_left_to_the_gateway() -> None:
    body = body_of(ChatRequest(USER, n=3, verbosity="low", store=True, service_tier="flex"))
    assert set(body) == {"model", "max_tokens", "messages"}


# --- pass-through -------------------------------------------------------------------------------------------


def test_passthrough_sends_the_client_body_with_only_the_model_replaced() -> None:
    client_body = {
        "model": "claude-alias",
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi", "citations": None}]}],
        "container": "cntr_01",  # a field this gateway does not know
        "stream": True,
    }
    source = SourceBody("anthropic.messages", client_body, {"anthropic-beta": "context-1m-2025-08-07"})
    request = ChatRequest(USER, source=source, seed=7, response_format=JSON_MODE)  # canonical fields: unused
    call = CODEC.encode(request, TARGET, stream=True)
    assert orjson.loads(call.body) == {**client_body, "model": "claude-sonnet-4-5-20250929"}
    assert call.headers == {"anthropic-beta": "context-1m-2025-08-07"} and call.stream
    unstreamed = orjson.loads(CODEC.encode(request, TARGET, stream=False).body)
    assert "stream" not in unstreamed and client_body["model"] == "claude-alias"
    other = ChatRequest(USER, source=SourceBody("openai.chat", {"model": "x", "messages": []}))
    assert orjson.loads(CODEC.encode(other, TARGET, stream=False).body)["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "hi"}]}
    ]


# --- errors ---------------------------------------------------------------------------------------------


def _error(
    status: int, kind: str, message: str = "upstream says no", headers: dict[str, str] | None = None
) -> HttpAnswer:
    body = {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy"}
    return HttpAnswer(status, headers or {"content-type": "application/json"}, orjson.dumps(body))


ERROR_CASES: list[tuple[HttpAnswer, type[UpstreamError], int]] = [
    (_error(400, "invalid_request_error"), UpstreamBadRequestError, 400),
    (_error(401, "authentication_error"), UpstreamAuthError, 502),
    (_error(403, "permission_error"), UpstreamAuthError, 502),
    (_error(404, "not_found_error"), UpstreamConfigError, 502),
    (_error(413, "request_too_large"), UpstreamBadRequestError, 400),
    (_error(429, "rate_limit_error", headers={"retry-after": "7"}), UpstreamRateLimitError, 429),
    (_error(500, "api_error"), UpstreamServerError, 502),
    (_error(504, "timeout_error"), UpstreamTimeoutError, 504),
    (_error(529, "overloaded_error"), UpstreamUnavailableError, 503),
    (_error(400, "authentication_error"), UpstreamAuthError, 502),  # the type says what the status did not
    (
        HttpAnswer(503, {"content-type": "text/html"}, b"<html><body>503 Service Unavailable</body></html>"),
        UpstreamUnavailableError,
        503,
    ),
    (HttpAnswer(502, {"content-type": "text/html"}, b"<html>Bad gateway</html>"), UpstreamServerError, 502),
    (HttpAnswer(500, {}, b""), UpstreamServerError, 502),
    (HttpAnswer(429, {}, b"\xff\xfe"), UpstreamRateLimitError, 429),
]


@pytest.mark.parametrize(("answer", "expected", "status"), ERROR_CASES)
def test_error_mapping(answer: HttpAnswer, expected: type[UpstreamError], status: int) -> None:
    error = CODEC.error(answer, TARGET)
    assert type(error) is expected and error.status_code == status
    assert (error.provider, error.model, error.details["upstream_status"]) == ("anthropic", "claude", answer.status)


def test_rate_limits_carry_retry_after() -> None:
    limited = CODEC.error(_error(429, "rate_limit_error", headers={"retry-after": "7"}), TARGET)
    assert isinstance(limited, UpstreamRateLimitError) and limited.retry_after == 7.0
    bare = CODEC.error(_error(429, "rate_limit_error"), TARGET)
    assert isinstance(bare, UpstreamRateLimitError) and bare.retry_after == DEFAULT_RETRY_AFTER_S


def test_error_messages_keep_the_reason_but_not_secrets_or_hosts() -> None:
    text = "messages.0: prompt is too long (key sk-ant-api03-abcdefghijk, see https://internal.example.corp/x)"
    error = CODEC.error(_error(400, "invalid_request_error", text), TARGET)
    assert "prompt is too long" in error.message
    assert "sk-ant-api03" not in error.message and "internal.example.corp" not in error.message
    assert CODEC.error(_error(401, "authentication_error", "invalid x-api-key"), TARGET).message == (
        "upstream rejected the credentials"
    )
    html = CODEC.error(HttpAnswer(502, {}, b"<html>nginx at 10.0.0.7</html>"), TARGET)
    assert "10.0.0.7" not in html.message and "502" in html.message


# --- count_tokens --------------------------------------------------------------------------------------------


def test_count_tokens_call_passes_the_clients_body() -> None:
    client = {"model": "mine", "max_tokens": 5, "stream": True, "messages": [{"role": "user", "content": "hi"}], "x": 1}
    request = ChatRequest(
        messages=(Message("user", "hi"),), source=SourceBody("anthropic.messages", client, {"anthropic-beta": "b"})
    )
    call = CODEC.encode_count_tokens(request, TARGET)
    assert call.path == "/v1/messages/count_tokens" and not call.stream
    assert orjson.loads(call.body) == {"model": TARGET.upstream_model, "messages": client["messages"], "x": 1}
    assert call.headers == {"anthropic-beta": "b"}
    translated = orjson.loads(CODEC.encode_count_tokens(ChatRequest(messages=(Message("user", "hi"),)), TARGET).body)
    assert translated == {
        "model": TARGET.upstream_model,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
    }


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, b'{"input_tokens": 42}', 42),
        (200, b'{"input_tokens": "many"}', UpstreamServerError),
        (200, b"not json", UpstreamServerError),
        (
            529,
            b'{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}',
            UpstreamUnavailableError,
        ),
    ],
)
def test_count_tokens_answer(status: int, body: bytes, expected: Any) -> None:
    answer = HttpAnswer(status, {"content-type": "application/json"}, body)
    if isinstance(expected, int):
        assert CODEC.decode_count_tokens(answer, TARGET) == expected
    else:
        with pytest.raises(expected):
            CODEC.decode_count_tokens(answer, TARGET)
