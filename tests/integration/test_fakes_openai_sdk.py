"""The fake OpenAI upstream's newer features, checked with the official ``openai`` SDK: structured output
with ``.parse()``, ``n`` choices, logprobs, refusals, usage details, reasoning text as compatible servers
send it, and streamed tool calls through the SDK's own stream helper (the basics are in
``test_fakes_sdk.py``)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest_asyncio
from pydantic import BaseModel

from tests.fakes import FakeUpstream, Reply

USER = [{"role": "user", "content": "who was the first programmer"}]
TEXT = "Ada Lovelace, of course. "


class Person(BaseModel):
    name: str
    born: int


class GetWeather(BaseModel):
    city: str
    days: int


@pytest_asyncio.fixture
async def oai(upstream: FakeUpstream) -> AsyncIterator[openai.AsyncOpenAI]:
    client = openai.AsyncOpenAI(api_key="sk-test", base_url=upstream.openai_base_url, max_retries=0)
    yield client
    await client.close()


async def _collect(stream: Any) -> list[Any]:
    return [chunk async for chunk in stream]


async def test_parse_structured_output(upstream: FakeUpstream, oai: openai.AsyncOpenAI) -> None:
    upstream.script("gpt-x", Reply(text='{"name": "Ada Lovelace", "born": 1815}'))
    result = await oai.chat.completions.parse(model="gpt-x", messages=USER, response_format=Person)
    message = result.choices[0].message
    assert message.parsed == Person(name="Ada Lovelace", born=1815) and message.refusal is None
    sent = upstream.requests[-1].body["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["name"] == "Person"
    assert sent["json_schema"]["strict"] is True and "born" in sent["json_schema"]["schema"]["properties"]


async def test_parse_with_a_refusal(upstream: FakeUpstream, oai: openai.AsyncOpenAI) -> None:
    upstream.script("gpt-x", Reply(refusal="I'm sorry, I can't help with that."))
    result = await oai.chat.completions.parse(model="gpt-x", messages=USER, response_format=Person)
    message = result.choices[0].message
    assert (message.parsed, message.content, message.refusal) == (None, None, "I'm sorry, I can't help with that.")
    assert result.choices[0].finish_reason == "stop"


async def test_streamed_refusal(upstream: FakeUpstream, oai: openai.AsyncOpenAI) -> None:
    upstream.script("gpt-x", Reply(refusal="I can't do that."))
    chunks = await _collect(await oai.chat.completions.create(model="gpt-x", messages=USER, stream=True))
    refusal = "".join(c.choices[0].delta.refusal or "" for c in chunks if c.choices)
    assert refusal == "I can't do that." and chunks[-1].choices[0].finish_reason == "stop"


async def test_n_choices(upstream: FakeUpstream, oai: openai.AsyncOpenAI) -> None:
    upstream.script("gpt-x", Reply(text=TEXT), Reply(text=TEXT))
    result = await oai.chat.completions.create(model="gpt-x", messages=USER, n=2)
    assert [(c.index, c.message.content, c.finish_reason) for c in result.choices] == [
        (0, TEXT, "stop"),
        (1, TEXT, "stop"),
    ]
    stream = await oai.chat.completions.create(
        model="gpt-x", messages=USER, n=2, stream=True, stream_options={"include_usage": True}
    )
    texts: dict[int, str] = {}
    finishes: dict[int, str] = {}
    async for chunk in stream:
        for choice in chunk.choices:
            texts[choice.index] = texts.get(choice.index, "") + (choice.delta.content or "")
            if choice.finish_reason:
                finishes[choice.index] = choice.finish_reason
    assert texts == {0: TEXT, 1: TEXT} and finishes == {0: "stop", 1: "stop"}


async def test_logprobs(upstream: FakeUpstream, oai: openai.AsyncOpenAI) -> None:
    upstream.script("gpt-x", Reply(text=TEXT), Reply(text=TEXT))
    result = await oai.chat.completions.create(model="gpt-x", messages=USER, logprobs=True, top_logprobs=2)
    content = result.choices[0].logprobs.content
    assert "".join(t.token for t in content) == TEXT
    assert all(len(t.top_logprobs) == 2 and t.logprob < 0 and bytes(t.bytes).decode() == t.token for t in content)
    chunks = await _collect(
        await oai.chat.completions.create(model="gpt-x", messages=USER, logprobs=True, top_logprobs=1, stream=True)
    )
    streamed = [t.token for c in chunks if c.choices and c.choices[0].logprobs for t in c.choices[0].logprobs.content]
    assert "".join(streamed) == TEXT
    plain = await oai.chat.completions.create(model="gpt-x", messages=USER)
    assert plain.choices[0].logprobs is None


async def test_usage_details(upstream: FakeUpstream, oai: openai.AsyncOpenAI) -> None:
    reply = Reply(text="ok", input_tokens=1200, output_tokens=300, cached_input_tokens=1024, reasoning_tokens=192)
    upstream.script("gpt-x", reply, reply)
    usage = (await oai.chat.completions.create(model="gpt-x", messages=USER)).usage
    assert (usage.prompt_tokens, usage.completion_tokens) == (1200, 300)
    assert usage.prompt_tokens_details.cached_tokens == 1024
    assert usage.completion_tokens_details.reasoning_tokens == 192
    chunks = await _collect(
        await oai.chat.completions.create(
            model="gpt-x", messages=USER, stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[-1].usage.prompt_tokens_details.cached_tokens == 1024


async def test_reasoning_content_as_compatible_servers_send_it(upstream: FakeUpstream, oai: openai.AsyncOpenAI) -> None:
    upstream.script("qwen", Reply(text="4", reasoning="2 plus 2 is 4"), Reply(text="4", reasoning="2 plus 2 is 4"))
    message = (await oai.chat.completions.create(model="qwen", messages=USER)).choices[0].message
    assert (message.content, message.model_extra["reasoning_content"]) == ("4", "2 plus 2 is 4")
    chunks = await _collect(await oai.chat.completions.create(model="qwen", messages=USER, stream=True))
    reasoning = "".join(
        (c.choices[0].delta.model_extra or {}).get("reasoning_content", "") for c in chunks if c.choices
    )
    assert reasoning == "2 plus 2 is 4"


async def test_streamed_strict_tool_call_with_the_stream_helper(
    upstream: FakeUpstream, oai: openai.AsyncOpenAI
) -> None:
    call = {"name": "GetWeather", "arguments": {"city": "Paris", "days": 3}}
    upstream.script("gpt-x", Reply(tool_calls=[call, {**call, "arguments": {"city": "Oslo", "days": 1}}]))
    async with oai.chat.completions.stream(
        model="gpt-x",
        messages=USER,
        tools=[openai.pydantic_function_tool(GetWeather)],
        parallel_tool_calls=True,
    ) as stream:
        final = await stream.get_final_completion()
    calls = final.choices[0].message.tool_calls
    assert [c.function.parsed_arguments for c in calls] == [
        GetWeather(city="Paris", days=3),
        GetWeather(city="Oslo", days=1),
    ]
    assert final.choices[0].finish_reason == "tool_calls"
    tool = upstream.requests[-1].body["tools"][0]["function"]
    assert tool["strict"] is True and tool["name"] == "GetWeather"
    assert json.loads(calls[0].function.arguments) == {"city": "Paris", "days": 3}
