"""Tool calling through ``/v1/chat/completions`` with the ``openai`` client, translated to each vendor's
format (OpenAI, Anthropic, Gemini, OpenAI-compatible) and back, streamed and not."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from app.main import create_app
from app.providers.google_decode import decode_call_id, encode_call_id
from app.settings.settings import Settings
from tests.fakes.scripts import Reply
from tests.fakes.server import FakeUpstream
from tests.support import fake_models, write_config

MODELS = ["gpt-4o-mini", "claude-3-5-sonnet-20241022", "gemini-2.0-flash", "compat-llama"]
UPSTREAM_ID = {"compat-llama": "llama3"}
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
TIME = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}
ASK = [{"role": "user", "content": "Weather in Paris?"}]


@pytest.fixture
async def client(
    upstream: FakeUpstream, tmp_path: Path, provider_keys: dict[str, str]
) -> AsyncIterator[openai.AsyncOpenAI]:
    path = write_config(tmp_path, {"models": fake_models(upstream.base_url), "orchestration": {"max_retries": 0}})
    app = create_app(Settings(config=path))
    async with app.router.lifespan_context(app):
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app))
        async with openai.AsyncOpenAI(
            base_url="http://gateway/v1", api_key="unused", http_client=http, max_retries=0
        ) as c:
            yield c


def _script_calls(upstream: FakeUpstream, model: str, *calls: dict[str, Any]) -> None:
    upstream.script(UPSTREAM_ID.get(model, model), Reply(tool_calls=list(calls)))


def _tools_sent(upstream: FakeUpstream) -> Any:
    body = upstream.requests[-1].body
    return body["tools"]


@pytest.mark.parametrize("model", MODELS)
async def test_tool_call_round_trip(client: openai.AsyncOpenAI, upstream: FakeUpstream, model: str) -> None:
    _script_calls(upstream, model, {"name": "get_weather", "arguments": {"city": "Paris"}})
    first = await client.chat.completions.create(model=model, messages=ASK, tools=[WEATHER], tool_choice="auto")
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls or []
    assert len(calls) == 1 and calls[0].type == "function"
    assert calls[0].function.name == "get_weather"
    assert json.loads(calls[0].function.arguments) == {"city": "Paris"}
    call_id = calls[0].id
    _check_tools_request(upstream, model)

    upstream.script(UPSTREAM_ID.get(model, model), Reply(text="It is 21 degrees in Paris."))
    second = await client.chat.completions.create(
        model=model,
        tools=[WEATHER],
        messages=[
            *ASK,
            {"role": "assistant", "content": None, "tool_calls": [c.model_dump() for c in calls]},
            {"role": "tool", "tool_call_id": call_id, "content": '{"temp_c": 21}'},
        ],
    )
    assert second.choices[0].message.content == "It is 21 degrees in Paris."
    assert second.choices[0].finish_reason == "stop"
    _check_tool_result_request(upstream, model, call_id)


def _check_tools_request(upstream: FakeUpstream, model: str) -> None:
    body = upstream.requests[-1].body
    vendor = upstream.requests[-1].vendor
    if vendor == "openai":
        assert body["tools"][0]["function"]["name"] == "get_weather"
        assert body["tools"][0]["function"]["parameters"]["required"] == ["city"]
        assert body["tool_choice"] == "auto"
    elif vendor == "anthropic":
        assert body["tools"][0]["name"] == "get_weather"
        assert body["tools"][0]["input_schema"]["properties"] == {"city": {"type": "string"}}
        assert body["tool_choice"] == {"type": "auto"}
    else:
        declaration = body["tools"][0]["functionDeclarations"][0]
        assert declaration["name"] == "get_weather"
        # google-genai sends this field under its proto name; the API's JSON parser takes both spellings.
        schema = declaration.get("parametersJsonSchema", declaration.get("parameters_json_schema"))
        assert schema["required"] == ["city"]
        assert body["toolConfig"]["functionCallingConfig"]["mode"] == "AUTO"


def _check_tool_result_request(upstream: FakeUpstream, model: str, call_id: str) -> None:
    body = upstream.requests[-1].body
    vendor = upstream.requests[-1].vendor
    if vendor == "openai":
        assistant, tool = body["messages"][1], body["messages"][2]
        assert assistant["tool_calls"][0]["id"] == call_id
        assert tool == {"role": "tool", "content": '{"temp_c": 21}', "tool_call_id": call_id}
    elif vendor == "anthropic":
        assistant, result = body["messages"][1], body["messages"][2]
        assert assistant["role"] == "assistant"
        assert assistant["content"][0] == {
            "type": "tool_use",
            "id": call_id,
            "name": "get_weather",
            "input": {"city": "Paris"},
        }
        assert result["role"] == "user"
        assert result["content"][0] == {"type": "tool_result", "tool_use_id": call_id, "content": '{"temp_c": 21}'}
    else:
        call, response = body["contents"][1], body["contents"][2]
        assert call["role"] == "model"
        assert call["parts"][0]["functionCall"] == {"name": "get_weather", "args": {"city": "Paris"}}
        assert response["role"] == "user"
        assert response["parts"][0]["functionResponse"] == {"name": "get_weather", "response": {"temp_c": 21}}


@pytest.mark.parametrize("model", MODELS)
async def test_streamed_parallel_tool_calls_reassemble(
    client: openai.AsyncOpenAI, upstream: FakeUpstream, model: str
) -> None:
    args = {"city": "São Paulo", "units": "metric", "detail": ["hourly", "wind"], "note": 'say "hi"'}
    _script_calls(upstream, model, {"name": "get_weather", "arguments": args}, {"name": "get_time", "arguments": {}})
    raw: list[Any] = []
    # the openai SDK's stream helper (2.x) only takes strict tools; strict reaches every vendor's tools
    tools = [{"type": "function", "function": {**t["function"], "strict": True}} for t in (WEATHER, TIME)]
    async with client.chat.completions.stream(model=model, messages=ASK, tools=tools) as stream:  # type: ignore[arg-type]
        async for event in stream:
            if event.type == "chunk":
                raw.append(event.chunk)
        final = await stream.get_final_completion()
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls or []
    assert [c.function.name for c in calls] == ["get_weather", "get_time"]
    assert json.loads(calls[0].function.arguments) == args
    assert json.loads(calls[1].function.arguments) == {}
    assert calls[0].id != calls[1].id and all(calls[i].id for i in range(2))
    # Each call's id and name travel once, on its first fragment (the client concatenates strings).
    fragments = [d for c in raw if c.choices for d in (c.choices[0].delta.tool_calls or [])]
    for index in (0, 1):
        own = [f for f in fragments if f.index == index]
        assert sum(1 for f in own if f.id) == 1 and own[0].id
        assert sum(1 for f in own if f.function and f.function.name) == 1
    if upstream.requests[-1].vendor != "google":  # Gemini sends each call whole; the others in pieces
        assert len([f for f in fragments if f.index == 0]) > 3


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("claude-3-5-sonnet-20241022", {"type": "tool", "name": "get_weather"}),
        ("gemini-2.0-flash", {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}}),
        ("gpt-4o-mini", {"type": "function", "function": {"name": "get_weather"}}),
    ],
)
async def test_named_tool_choice_is_translated(
    client: openai.AsyncOpenAI, upstream: FakeUpstream, model: str, expected: dict[str, Any]
) -> None:
    _script_calls(upstream, model, {"name": "get_weather", "arguments": {"city": "Oslo"}})
    await client.chat.completions.create(
        model=model,
        messages=ASK,
        tools=[WEATHER, TIME],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    body = upstream.requests[-1].body
    assert body.get("tool_choice", body.get("toolConfig")) == expected


@pytest.mark.parametrize(
    ("choice", "anthropic", "gemini"),
    [("required", {"type": "any"}, "ANY"), ("none", {"type": "none"}, "NONE")],
)
async def test_required_and_none_tool_choice(
    client: openai.AsyncOpenAI, upstream: FakeUpstream, choice: str, anthropic: dict[str, str], gemini: str
) -> None:
    await client.chat.completions.create(
        model="claude-3-5-sonnet-20241022",
        messages=ASK,
        tools=[WEATHER],
        tool_choice=choice,  # type: ignore[arg-type]
    )
    assert upstream.requests[-1].body["tool_choice"] == anthropic
    await client.chat.completions.create(
        model="gemini-2.0-flash",
        messages=ASK,
        tools=[WEATHER],
        tool_choice=choice,  # type: ignore[arg-type]
    )
    assert upstream.requests[-1].body["toolConfig"]["functionCallingConfig"]["mode"] == gemini


async def test_unknown_tool_choice_is_refused_and_strict_tools_pass(
    client: openai.AsyncOpenAI, upstream: FakeUpstream
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(
            model="gpt-4o-mini",
            messages=ASK,
            tools=[WEATHER],
            tool_choice={"type": "function", "function": {"name": "nope"}},
        )
    assert "nope" in caught.value.message
    strict = {"type": "function", "function": {**WEATHER["function"], "strict": True}}
    await client.chat.completions.create(model="gpt-4o-mini", messages=ASK, tools=[strict])  # type: ignore[list-item]
    assert upstream.requests[-1].body["tools"][0]["function"]["strict"] is True  # strict tools reach OpenAI


async def test_foreign_call_ids_are_made_acceptable_to_each_vendor(
    client: openai.AsyncOpenAI, upstream: FakeUpstream
) -> None:
    """A conversation that started elsewhere: an id too long for OpenAI, with characters Anthropic refuses."""
    call_id = "call:" + "x" * 80
    history = [
        *ASK,
        {
            "role": "assistant",
            "tool_calls": [
                {"id": call_id, "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'}}
            ],
        },
        {"role": "tool", "tool_call_id": call_id, "content": "sunny"},
    ]
    await client.chat.completions.create(model="gpt-4o-mini", messages=history, tools=[WEATHER])  # type: ignore[arg-type]
    sent = upstream.requests[-1].body["messages"]
    short = sent[1]["tool_calls"][0]["id"]
    assert len(short) <= 40 and sent[2]["tool_call_id"] == short
    await client.chat.completions.create(model="claude-3-5-sonnet-20241022", messages=history, tools=[WEATHER])  # type: ignore[arg-type]
    sent = upstream.requests[-1].body["messages"]
    use_id = sent[1]["content"][0]["id"]
    assert ":" not in use_id and sent[2]["content"][0]["tool_use_id"] == use_id
    await client.chat.completions.create(model="gemini-2.0-flash", messages=history, tools=[WEATHER])  # type: ignore[arg-type]
    parts = upstream.requests[-1].body["contents"][2]["parts"]
    assert parts[0]["functionResponse"] == {"name": "get_weather", "response": {"output": "sunny"}}


async def test_gemini_thought_signature_travels_in_the_call_id(
    client: openai.AsyncOpenAI, upstream: FakeUpstream
) -> None:
    signature = bytes(range(256)) * 2
    call_id = encode_call_id("abc", signature)
    assert decode_call_id(call_id) == signature and decode_call_id("call_plain") is None
    assert all(ch.isalnum() or ch in "_-" for ch in call_id)  # a valid id for OpenAI and Anthropic too
    history = [
        *ASK,
        {
            "role": "assistant",
            "tool_calls": [
                {"id": call_id, "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Lima"}'}}
            ],
        },
        {"role": "tool", "tool_call_id": call_id, "content": '{"temp_c": 18}'},
    ]
    await client.chat.completions.create(model="gemini-2.0-flash", messages=history, tools=[WEATHER])  # type: ignore[arg-type]
    part = upstream.requests[-1].body["contents"][1]["parts"][0]
    assert part["functionCall"]["name"] == "get_weather"
    encoded = part["thoughtSignature"]
    assert base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)) == signature


def test_gemini_response_signature_is_encoded_into_the_call_id() -> None:
    from app.providers.google_decode import decode_payload

    part = {
        "functionCall": {"name": "get_weather", "args": {"city": "Kyiv"}},
        "thoughtSignature": base64.b64encode(b"s1g").decode(),
    }
    payload = {"candidates": [{"content": {"role": "model", "parts": [part]}, "finishReason": "STOP"}]}
    decoded = decode_payload(payload, "gemini-2.0-flash")
    assert decoded.finish_reason == "tool_calls"
    assert decode_call_id(decoded.tool_calls[0].id) == b"s1g"
    assert json.loads(decoded.tool_calls[0].arguments) == {"city": "Kyiv"}
