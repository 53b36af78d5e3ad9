"""The fake upstream's ``/v1/responses`` (OpenAI's Responses API wire format), checked with the official
``openai`` SDK: ``responses.create``, ``responses.stream`` (the SDK's own event accumulator), ``.parse()``,
function calls, reasoning with encrypted content, a truncated answer, error bodies and an in-stream
failure."""

from __future__ import annotations

from collections.abc import AsyncIterator

import openai
import pytest
import pytest_asyncio
from pydantic import BaseModel

from tests.fakes import FakeUpstream, Reply


class Person(BaseModel):
    name: str
    born: int


@pytest_asyncio.fixture
async def oai(upstream: FakeUpstream) -> AsyncIterator[openai.AsyncOpenAI]:
    client = openai.AsyncOpenAI(api_key="sk-test", base_url=upstream.openai_base_url, max_retries=0)
    yield client
    await client.close()


async def test_create_echoes_text_with_usage(upstream: FakeUpstream, oai: openai.AsyncOpenAI) -> None:
    upstream.script("gpt-x", Reply(cached_input_tokens=2, reasoning_tokens=1))
    response = await oai.responses.create(model="gpt-x", input="hello there", instructions="Be brief.")
    assert response.output_text == "echo: hello there" and response.status == "completed"
    assert response.usage is not None and response.usage.input_tokens == 4  # "Be brief. hello there"
    assert response.usage.input_tokens_details.cached_tokens == 2
    assert response.usage.output_tokens_details.reasoning_tokens == 1
    assert upstream.requests[-1].path == "/v1/responses"


async def test_function_call_and_reasoning_items(upstream: FakeUpstream, oai: openai.AsyncOpenAI) -> None:
    upstream.script("gpt-x", Reply(reasoning="think first", tool_calls=[{"name": "f", "arguments": {"a": 1}}]))
    response = await oai.responses.create(
        model="gpt-x",
        input=[{"role": "user", "content": [{"type": "input_text", "text": "call f"}]}],
        tools=[{"type": "function", "name": "f", "parameters": {"type": "object"}, "strict": False}],
        include=["reasoning.encrypted_content"],
    )
    reasoning, call = response.output
    assert reasoning.type == "reasoning" and reasoning.encrypted_content and reasoning.summary[0].text == "think first"
    assert call.type == "function_call" and call.name == "f" and call.arguments == '{"a":1}'


async def test_stream_through_the_sdk_helper(upstream: FakeUpstream, oai: openai.AsyncOpenAI) -> None:
    upstream.script("gpt-x", Reply(text="one two three", reasoning="hmm"))
    async with oai.responses.stream(model="gpt-x", input="count") as stream:
        events = [event async for event in stream]
        final = await stream.get_final_response()
    assert [e.sequence_number for e in events] == list(range(len(events)))
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.completed"
    assert "response.reasoning_summary_text.delta" in kinds
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "one two three"
    assert final.output_text == "one two three"


async def test_streamed_tool_call(upstream: FakeUpstream, oai: openai.AsyncOpenAI) -> None:
    upstream.script("gpt-x", Reply(tool_calls=[{"name": "lookup", "arguments": {"q": "a long query text"}}]))
    async with oai.responses.stream(model="gpt-x", input="look it up") as stream:
        final = await stream.get_final_response()
    (call,) = final.output
    assert call.type == "function_call" and call.arguments == '{"q":"a long query text"}'


async def test_parse_structured_output(upstream: FakeUpstream, oai: openai.AsyncOpenAI) -> None:
    upstream.script("gpt-x", Reply(text='{"name": "Ada", "born": 1815}'))
    parsed = await oai.responses.parse(model="gpt-x", input="who", text_format=Person)
    assert parsed.output_parsed == Person(name="Ada", born=1815)
    assert upstream.requests[-1].body["text"]["format"]["type"] == "json_schema"


async def test_truncated_is_incomplete(upstream: FakeUpstream, oai: openai.AsyncOpenAI) -> None:
    upstream.script("gpt-x", Reply(text="cut", truncated=True))
    response = await oai.responses.create(model="gpt-x", input="x", max_output_tokens=16)
    assert response.status == "incomplete" and response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"


async def test_error_body(upstream: FakeUpstream, oai: openai.AsyncOpenAI) -> None:
    upstream.script("gpt-x", Reply(status=429))
    with pytest.raises(openai.RateLimitError) as info:
        await oai.responses.create(model="gpt-x", input="x")
    assert info.value.code == "rate_limit_exceeded"


async def test_in_stream_failure(upstream: FakeUpstream, oai: openai.AsyncOpenAI) -> None:
    upstream.script("gpt-x", Reply(text="a b c d", error_after_chunks=2, stream_error_status=500))
    async with oai.responses.stream(model="gpt-x", input="x") as stream:
        kinds = [event.type async for event in stream]
    assert kinds[-1] == "response.failed" and "response.completed" not in kinds
