"""pydantic-ai (``OpenAIChatModel`` with an ``OpenAIProvider`` at the gateway) against a real
``switchyard serve``, to every provider kind: an Agent with a tool and a structured ``output_type`` (its
output tool), native structured output (``NativeOutput``: ``json_schema``), a streamed run, an image and
reasoning effort."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest
from pydantic_ai import Agent, BinaryContent, NativeOutput
from pydantic_ai.exceptions import ModelHTTPError
from pydantic_ai.models.openai import OpenAIChatModel, OpenAIChatModelSettings
from pydantic_ai.providers.openai import OpenAIProvider

from tests.clients.conftest import CLIENT_KEY
from tests.clients.shapes import (
    CALL_WEATHER,
    MODELS,
    PNG,
    REASONING,
    WEATHER_JSON,
    Weather,
    check_image,
    check_json_schema,
    check_reasoning,
    check_stream,
    check_tool,
    check_tool_result,
    json_reply,
    last,
    one,
    script,
)
from tests.fakes.scripts import Reply
from tests.fakes.server import FakeUpstream

pytestmark = pytest.mark.parametrize("model", MODELS)
ASK = "What is the weather in Paris?"


def chat_model(base_url: str, model: str) -> OpenAIChatModel:
    return OpenAIChatModel(model, provider=OpenAIProvider(base_url=base_url, api_key=CLIENT_KEY))


def weather_agent(base_url: str, model: str) -> Agent[None, Weather]:
    agent = Agent(chat_model(base_url, model), output_type=Weather, instructions="Use the tool.")

    @agent.tool_plain
    def get_weather(city: str) -> str:
        """The weather in a city."""
        return json.dumps({"city": city, "celsius": 21})

    return agent


def test_agent_with_tool_and_output_type(base_url: str, upstream: FakeUpstream, model: str) -> None:
    script(
        upstream,
        model,
        Reply(tool_calls=[CALL_WEATHER]),
        Reply(tool_calls=[{"name": "final_result", "arguments": WEATHER_JSON}]),
    )
    result = weather_agent(base_url, model).run_sync(ASK)
    assert result.output == Weather(city="Paris", celsius=21)
    first, second = one(upstream, 2)
    # pydantic-ai marks tools strict when their schema allows it (as OpenAI's model profile does)
    check_tool(first, "get_weather", strict=True)
    check_tool(first, "final_result", strict=True)
    check_tool_result(second, "get_weather", "celsius")


def test_native_structured_output(base_url: str, upstream: FakeUpstream, model: str) -> None:
    script(upstream, model, json_reply())
    agent = Agent(chat_model(base_url, model), output_type=NativeOutput(Weather))
    assert agent.run_sync(ASK).output == Weather(city="Paris", celsius=21)
    check_json_schema(last(upstream))


def test_streamed_run(base_url: str, upstream: FakeUpstream, model: str) -> None:
    script(upstream, model, Reply(text="Sunny and warm today."))
    agent = Agent(chat_model(base_url, model))

    async def run() -> list[str]:
        async with agent.run_stream(ASK) as stream:
            return [text async for text in stream.stream_text(delta=True)]

    assert "".join(asyncio.run(run())) == "Sunny and warm today."
    check_stream(last(upstream))


def test_image_input(base_url: str, upstream: FakeUpstream, model: str) -> None:
    script(upstream, model, Reply(text="A single pixel."))
    agent = Agent(chat_model(base_url, model))
    image = BinaryContent(data=base64.b64decode(PNG), media_type="image/png")
    assert agent.run_sync(["What is in this image?", image]).output == "A single pixel."
    check_image(last(upstream))


def test_reasoning_effort(base_url: str, upstream: FakeUpstream, model: str) -> None:
    script(upstream, model, Reply(text="4", reasoning="2 + 2 = 4"))
    agent = Agent(chat_model(base_url, model), model_settings=OpenAIChatModelSettings(openai_reasoning_effort="low"))
    if model not in REASONING:
        with pytest.raises(ModelHTTPError, match="reasoning_effort"):
            agent.run_sync("What is 2 + 2?")
        assert upstream.requests == []
        return
    assert agent.run_sync("What is 2 + 2?").output == "4"
    check_reasoning(last(upstream), "low")
