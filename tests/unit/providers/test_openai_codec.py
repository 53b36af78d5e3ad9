"""The OpenAI chat completions codec, request side: canonical request -> body, pass-through, auth,
capabilities and error bodies (``app.providers.openai``, ``app.providers.openai_compatible``)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from app.domain import (
    DROPPABLE_OPTIONS,
    ChatRequest,
    FilePart,
    ImagePart,
    Message,
    Reasoning,
    ResponseFormat,
    SourceBody,
    TextPart,
    ToolCall,
    ToolSpec,
)
from app.errors import (
    InvalidRequestError,
)
from app.providers.openai import CODEC, OpenAICodec, effort_of, openai_tool_call_id
from app.providers.openai_compatible import CODEC as COMPAT
from app.providers.openai_compatible import OpenAICompatibleCodec
from tests.unit.providers.openai_payloads import COMPAT_TARGET, TARGET

USER = (Message("user", "hi"),)
WEATHER = ToolSpec("get_weather", "Weather of a city", {"type": "object", "properties": {"city": {"type": "string"}}})


def body_of(request: ChatRequest, codec: OpenAICodec = CODEC, *, stream: bool = False) -> dict[str, Any]:
    call = codec.encode(request, TARGET if codec is CODEC else COMPAT_TARGET, stream=stream)
    assert call.path == "/chat/completions" and call.method == "POST" and call.stream is stream
    return orjson.loads(call.body)


# --- codec shape ------------------------------------------------------------------------------------------


def test_codec_identity_and_auth() -> None:
    assert (OpenAICodec.kind, OpenAICodec.default_base_url, OpenAICodec.protocol) == (
        "openai",
        "https://api.openai.com/v1",
        "openai.chat",
    )
    assert (OpenAICompatibleCodec.kind, OpenAICompatibleCodec.protocol) == ("openai_compatible", "openai.chat")
    assert isinstance(CODEC, OpenAICodec) and isinstance(COMPAT, OpenAICompatibleCodec)
    assert CODEC.auth_headers("sk-1") == {"Authorization": "Bearer sk-1"}
    assert COMPAT.auth_headers("tok") == {"Authorization": "Bearer tok"}
    assert COMPAT.auth_headers(None) == {}


def test_capabilities() -> None:
    caps = CODEC.capabilities(TARGET)
    assert all((caps.images, caps.image_urls, caps.files, caps.json_schema, caps.json_object, caps.tools))
    assert all((caps.strict_tools, caps.parallel_tool_control, caps.reasoning, caps.logprobs, caps.logit_bias))
    assert all((caps.seed, caps.penalties, caps.native_n)) and not caps.top_k
    assert caps.droppable == frozenset(DROPPABLE_OPTIONS)
    compat = COMPAT.capabilities(COMPAT_TARGET)
    assert (compat.images, compat.image_urls, compat.json_schema, compat.logprobs, compat.logit_bias) == (True,) * 5
    assert compat.native_n and not compat.files and not compat.reasoning
    assert compat.droppable == frozenset({"user"})


# --- canonical request -> body ----------------------------------------------------------------------------

ENCODE_CASES: list[tuple[str, ChatRequest, dict[str, Any]]] = [
    ("max_tokens", ChatRequest(USER, max_tokens=50), {"max_completion_tokens": 50}),
    ("temperature/top_p", ChatRequest(USER, temperature=0.3, top_p=0.9), {"temperature": 0.3, "top_p": 0.9}),
    ("stop", ChatRequest(USER, stop=("END", "STOP")), {"stop": ["END", "STOP"]}),
    ("seed", ChatRequest(USER, seed=7), {"seed": 7}),
    (
        "penalties",
        ChatRequest(USER, presence_penalty=0.5, frequency_penalty=-0.5),
        {"presence_penalty": 0.5, "frequency_penalty": -0.5},
    ),
    ("logprobs", ChatRequest(USER, logprobs=True, top_logprobs=3), {"logprobs": True, "top_logprobs": 3}),
    ("logit_bias", ChatRequest(USER, logit_bias={"50256": -100.0}), {"logit_bias": {"50256": -100.0}}),
    ("n", ChatRequest(USER, n=3), {"n": 3}),
    ("verbosity", ChatRequest(USER, verbosity="low"), {"verbosity": "low"}),
    ("effort", ChatRequest(USER, reasoning=Reasoning(effort="high")), {"reasoning_effort": "high"}),
    ("effort none", ChatRequest(USER, reasoning=Reasoning(effort="none")), {"reasoning_effort": "none"}),
    ("budget low", ChatRequest(USER, reasoning=Reasoning(budget_tokens=1024)), {"reasoning_effort": "low"}),
    ("budget medium", ChatRequest(USER, reasoning=Reasoning(budget_tokens=8192)), {"reasoning_effort": "medium"}),
    ("budget high", ChatRequest(USER, reasoning=Reasoning(budget_tokens=8193)), {"reasoning_effort": "high"}),
    ("text format", ChatRequest(USER, response_format=ResponseFormat()), {"response_format": {"type": "text"}}),
    (
        "json_object",
        ChatRequest(USER, response_format=ResponseFormat("json_object")),
        {"response_format": {"type": "json_object"}},
    ),
    (
        "json_schema",
        ChatRequest(
            USER,
            response_format=ResponseFormat(
                "json_schema", name="Person", schema={"type": "object"}, strict=True, description="a person"
            ),
        ),
        {
            "response_format": {
                "type": "json_schema",
                "json_schema": {
                    "name": "Person",
                    "schema": {"type": "object"},
                    "strict": True,
                    "description": "a person",
                },
            }
        },
    ),
    (
        "json_schema defaults",
        ChatRequest(USER, response_format=ResponseFormat("json_schema", schema={"type": "object"})),
        {"response_format": {"type": "json_schema", "json_schema": {"name": "response", "schema": {"type": "object"}}}},
    ),
    (
        "strict tools, choice, parallel",
        ChatRequest(
            USER,
            tools=(ToolSpec("get_weather", "Weather", {"type": "object"}, strict=True), ToolSpec("noop")),
            tool_choice={"type": "function", "function": {"name": "get_weather"}},
            parallel_tool_calls=False,
        ),
        {
            "tools": [
                {
                    "type": "function",
                    "function": {
                        "name": "get_weather",
                        "parameters": {"type": "object"},
                        "description": "Weather",
                        "strict": True,
                    },
                },
                {"type": "function", "function": {"name": "noop", "parameters": {"type": "object", "properties": {}}}},
            ],
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
            "parallel_tool_calls": False,
        },
    ),
    (
        "responses-style tool choice",
        ChatRequest(USER, tools=(WEATHER,), tool_choice={"type": "function", "name": "get_weather"}),
        {"tool_choice": {"type": "function", "function": {"name": "get_weather"}}},
    ),
    ("tool choice needs tools", ChatRequest(USER, tool_choice="none", parallel_tool_calls=True), {}),
    (
        "droppables",
        ChatRequest(
            USER,
            store=True,
            prompt_cache_key="k1",
            safety_identifier="u-hash",
            service_tier="flex",
            user="alice",
            metadata={"app": "x"},
        ),
        {
            "store": True,
            "prompt_cache_key": "k1",
            "safety_identifier": "u-hash",
            "service_tier": "flex",
            "user": "alice",
            "metadata": {"app": "x"},
        },
    ),
]


@pytest.mark.parametrize(("request_", "expected"), [c[1:] for c in ENCODE_CASES], ids=[c[0] for c in ENCODE_CASES])
def test_encode_fields(request_: ChatRequest, expected: dict[str, Any]) -> None:
    body = body_of(request_)
    assert body.pop("model") == "gpt-4o-2024-08-06"
    assert body.pop("messages") == [{"role": "user", "content": "hi"}]
    if "tool_choice" in expected and "tools" not in expected:
        body.pop("tools")
    assert body == expected


def test_metadata_goes_only_with_store() -> None:
    assert "metadata" not in body_of(ChatRequest(USER, metadata={"app": "x"}))
    assert "metadata" not in body_of(ChatRequest(USER, metadata={"app": "x"}, store=False))


def test_default_request_sends_nothing_extra() -> None:
    assert body_of(ChatRequest(USER)) == {"model": "gpt-4o-2024-08-06", "messages": [{"role": "user", "content": "hi"}]}


def test_effort_of() -> None:
    assert effort_of(Reasoning()) is None
    assert effort_of(Reasoning(effort="minimal", budget_tokens=50000)) == "minimal"


def test_stream_always_asks_for_usage() -> None:
    body = body_of(ChatRequest(USER), stream=True)
    assert (body["stream"], body["stream_options"]) == (True, {"include_usage": True})


def test_messages_parts_tools_and_names() -> None:
    long_id = "toolu_" + "x" * 60
    request = ChatRequest(
        (
            Message("system", "be brief", name="rules"),
            Message(
                "user",
                "what is in these?",
                name="alice",
                parts=(
                    TextPart("what is in these?", cache_control={"type": "ephemeral"}),
                    ImagePart(url="https://example.com/cat.png", detail="low"),
                    ImagePart(data="iVBORw0KGgo=", media_type="image/png"),
                    FilePart(data="JVBERi0=", media_type="application/pdf", filename="a.pdf"),
                    FilePart(data="JVBERi0=", media_type="application/pdf"),
                    FilePart(file_id="file-abc"),
                ),
            ),
            Message(
                "assistant",
                "",
                tool_calls=(ToolCall(long_id, "get_weather", '{"city":"Paris"}'), ToolCall("c2", "noop", "")),
            ),
            Message("tool", "18C", tool_call_id=long_id, is_error=False),
            Message("tool", "done", tool_call_id="c2"),
            Message("assistant", "It is 18C."),
        )
    )
    messages = body_of(request)["messages"]
    short = openai_tool_call_id(long_id)
    assert len(short) == 40 and short == openai_tool_call_id(long_id) and openai_tool_call_id("c2") == "c2"
    assert messages == [
        {"role": "system", "content": "be brief", "name": "rules"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "what is in these?"},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "low"}},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "a.pdf"}},
                {
                    "type": "file",
                    "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "document.pdf"},
                },
                {"type": "file", "file": {"file_id": "file-abc"}},
            ],
            "name": "alice",
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": short, "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
                {"id": "c2", "type": "function", "function": {"name": "noop", "arguments": "{}"}},
            ],
        },
        {"role": "tool", "content": "18C", "tool_call_id": short},
        {"role": "tool", "content": "done", "tool_call_id": "c2"},
        {"role": "assistant", "content": "It is 18C."},
    ]


@pytest.mark.parametrize(
    ("request_", "param"),
    [
        (ChatRequest(USER, top_k=5), "top_k"),
        (ChatRequest((Message("user", "x", parts=(FilePart(url="https://example.com/a.pdf"),)),)), "messages"),
        (ChatRequest((Message("user", "x", parts=(ImagePart(),)),)), "messages"),
        (ChatRequest((Message("assistant", "x", parts=(ImagePart(url="https://e.com/a.png"),)),)), "messages"),
    ],
    ids=["top_k", "file url", "empty image", "image in assistant turn"],
)
def test_requests_openai_cannot_express(request_: ChatRequest, param: str) -> None:
    with pytest.raises(InvalidRequestError) as exc:
        CODEC.encode(request_, TARGET, stream=False)
    assert exc.value.details["param"] == param


def test_compatible_body_differences() -> None:
    request = ChatRequest(
        USER,
        max_tokens=20,
        top_k=40,
        logprobs=True,
        n=2,
        reasoning=Reasoning(effort="low"),
        store=True,
        metadata={"a": "b"},
        service_tier="flex",
        prompt_cache_key="k",
        safety_identifier="s",
        user="alice",
    )
    body = body_of(request, COMPAT, stream=True)
    assert body == {
        "model": "qwen3-8b",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 20,
        "top_k": 40,
        "logprobs": True,
        "n": 2,
        "reasoning_effort": "low",
        "user": "alice",
        "stream": True,
        "stream_options": {"include_usage": True},
    }


# --- same-protocol pass-through ---------------------------------------------------------------------------

CLIENT_BODY: dict[str, Any] = {
    "model": "gpt",
    "messages": [
        {"role": "developer", "content": "be brief"},
        {"role": "assistant", "content": "hi", "refusal": None, "annotations": [], "audio": None},
        {"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "UklG", "format": "wav"}}]},
    ],
    "prediction": {"type": "content", "content": "x"},
    "web_search_options": {},
    "modalities": ["text"],
    "x_unknown_field": {"nested": [1, 2, 3]},
    "store": True,
    "metadata": {"k": "v"},
    "user": "alice",
    "temperature": 0.2,
}


def _passthrough(body: dict[str, Any]) -> ChatRequest:
    return ChatRequest(USER, temperature=0.9, source=SourceBody("openai.chat", body))


def test_passthrough_sends_the_client_body_with_only_the_model_replaced() -> None:
    sent = body_of(_passthrough(CLIENT_BODY))
    assert sent == {**CLIENT_BODY, "model": "gpt-4o-2024-08-06"}
    assert list(sent) == list(CLIENT_BODY)  # same key order


def test_passthrough_stream_forces_include_usage_and_keeps_other_stream_options() -> None:
    client = {**CLIENT_BODY, "stream": True, "stream_options": {"include_obfuscation": False}}
    sent = body_of(_passthrough(client), stream=True)
    assert sent["stream_options"] == {"include_obfuscation": False, "include_usage": True}
    assert {k: v for k, v in sent.items() if k not in ("model", "stream_options")} == {
        k: v for k, v in client.items() if k not in ("model", "stream_options")
    }
    plain = body_of(_passthrough({"model": "gpt", "messages": [], "stream": True}), stream=True)
    assert plain == {
        "model": "gpt-4o-2024-08-06",
        "messages": [],
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def test_passthrough_to_a_compatible_server_leaves_the_body_to_the_upstream() -> None:
    sent = body_of(_passthrough(CLIENT_BODY), COMPAT)
    assert sent == {**CLIENT_BODY, "model": "qwen3-8b"}


def test_a_source_of_another_protocol_is_encoded_from_the_canonical_request() -> None:
    request = ChatRequest(USER, source=SourceBody("anthropic.messages", {"model": "x", "max_tokens": 5}))
    assert body_of(request) == {"model": "gpt-4o-2024-08-06", "messages": [{"role": "user", "content": "hi"}]}
