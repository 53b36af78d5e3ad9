"""The Anthropic Messages API through the official ``anthropic`` SDK against the gateway, routed to each
kind of provider (played by the fake upstream): create, stream, a tools round trip, thinking, images;
the pass-through to Anthropic upstreams; usage mapped back."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest

from tests.api.messages_support import (
    ANTHROPIC,
    MESSAGE_MODELS,
    PNG,
    TRANSLATED,
    WEATHER,
    sent_body,
    upstream_id,
)
from tests.fakes.scripts import Reply
from tests.fakes.server import FakeUpstream

USER: Any = [{"role": "user", "content": "What is the weather in Paris?"}]


@pytest.mark.parametrize("model", MESSAGE_MODELS)
async def test_create(claude: anthropic.AsyncAnthropic, upstream: FakeUpstream, model: str) -> None:
    upstream.script(upstream_id(model), Reply(text="It is sunny.", input_tokens=12, output_tokens=3))
    message = await claude.messages.create(model=model, max_tokens=100, messages=USER)
    assert message.type == "message" and message.role == "assistant"
    assert [b.type for b in message.content] == ["text"]
    assert message.content[0].text == "It is sunny."  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens == 12 and message.usage.output_tokens == 3


@pytest.mark.parametrize("model", MESSAGE_MODELS)
async def test_stream(claude: anthropic.AsyncAnthropic, upstream: FakeUpstream, model: str) -> None:
    upstream.script(upstream_id(model), Reply(text="It is sunny in Paris today.", input_tokens=9, output_tokens=6))
    async with claude.messages.stream(model=model, max_tokens=100, messages=USER) as stream:
        texts = [text async for text in stream.text_stream]
        final = await stream.get_final_message()
    assert "".join(texts) == "It is sunny in Paris today."
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 6 and final.usage.input_tokens == 9


@pytest.mark.parametrize("model", MESSAGE_MODELS)
async def test_stream_event_sequence(raw: Any, upstream: FakeUpstream, model: str) -> None:
    upstream.script(
        upstream_id(model), Reply(text="Sunny.", tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}])
    )
    body = {"model": model, "max_tokens": 100, "messages": USER, "tools": [WEATHER], "stream": True}
    response = await raw.post("/v1/messages", json=body)
    assert response.status_code == 200, response.text
    names = [line[7:] for line in response.text.splitlines() if line.startswith("event: ")]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    assert names[1] == "content_block_start" and names[2] == "ping"
    assert names.count("content_block_start") == names.count("content_block_stop") == 2
    assert "error" not in names


@pytest.mark.parametrize("model", MESSAGE_MODELS)
async def test_tools_round_trip(claude: anthropic.AsyncAnthropic, upstream: FakeUpstream, model: str) -> None:
    upstream.script(upstream_id(model), Reply(tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}]))
    first = await claude.messages.create(model=model, max_tokens=100, messages=USER, tools=[WEATHER])
    assert first.stop_reason == "tool_use"
    (use,) = [b for b in first.content if b.type == "tool_use"]
    assert use.name == "get_weather" and use.input == {"city": "Paris"}
    upstream.script(upstream_id(model), Reply(text="21 degrees and sunny."))
    history: Any = [
        *USER,
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "21C, sunny"}]},
    ]
    second = await claude.messages.create(model=model, max_tokens=100, messages=history, tools=[WEATHER])
    assert second.content[0].text == "21 degrees and sunny."  # type: ignore[union-attr]
    assert "21C, sunny" in str(sent_body(upstream))  # the result reached the vendor


@pytest.mark.parametrize("model", MESSAGE_MODELS)
async def test_streamed_tool_call(claude: anthropic.AsyncAnthropic, upstream: FakeUpstream, model: str) -> None:
    upstream.script(upstream_id(model), Reply(tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}]))
    async with claude.messages.stream(model=model, max_tokens=100, messages=USER, tools=[WEATHER]) as stream:
        final = await stream.get_final_message()
    (use,) = [b for b in final.content if b.type == "tool_use"]
    assert use.input == {"city": "Paris"} and final.stop_reason == "tool_use"


@pytest.mark.parametrize("model", MESSAGE_MODELS)
async def test_thinking(claude: anthropic.AsyncAnthropic, upstream: FakeUpstream, model: str) -> None:
    upstream.script(upstream_id(model), Reply(text="Paris.", reasoning="The user asks about Paris."))
    thinking: Any = {"type": "enabled", "budget_tokens": 2048}
    message = await claude.messages.create(model=model, max_tokens=4096, messages=USER, thinking=thinking)
    kinds = [b.type for b in message.content]
    assert kinds == ["thinking", "text"], kinds
    assert message.content[0].thinking == "The user asks about Paris."  # type: ignore[union-attr]
    if model == ANTHROPIC:
        assert message.content[0].signature  # type: ignore[union-attr]
    upstream.script(upstream_id(model), Reply(text="Paris.", reasoning="Thinking hard."))
    async with claude.messages.stream(model=model, max_tokens=4096, messages=USER, thinking=thinking) as stream:
        final = await stream.get_final_message()
    assert [b.type for b in final.content] == ["thinking", "text"]


@pytest.mark.parametrize("model", MESSAGE_MODELS)
async def test_image(claude: anthropic.AsyncAnthropic, upstream: FakeUpstream, model: str) -> None:
    upstream.script(upstream_id(model), Reply(text="A pixel."))
    content: Any = [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "text", "text": "What is this?"},
    ]
    message = await claude.messages.create(model=model, max_tokens=100, messages=[{"role": "user", "content": content}])
    assert message.content[0].text == "A pixel."  # type: ignore[union-attr]
    assert PNG in str(sent_body(upstream))


async def test_passthrough_body_is_the_clients(raw: Any, upstream: FakeUpstream) -> None:
    body = {
        "model": ANTHROPIC,
        "max_tokens": 100,
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        "messages": USER,
        "future_field": {"kept": True},
    }
    response = await raw.post("/v1/messages", json=body, headers={"anthropic-beta": "some-beta-2025-01-01"})
    assert response.status_code == 200
    recorded = upstream.requests[-1]
    assert recorded.body == body  # the model name is the same here: the body is exactly the client's
    assert recorded.headers["anthropic-beta"] == "some-beta-2025-01-01"
    assert "x-switchyard-ignored-params" not in response.headers


@pytest.mark.parametrize("model", TRANSLATED)
async def test_usage_with_cache_mapped_back(
    claude: anthropic.AsyncAnthropic, upstream: FakeUpstream, model: str
) -> None:
    upstream.script(upstream_id(model), Reply(text="ok", input_tokens=100, output_tokens=5, cached_input_tokens=60))
    message = await claude.messages.create(model=model, max_tokens=100, messages=USER)
    usage = message.usage
    assert usage.cache_read_input_tokens == 60
    assert usage.input_tokens == 40  # Anthropic's input excludes the cache reads
    assert usage.output_tokens == 5
