"""The fake upstream, exercised through the real vendor SDKs (openai, anthropic, google-genai).

Stream-cut behaviour per SDK (what the gateway sees when an upstream dies mid-stream),
as pinned by the ``test_*_stream_cut_*`` tests below:

* openai: the async iterator raises ``openai.APIConnectionError`` (wrapping httpx's
  ``RemoteProtocolError: incomplete chunked read``); no ``[DONE]``, no usage chunk.
* anthropic: the async iterator raises the raw transport error ``httpx2.RemoteProtocolError``
  (the anthropic SDK does NOT wrap it in an ``anthropic.APIError``); no ``message_stop``.
* google-genai (aiohttp transport, the default when aiohttp is installed): the async
  iterator raises ``aiohttp.ClientPayloadError``; there is no terminal event in Gemini's
  protocol at all, so only the missing ``finishReason`` would reveal a clean-but-short stream.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import anthropic
import httpx
import httpx2
import openai
import pytest
import pytest_asyncio
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as genai_types

from app.domain import (
    ChatRequest,
    FilePart,
    ImagePart,
    Message,
    Reasoning,
    ResponseFormat,
    TextPart,
    ToolCall,
    ToolSpec,
)
from app.pricing import Price
from app.providers.base import ModelTarget
from app.providers.google import CODEC as GOOGLE_CODEC
from app.providers.google import encode_call_id
from app.settings.catalogue import ModelConfig
from tests.fakes import ANY_MODEL, FakeUpstream, Reply

# Async tests run via asyncio_mode = "auto" (pyproject.toml).
pytestmark = pytest.mark.filterwarnings("ignore:Inheritance class AiohttpClientSession:DeprecationWarning")

TEXT = "Hello,  wide\tworld!\nSecond line ends here. "
WEATHER = {"name": "get_weather", "arguments": {"city": "Paris", "units": "celsius", "days": 3}}
USER = [{"role": "user", "content": "what is the weather in Paris"}]


@pytest_asyncio.fixture
async def oai(upstream: FakeUpstream) -> AsyncIterator[openai.AsyncOpenAI]:
    client = openai.AsyncOpenAI(api_key="sk-test", base_url=upstream.openai_base_url, max_retries=0)
    yield client
    await client.close()


@pytest_asyncio.fixture
async def claude(upstream: FakeUpstream) -> AsyncIterator[anthropic.AsyncAnthropic]:
    client = anthropic.AsyncAnthropic(api_key="ak-test", base_url=upstream.base_url, max_retries=0)
    yield client
    await client.close()


@pytest_asyncio.fixture
async def gem(upstream: FakeUpstream) -> AsyncIterator[genai.client.AsyncClient]:
    options = genai_types.HttpOptions(
        base_url=upstream.base_url,
        api_version="v1beta",
        retry_options=genai_types.HttpRetryOptions(attempts=1),  # also disables the aiohttp implicit retry
    )
    client = genai.Client(api_key="gk-test", http_options=options)
    yield client.aio
    await client.aio.aclose()


async def _openai_stream(client: openai.AsyncOpenAI, model: str = "gpt-x") -> tuple[str, Any, list[Any]]:
    stream = await client.chat.completions.create(
        model=model, messages=USER, stream=True, stream_options={"include_usage": True}
    )
    text, usage, chunks = [], None, []
    async for chunk in stream:
        chunks.append(chunk)
        if chunk.choices and chunk.choices[0].delta.content:
            text.append(chunk.choices[0].delta.content)
        if chunk.usage:
            usage = chunk.usage
    return "".join(text), usage, chunks


async def _gemini_stream(client: genai.client.AsyncClient, model: str = "gemini-x") -> list[Any]:
    return [chunk async for chunk in await client.models.generate_content_stream(model=model, contents="hi")]


# -- happy paths ------------------------------------------------------------------


async def test_openai_text_and_usage(upstream: FakeUpstream, oai: openai.AsyncOpenAI) -> None:
    messages = [{"role": "system", "content": "be brief"}, *USER]
    result = await oai.chat.completions.create(model="gpt-x", messages=messages)
    assert result.choices[0].message.content == "echo: what is the weather in Paris"
    assert result.choices[0].finish_reason == "stop"
    assert (result.usage.prompt_tokens, result.usage.completion_tokens, result.usage.total_tokens) == (8, 7, 15)
    req = upstream.requests[-1]
    assert (req.vendor, req.path, req.model, req.stream, req.api_key) == (
        "openai",
        "/v1/chat/completions",
        "gpt-x",
        False,
        "sk-test",
    )
    assert req.headers["authorization"] == "Bearer sk-test"


async def test_anthropic_text_usage_and_system(upstream: FakeUpstream, claude: anthropic.AsyncAnthropic) -> None:
    upstream.script("claude-x", Reply(text=TEXT, input_tokens=11, output_tokens=5))
    msg = await claude.messages.create(model="claude-x", max_tokens=50, system="be brief", messages=USER)
    assert msg.content[0].text == TEXT
    assert (msg.stop_reason, msg.usage.input_tokens, msg.usage.output_tokens) == ("end_turn", 11, 5)
    req = upstream.requests[-1]
    assert req.body["system"] == "be brief"
    assert (req.vendor, req.path, req.api_key) == ("anthropic", "/v1/messages", "ak-test")


async def test_gemini_text_usage_and_system(upstream: FakeUpstream, gem: genai.client.AsyncClient) -> None:
    config = genai_types.GenerateContentConfig(system_instruction="be brief")
    result = await gem.models.generate_content(model="gemini-x", contents="hello there", config=config)
    assert result.text == "echo: hello there"
    usage = result.usage_metadata
    assert (usage.prompt_token_count, usage.candidates_token_count, usage.total_token_count) == (4, 3, 7)
    req = upstream.requests[-1]
    assert req.body["systemInstruction"]["parts"][0]["text"] == "be brief"
    assert (req.path, req.model, req.stream, req.api_key) == (
        "/v1beta/models/gemini-x:generateContent",
        "gemini-x",
        False,
        "gk-test",
    )


async def test_openai_stream_exact_text_and_usage(upstream: FakeUpstream, oai: openai.AsyncOpenAI) -> None:
    upstream.script("gpt-x", Reply(text=TEXT))
    text, usage, chunks = await _openai_stream(oai)
    assert text == TEXT
    assert (usage.prompt_tokens, usage.completion_tokens) == (6, len(TEXT.split()))
    assert chunks[-1].choices == [] and chunks[-2].choices[0].finish_reason == "stop"
    assert upstream.requests[-1].stream is True


async def test_anthropic_stream_exact_text_and_usage(upstream: FakeUpstream, claude: anthropic.AsyncAnthropic) -> None:
    upstream.script("claude-x", Reply(text=TEXT, chunk_delay_s=0.001))
    async with claude.messages.stream(model="claude-x", max_tokens=50, messages=USER) as stream:
        text = "".join([piece async for piece in stream.text_stream])
        final = await stream.get_final_message()
    assert text == TEXT
    assert (final.usage.input_tokens, final.usage.output_tokens) == (6, len(TEXT.split()))
    assert final.stop_reason == "end_turn"


async def test_gemini_stream_exact_text_and_usage(upstream: FakeUpstream, gem: genai.client.AsyncClient) -> None:
    upstream.script("gemini-x", Reply(text=TEXT))
    chunks = await _gemini_stream(gem)
    assert "".join(c.text or "" for c in chunks) == TEXT
    final = chunks[-1]
    assert final.candidates[0].finish_reason == genai_types.FinishReason.STOP
    assert final.usage_metadata.candidates_token_count == len(TEXT.split())
    assert final.usage_metadata.prompt_token_count == 1
    req = upstream.requests[-1]
    assert (req.path, req.query, req.stream) == ("/v1beta/models/gemini-x:streamGenerateContent", {"alt": "sse"}, True)


# -- tool calls ---------------------------------------------------------------------


async def test_openai_tool_call(upstream: FakeUpstream, oai: openai.AsyncOpenAI) -> None:
    upstream.script("gpt-x", Reply(tool_calls=[WEATHER]), Reply(tool_calls=[WEATHER]))
    result = await oai.chat.completions.create(model="gpt-x", messages=USER)
    call = result.choices[0].message.tool_calls[0]
    assert result.choices[0].finish_reason == "tool_calls"
    assert (call.function.name, json.loads(call.function.arguments)) == ("get_weather", WEATHER["arguments"])
    _, _, chunks = await _openai_stream(oai)
    arguments = "".join(
        c.choices[0].delta.tool_calls[0].function.arguments or ""
        for c in chunks
        if c.choices and c.choices[0].delta.tool_calls
    )
    assert json.loads(arguments) == WEATHER["arguments"]
    assert chunks[-2].choices[0].finish_reason == "tool_calls"


async def test_anthropic_tool_call(upstream: FakeUpstream, claude: anthropic.AsyncAnthropic) -> None:
    upstream.script("claude-x", Reply(tool_calls=[WEATHER]), Reply(text="Let me check.", tool_calls=[WEATHER]))
    msg = await claude.messages.create(model="claude-x", max_tokens=50, messages=USER)
    assert msg.stop_reason == "tool_use"
    assert (msg.content[0].type, msg.content[0].name, msg.content[0].input) == (
        "tool_use",
        "get_weather",
        WEATHER["arguments"],
    )
    async with claude.messages.stream(model="claude-x", max_tokens=50, messages=USER) as stream:
        final = await stream.get_final_message()
    assert [b.type for b in final.content] == ["text", "tool_use"]
    assert final.content[1].input == WEATHER["arguments"] and final.stop_reason == "tool_use"


async def test_anthropic_thinking_with_signature(upstream: FakeUpstream, claude: anthropic.AsyncAnthropic) -> None:
    reply = Reply(text="It is sunny.", reasoning="The user wants Paris. Sunny there.", reasoning_tokens=4)
    upstream.script("claude-x", reply, reply)
    thinking: Any = {"type": "enabled", "budget_tokens": 1024}
    msg = await claude.messages.create(model="claude-x", max_tokens=2048, messages=USER, thinking=thinking)
    assert [b.type for b in msg.content] == ["thinking", "text"]
    assert msg.content[0].thinking == "The user wants Paris. Sunny there." and msg.content[0].signature
    assert msg.content[1].text == "It is sunny." and msg.usage.output_tokens_details.thinking_tokens == 4
    assert upstream.requests[-1].body["thinking"] == thinking
    async with claude.messages.stream(model="claude-x", max_tokens=2048, messages=USER, thinking=thinking) as stream:
        kinds = [event.delta.type async for event in stream if event.type == "content_block_delta"]
        final = await stream.get_final_message()
    assert kinds[0] == "thinking_delta" and "signature_delta" in kinds and kinds[-1] == "text_delta"
    assert final.content[0].type == "thinking" and final.content[0].thinking == msg.content[0].thinking
    assert final.content[0].signature.startswith("ZmFrZS") and final.content[1].text == "It is sunny."
    assert final.usage.output_tokens_details.thinking_tokens == 4


async def test_anthropic_cache_usage_fields(upstream: FakeUpstream, claude: anthropic.AsyncAnthropic) -> None:
    reply = Reply(text="ok", input_tokens=100, output_tokens=2, cached_input_tokens=80, cache_write_tokens=15)
    upstream.script("claude-x", reply, reply)
    usage = (await claude.messages.create(model="claude-x", max_tokens=50, messages=USER)).usage
    assert (usage.input_tokens, usage.cache_read_input_tokens, usage.cache_creation_input_tokens) == (5, 80, 15)
    assert usage.cache_creation.ephemeral_5m_input_tokens == 15
    async with claude.messages.stream(model="claude-x", max_tokens=50, messages=USER) as stream:
        final = await stream.get_final_message()
    assert (final.usage.input_tokens, final.usage.cache_read_input_tokens, final.usage.output_tokens) == (5, 80, 2)


async def test_anthropic_refusal(upstream: FakeUpstream, claude: anthropic.AsyncAnthropic) -> None:
    upstream.script("claude-x", Reply(refusal="I can't help with that."), Reply(refusal="I can't help with that."))
    msg = await claude.messages.create(model="claude-x", max_tokens=50, messages=USER)
    assert (msg.stop_reason, msg.content[0].text) == ("refusal", "I can't help with that.")
    async with claude.messages.stream(model="claude-x", max_tokens=50, messages=USER) as stream:
        final = await stream.get_final_message()
    assert final.stop_reason == "refusal"


async def test_anthropic_structured_output(upstream: FakeUpstream, claude: anthropic.AsyncAnthropic) -> None:
    from pydantic import BaseModel

    class City(BaseModel):
        name: str
        population: int

    upstream.script("claude-x", Reply(text='{"name": "Paris", "population": 2100000}'))
    msg = await claude.messages.parse(model="claude-x", max_tokens=50, messages=USER, output_format=City)
    assert msg.parsed_output == City(name="Paris", population=2100000)
    fmt = upstream.requests[-1].body["output_config"]["format"]  # the SDK's spelling, which the gateway sends too
    assert fmt["type"] == "json_schema" and fmt["schema"]["additionalProperties"] is False


async def test_gemini_tool_call(upstream: FakeUpstream, gem: genai.client.AsyncClient) -> None:
    upstream.script("gemini-x", Reply(tool_calls=[WEATHER]), Reply(tool_calls=[WEATHER]))
    result = await gem.models.generate_content(model="gemini-x", contents="weather?")
    call = result.function_calls[0]
    assert (call.name, call.args) == ("get_weather", WEATHER["arguments"])
    chunks = await _gemini_stream(gem)
    calls = [fc for c in chunks for fc in (c.function_calls or [])]
    assert [(fc.name, fc.args) for fc in calls] == [("get_weather", WEATHER["arguments"])]


# -- Gemini REST features: candidates, thoughts, signatures, logprobs, cache, JSON, safety ----------------

THINKING = "**Planning**\n\nThe user wants Paris weather."


def _thinking_config(**extra: Any) -> genai_types.GenerateContentConfig:
    return genai_types.GenerateContentConfig(
        thinking_config=genai_types.ThinkingConfig(thinking_budget=1024, include_thoughts=True), **extra
    )


async def test_gemini_candidates_thoughts_logprobs_json_and_usage(
    upstream: FakeUpstream, gem: genai.client.AsyncClient
) -> None:
    answer = '{"city": "Paris", "temp": 21}'
    upstream.script(
        "gemini-x",
        Reply(text=answer, reasoning=THINKING, reasoning_tokens=12, cached_input_tokens=3, input_tokens=10),
    )
    config = _thinking_config(
        candidate_count=2,
        response_logprobs=True,
        logprobs=2,
        response_mime_type="application/json",
        response_json_schema={"type": "object", "properties": {"city": {"type": "string"}}},
    )
    result = await gem.models.generate_content(model="gemini-x", contents="weather?", config=config)
    assert [c.index for c in result.candidates] == [0, 1]
    for candidate in result.candidates:
        thought, text = candidate.content.parts
        assert (thought.thought, thought.text) == (True, THINKING)
        assert json.loads(text.text) == {"city": "Paris", "temp": 21} and not text.thought
        assert text.thought_signature  # a thinking model signs its last part
        chosen = candidate.logprobs_result.chosen_candidates
        assert "".join(c.token for c in chosen) == answer
        assert all(len(top.candidates) == 2 for top in candidate.logprobs_result.top_candidates)
        assert candidate.finish_reason == genai_types.FinishReason.STOP
    usage = result.usage_metadata
    assert (usage.prompt_token_count, usage.cached_content_token_count, usage.thoughts_token_count) == (10, 3, 12)
    assert usage.candidates_token_count == 2 * len(answer.split())
    assert usage.total_token_count == 10 + usage.candidates_token_count + 12
    sent = upstream.requests[-1].body["generationConfig"]
    assert (sent["candidateCount"], sent["responseLogprobs"], sent["logprobs"]) == (2, True, 2)
    assert sent["responseMimeType"] == "application/json" and sent["responseJsonSchema"]["type"] == "object"


async def test_gemini_thoughts_only_when_asked(upstream: FakeUpstream, gem: genai.client.AsyncClient) -> None:
    upstream.script("gemini-x", Reply(text="Hi", reasoning=THINKING))
    result = await gem.models.generate_content(model="gemini-x", contents="hi")
    assert [(p.text, p.thought) for p in result.candidates[0].content.parts] == [("Hi", None)]
    assert result.usage_metadata.thoughts_token_count == len(THINKING.split())


async def test_gemini_signed_function_call_round_trip(upstream: FakeUpstream, gem: genai.client.AsyncClient) -> None:
    upstream.script("gemini-x", Reply(tool_calls=[WEATHER, WEATHER], reasoning=THINKING), Reply(text="21C"))
    config = _thinking_config()
    result = await gem.models.generate_content(model="gemini-x", contents="weather?", config=config)
    parts = result.candidates[0].content.parts
    assert [p.thought for p in parts] == [True, None, None]
    first, second = parts[1], parts[2]
    assert first.function_call.name == "get_weather" and first.thought_signature
    assert second.thought_signature is None  # Gemini signs only the first call of a turn
    history = [
        genai_types.Content(role="user", parts=[genai_types.Part(text="weather?")]),
        result.candidates[0].content,
        genai_types.Content(
            role="user",
            parts=[genai_types.Part.from_function_response(name="get_weather", response={"output": "21C"})] * 2,
        ),
    ]
    follow_up = await gem.models.generate_content(model="gemini-x", contents=history, config=config)
    assert follow_up.text == "21C"
    sent = upstream.requests[-1].body["contents"][1]["parts"]
    signed = [p for p in sent if "thoughtSignature" in p]
    assert len(signed) == 1 and "functionCall" in signed[0]
    assert base64.urlsafe_b64decode(signed[0]["thoughtSignature"]) == first.thought_signature


async def test_gemini_stream_thoughts_candidates_and_signed_call(
    upstream: FakeUpstream, gem: genai.client.AsyncClient
) -> None:
    upstream.script("gemini-x", Reply(tool_calls=[WEATHER], reasoning=THINKING, reasoning_tokens=7))
    config = _thinking_config(candidate_count=2)
    stream = await gem.models.generate_content_stream(model="gemini-x", contents="weather?", config=config)
    chunks = [chunk async for chunk in stream]
    for index in (0, 1):
        parts = [p for c in chunks for cand in c.candidates if cand.index == index for p in cand.content.parts]
        assert (parts[0].thought, parts[0].text) == (True, THINKING)
        (call,) = [p for p in parts if p.function_call]
        assert (call.function_call.name, call.function_call.args) == ("get_weather", WEATHER["arguments"])
        assert call.thought_signature
    final = chunks[-1]
    assert [c.finish_reason for c in final.candidates] == [genai_types.FinishReason.STOP] * 2
    assert final.usage_metadata.thoughts_token_count == 7
    assert all(c.usage_metadata.candidates_token_count is None for c in chunks[:-1])


async def test_gemini_refusal_is_a_safety_stop(upstream: FakeUpstream, gem: genai.client.AsyncClient) -> None:
    upstream.script("gemini-x", Reply(refusal="I can't help with that."), Reply(refusal="no"))
    result = await gem.models.generate_content(model="gemini-x", contents="hi")
    (candidate,) = result.candidates
    assert (candidate.finish_reason, candidate.content, result.text) == (genai_types.FinishReason.SAFETY, None, None)
    assert candidate.safety_ratings[0].blocked is True
    chunks = await _gemini_stream(gem)
    assert chunks[-1].candidates[0].finish_reason == genai_types.FinishReason.SAFETY


def _camel(value: Any) -> Any:
    """A request body with snake_case keys spelled camelCase (Google's parser accepts both)."""
    if isinstance(value, dict):
        return {re.sub(r"_([a-z])", lambda m: m.group(1).upper(), k): _camel(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_camel(v) for v in value]
    return value


async def test_gemini_codec_sends_what_the_sdk_sends(upstream: FakeUpstream, gem: genai.client.AsyncClient) -> None:
    """Switchyard's Gemini codec and google-genai build the same GenerateContentRequest for one request
    (modulo the two spellings and base64 alphabets the API accepts, and the SDK's systemInstruction role)."""
    signature = b"\xfa\xfb\xfcsignature"
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    config = genai_types.GenerateContentConfig(
        system_instruction="be brief",
        max_output_tokens=64,
        temperature=0.2,
        top_p=0.9,
        top_k=40,
        stop_sequences=["END"],
        seed=7,
        presence_penalty=0.5,
        frequency_penalty=-0.5,
        response_logprobs=True,
        logprobs=3,
        candidate_count=2,
        response_mime_type="application/json",
        response_json_schema={"type": "object"},
        thinking_config=genai_types.ThinkingConfig(thinking_budget=1024, include_thoughts=True),
        tools=[
            genai_types.Tool(
                function_declarations=[
                    genai_types.FunctionDeclaration(
                        name="get_weather", description="Weather", parameters_json_schema=schema
                    )
                ]
            )
        ],
        tool_config=genai_types.ToolConfig(
            function_calling_config=genai_types.FunctionCallingConfig(
                mode="ANY", allowed_function_names=["get_weather"]
            )
        ),
        automatic_function_calling=genai_types.AutomaticFunctionCallingConfig(disable=True),
    )
    contents = [
        genai_types.Content(
            role="user",
            parts=[
                genai_types.Part(text="look"),
                genai_types.Part(inline_data=genai_types.Blob(mime_type="image/png", data=b"\x89PNG")),
                genai_types.Part(inline_data=genai_types.Blob(mime_type="application/pdf", data=b"%PDF-1.4")),
            ],
        ),
        genai_types.Content(
            role="model",
            parts=[
                genai_types.Part(
                    function_call=genai_types.FunctionCall(name="get_weather", args={"city": "Paris"}),
                    thought_signature=signature,
                )
            ],
        ),
        genai_types.Content(
            role="user",
            parts=[genai_types.Part.from_function_response(name="get_weather", response={"output": "21C"})],
        ),
    ]
    await gem.models.generate_content(model="gemini-x", contents=contents, config=config)
    sdk_body = upstream.requests[-1].body

    call_id = encode_call_id("call_1", signature)
    request = ChatRequest(
        messages=(
            Message("system", "be brief"),
            Message(
                "user",
                "look",
                parts=(
                    TextPart("look"),
                    ImagePart(data=base64.b64encode(b"\x89PNG").decode(), media_type="image/png"),
                    FilePart(data=base64.b64encode(b"%PDF-1.4").decode(), media_type="application/pdf"),
                ),
            ),
            Message("assistant", "", tool_calls=(ToolCall(call_id, "get_weather", '{"city": "Paris"}'),)),
            Message("tool", "21C", tool_call_id=call_id),
        ),
        max_tokens=64,
        temperature=0.2,
        top_p=0.9,
        top_k=40,
        stop=("END",),
        seed=7,
        presence_penalty=0.5,
        frequency_penalty=-0.5,
        logprobs=True,
        top_logprobs=3,
        n=2,
        response_format=ResponseFormat("json_schema", name="out", schema={"type": "object"}, strict=True),
        reasoning=Reasoning(effort="low"),
        tools=(ToolSpec("get_weather", "Weather", schema, strict=True),),
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    target = ModelTarget("gem", "google", "gemini-x", 30.0, Price(None, None, "config"), ModelConfig(provider="google"))
    call = GOOGLE_CODEC.encode(request, target, stream=False)
    async with httpx.AsyncClient(base_url=upstream.base_url) as http:
        reply = await http.post(call.path, content=call.body, headers=GOOGLE_CODEC.auth_headers("gk-test"))
    assert reply.status_code == 200
    recorded = upstream.requests[-1]
    assert (recorded.path, recorded.api_key) == ("/v1beta/models/gemini-x:generateContent", "gk-test")
    codec_body = recorded.body

    def normal(body: dict[str, Any]) -> dict[str, Any]:
        body = _camel(body)
        body["systemInstruction"].pop("role", None)
        for content in body["contents"]:
            for part in content["parts"]:
                if "thoughtSignature" in part:
                    part["thoughtSignature"] = base64.urlsafe_b64decode(
                        part["thoughtSignature"].replace("+", "-").replace("/", "_")
                    )
        return body

    assert normal(codec_body) == normal(sdk_body)


# -- HTTP errors ----------------------------------------------------------------------


async def test_rate_limit_429_with_retry_after(
    upstream: FakeUpstream, oai: openai.AsyncOpenAI, claude: anthropic.AsyncAnthropic, gem: genai.client.AsyncClient
) -> None:
    upstream.script(ANY_MODEL, *[Reply(status=429, retry_after=7)] * 3)
    with pytest.raises(openai.RateLimitError) as oe:
        await oai.chat.completions.create(model="gpt-x", messages=USER)
    assert oe.value.response.headers["retry-after"] == "7"
    assert oe.value.body["code"] == "rate_limit_exceeded"
    with pytest.raises(anthropic.RateLimitError) as ae:
        await claude.messages.create(model="claude-x", max_tokens=5, messages=USER)
    assert ae.value.response.headers["retry-after"] == "7"
    assert ae.value.body["error"]["type"] == "rate_limit_error"
    with pytest.raises(genai_errors.ClientError) as ge:
        await gem.models.generate_content(model="gemini-x", contents="hi")
    assert (ge.value.code, ge.value.status) == (429, "RESOURCE_EXHAUSTED")
    assert ge.value.response.headers["retry-after"] == "7"


async def test_anthropic_overloaded_529(upstream: FakeUpstream, claude: anthropic.AsyncAnthropic) -> None:
    upstream.script("claude-x", Reply(status=529), Reply(status=529))
    with pytest.raises(anthropic.OverloadedError) as exc:
        await claude.messages.create(model="claude-x", max_tokens=5, messages=USER)
    assert exc.value.status_code == 529 and exc.value.type == "overloaded_error"
    with pytest.raises(anthropic.InternalServerError):  # OverloadedError's base class, also when streaming
        async with claude.messages.stream(model="claude-x", max_tokens=5, messages=USER) as stream:
            await stream.get_final_message()


async def test_bad_api_key(
    upstream: FakeUpstream, oai: openai.AsyncOpenAI, claude: anthropic.AsyncAnthropic, gem: genai.client.AsyncClient
) -> None:
    upstream.valid_keys = {"the-right-key"}
    with pytest.raises(openai.AuthenticationError) as oe:
        await oai.chat.completions.create(model="gpt-x", messages=USER)
    assert oe.value.body["code"] == "invalid_api_key"
    with pytest.raises(anthropic.AuthenticationError) as ae:
        await claude.messages.create(model="claude-x", max_tokens=5, messages=USER)
    assert ae.value.type == "authentication_error"
    # Gemini answers a wrong API key with 400 INVALID_ARGUMENT / reason API_KEY_INVALID, not 401.
    with pytest.raises(genai_errors.ClientError) as ge:
        await gem.models.generate_content(model="gemini-x", contents="hi")
    assert (ge.value.code, ge.value.status) == (400, "INVALID_ARGUMENT")
    assert ge.value.details["error"]["details"][0]["reason"] == "API_KEY_INVALID"
    assert [r.api_key for r in upstream.requests] == ["sk-test", "ak-test", "gk-test"]


async def test_server_error_500(
    upstream: FakeUpstream, oai: openai.AsyncOpenAI, claude: anthropic.AsyncAnthropic, gem: genai.client.AsyncClient
) -> None:
    upstream.script(ANY_MODEL, *[Reply(status=500, error_message="boom")] * 3)
    with pytest.raises(openai.InternalServerError) as oe:
        await oai.chat.completions.create(model="gpt-x", messages=USER)
    assert oe.value.body == {"message": "boom", "type": "server_error", "param": None, "code": None}
    with pytest.raises(anthropic.InternalServerError) as ae:
        await claude.messages.create(model="claude-x", max_tokens=5, messages=USER)
    assert ae.value.type == "api_error" and ae.value.api_message == "boom"
    with pytest.raises(genai_errors.ServerError) as ge:
        await _gemini_stream(gem)  # errors before the stream starts are plain JSON bodies
    assert (ge.value.code, ge.value.status, ge.value.message) == (500, "INTERNAL", "boom")


# -- mid-stream failures ----------------------------------------------------------------


async def test_openai_stream_cut_raises_connection_error(upstream: FakeUpstream, oai: openai.AsyncOpenAI) -> None:
    upstream.script("gpt-x", Reply(text=TEXT, cut_after_chunks=2))
    stream = await oai.chat.completions.create(
        model="gpt-x", messages=USER, stream=True, stream_options={"include_usage": True}
    )
    seen: list[str] = []
    # the SDK reports a cut stream as its own connection error or as its transport's (httpx) protocol error
    with pytest.raises((openai.APIConnectionError, httpx.RemoteProtocolError)):
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                seen.append(chunk.choices[0].delta.content)
    assert "".join(seen) == "Hello,  wide\t"


async def test_anthropic_stream_cut_raises_transport_error(
    upstream: FakeUpstream, claude: anthropic.AsyncAnthropic
) -> None:
    upstream.script("claude-x", Reply(text=TEXT, cut_after_chunks=2))
    stream = await claude.messages.create(model="claude-x", max_tokens=50, messages=USER, stream=True)
    types: list[str] = []
    # anthropic 2.17 reports a cut stream as its own connection error; earlier releases as httpx2's error
    with pytest.raises((anthropic.APIConnectionError, httpx2.RemoteProtocolError)):
        async for event in stream:
            types.append(event.type)
    assert types == ["message_start", "content_block_start", "content_block_delta", "content_block_delta"]


async def test_gemini_stream_cut_raises_payload_error(upstream: FakeUpstream, gem: genai.client.AsyncClient) -> None:
    upstream.script("gemini-x", Reply(text=TEXT, cut_after_chunks=2))
    texts: list[str] = []
    with pytest.raises(aiohttp.ClientPayloadError):
        async for chunk in await gem.models.generate_content_stream(model="gemini-x", contents="hi"):
            texts.append(chunk.text)
    assert texts == ["Hello,  ", "wide\t"]


async def test_in_stream_error_events(
    upstream: FakeUpstream, oai: openai.AsyncOpenAI, claude: anthropic.AsyncAnthropic, gem: genai.client.AsyncClient
) -> None:
    upstream.script(ANY_MODEL, *[Reply(text=TEXT, error_after_chunks=1, stream_error_status=529)] * 3)
    with pytest.raises(openai.APIError) as oe:
        await _openai_stream(oai)
    assert oe.value.body["type"] == "server_error"
    stream = await claude.messages.create(model="claude-x", max_tokens=50, messages=USER, stream=True)
    with pytest.raises(anthropic.APIStatusError) as ae:
        async for _ in stream:
            pass
    # The HTTP status was 200, so the SDK cannot pick OverloadedError: check the body type.
    assert ae.value.status_code == 200 and ae.value.type == "overloaded_error"
    with pytest.raises(genai_errors.APIError) as ge:
        await _gemini_stream(gem)
    assert ge.value.code == 529


# -- client disconnects ---------------------------------------------------------------------


async def test_cancelled_delayed_requests_count_as_disconnects(
    upstream: FakeUpstream, oai: openai.AsyncOpenAI, claude: anthropic.AsyncAnthropic, gem: genai.client.AsyncClient
) -> None:
    upstream.default = Reply(delay_s=5)
    calls = [
        oai.chat.completions.create(model="gpt-x", messages=USER),
        claude.messages.create(model="claude-x", max_tokens=5, messages=USER),
        gem.models.generate_content(model="gemini-x", contents="hi"),
    ]
    for n, call in enumerate(calls, start=1):
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(call, timeout=0.3)
        assert upstream.wait_for_disconnects(n, timeout=3) == n
    upstream.wait_idle(timeout=3)
    assert upstream.in_flight == 0


async def test_closing_a_slow_stream_counts_as_disconnect(upstream: FakeUpstream, oai: openai.AsyncOpenAI) -> None:
    upstream.script("gpt-x", Reply(text=TEXT, chunk_delay_s=0.2))
    stream = await oai.chat.completions.create(model="gpt-x", messages=USER, stream=True)
    first = await stream.__anext__()
    assert first.choices[0].delta.role == "assistant"
    assert upstream.in_flight == 1
    await stream.close()
    upstream.wait_for_disconnects(1, timeout=3)


# -- scripting and raw wire details -------------------------------------------------------


async def test_script_queue_fifo_default_and_models_list(upstream: FakeUpstream, oai: openai.AsyncOpenAI) -> None:
    upstream.script("gpt-x", Reply(text="one"), Reply(text="two"))
    upstream.script(ANY_MODEL, Reply(text="any"))
    upstream.default = Reply(text="fallback")
    assert "gpt-x" in [m.id for m in (await oai.models.list()).data]
    texts = [
        (await oai.chat.completions.create(model=m, messages=USER)).choices[0].message.content
        for m in ("gpt-x", "gpt-y", "gpt-x", "gpt-x", "gpt-y")
    ]
    assert texts == ["one", "any", "two", "fallback", "fallback"]
    assert [r.model for r in upstream.requests] == ["gpt-x", "gpt-y", "gpt-x", "gpt-x", "gpt-y"]
    upstream.reset()
    assert upstream.requests == [] and upstream.default == Reply()


async def test_raw_wire_framing(upstream: FakeUpstream) -> None:
    async with httpx.AsyncClient(base_url=upstream.base_url) as http:
        oa = await http.post("/v1/chat/completions", json={"model": "m", "stream": True, "messages": USER})
        assert oa.headers["content-type"].startswith("text/event-stream")
        assert oa.text.endswith("data: [DONE]\n\n") and '"usage"' not in oa.text
        an = await http.post("/v1/messages", json={"model": "m", "stream": True, "messages": USER})
        events = [line[7:] for line in an.text.splitlines() if line.startswith("event: ")]
        assert events[:3] == ["message_start", "content_block_start", "ping"]
        assert events[-3:] == ["content_block_stop", "message_delta", "message_stop"]
        assert an.headers["request-id"].startswith("req_")
        ge = await http.post(
            "/v1beta/models/gemini-x:streamGenerateContent?alt=sse&key=query-key",
            json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
        )
        assert ge.text.startswith("data: {") and ge.text.endswith("}\r\n\r\n")
        assert upstream.requests[-1].api_key == "query-key"
        bad = await http.post("/v1/messages", content=b"{not json")
        assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"


def test_standalone_cli(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.server", "--port", str(port)],
        cwd=repo,
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "stderr.txt").open("w"),
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                reply = httpx.post(
                    f"http://127.0.0.1:{port}/v1/messages",
                    json={"model": "m", "max_tokens": 5, "messages": USER},
                )
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "stderr.txt").read_text()
                time.sleep(0.05)
        assert reply.json()["content"][0]["text"] == "echo: what is the weather in Paris"
    finally:
        proc.terminate()
        proc.wait(10)
