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
import json
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


async def test_gemini_tool_call(upstream: FakeUpstream, gem: genai.client.AsyncClient) -> None:
    upstream.script("gemini-x", Reply(tool_calls=[WEATHER]), Reply(tool_calls=[WEATHER]))
    result = await gem.models.generate_content(model="gemini-x", contents="weather?")
    call = result.function_calls[0]
    assert (call.name, call.args) == ("get_weather", WEATHER["arguments"])
    chunks = await _gemini_stream(gem)
    calls = [fc for c in chunks for fc in (c.function_calls or [])]
    assert [(fc.name, fc.args) for fc in calls] == [("get_weather", WEATHER["arguments"])]


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
    with pytest.raises(openai.APIConnectionError):
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
    with pytest.raises(httpx2.RemoteProtocolError):  # the SDK's transport; not an anthropic.APIError
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
