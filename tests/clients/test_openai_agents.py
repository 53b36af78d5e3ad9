"""The OpenAI Agents SDK (``openai-agents``, ``OpenAIChatCompletionsModel`` over an ``AsyncOpenAI`` at the
gateway) against a real ``switchyard serve``, to every provider kind: a function tool (strict, as the SDK
makes them) with an ``output_type`` (strict ``json_schema``), the same run streamed (streamed tool calls),
an image input and reasoning effort."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import openai
import pytest
from agents import Agent, ModelSettings, OpenAIChatCompletionsModel, Runner, function_tool, set_tracing_disabled
from openai.types.shared import Reasoning

from tests.clients.conftest import CLIENT_KEY
from tests.clients.shapes import (
    CALL_WEATHER,
    MODELS,
    PNG_URL,
    REASONING,
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

set_tracing_disabled(True)  # no trace export to OpenAI's servers
pytestmark = pytest.mark.parametrize("model", MODELS)
ASK = "What is the weather in Paris?"
T = TypeVar("T")


@function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return json.dumps({"city": city, "celsius": 21})


def run(base_url: str, main: Callable[[OpenAIChatCompletionsModel], Awaitable[T]], model: str) -> T:
    """Run ``main`` with a chat-completions model on a fresh AsyncOpenAI client (closed afterwards)."""

    async def go() -> T:
        async with openai.AsyncOpenAI(base_url=base_url, api_key=CLIENT_KEY, max_retries=0) as client:
            return await main(OpenAIChatCompletionsModel(model=model, openai_client=client))

    return asyncio.run(go())


def weather_agent(chat_model: OpenAIChatCompletionsModel, **options: Any) -> Agent[Any]:
    tools: list[Any] = [get_weather]
    return Agent(
        name="weather", instructions="Use the tool.", model=chat_model, tools=tools, output_type=Weather, **options
    )


def test_function_tool_and_output_type(base_url: str, upstream: FakeUpstream, model: str) -> None:
    script(upstream, model, Reply(tool_calls=[CALL_WEATHER]), json_reply())

    async def main(chat_model: OpenAIChatCompletionsModel) -> Any:
        return (await Runner.run(weather_agent(chat_model), ASK)).final_output

    assert run(base_url, main, model) == Weather(city="Paris", celsius=21)
    first, second = one(upstream, 2)
    check_tool(first, "get_weather", strict=True)
    check_json_schema(first)
    check_tool_result(second, "get_weather", "celsius")
    check_json_schema(second)


def test_streamed_run_with_tool(base_url: str, upstream: FakeUpstream, model: str) -> None:
    script(upstream, model, Reply(tool_calls=[CALL_WEATHER]), json_reply())

    async def main(chat_model: OpenAIChatCompletionsModel) -> tuple[Any, list[str]]:
        result = Runner.run_streamed(weather_agent(chat_model), ASK)
        kinds = [event.item.type async for event in result.stream_events() if event.type == "run_item_stream_event"]
        return result.final_output, kinds

    output, kinds = run(base_url, main, model)
    assert output == Weather(city="Paris", celsius=21)
    assert "tool_call_item" in kinds and "tool_call_output_item" in kinds
    first, second = one(upstream, 2)
    check_stream(first)
    check_tool(first, "get_weather", strict=True)
    check_tool_result(second, "get_weather", "celsius")


def test_image_input(base_url: str, upstream: FakeUpstream, model: str) -> None:
    script(upstream, model, Reply(text="A single pixel."))
    content: Any = [
        {"type": "input_text", "text": "What is in this image?"},
        {"type": "input_image", "image_url": PNG_URL, "detail": "low"},
    ]

    async def main(chat_model: OpenAIChatCompletionsModel) -> Any:
        agent = Agent(name="eyes", model=chat_model)
        return (await Runner.run(agent, [{"role": "user", "content": content}])).final_output

    assert run(base_url, main, model) == "A single pixel."
    check_image(last(upstream))


def test_reasoning_effort(base_url: str, upstream: FakeUpstream, model: str) -> None:
    script(upstream, model, Reply(text="4", reasoning="2 + 2 = 4"))

    async def main(chat_model: OpenAIChatCompletionsModel) -> Any:
        settings = ModelSettings(reasoning=Reasoning(effort="low"))
        agent = Agent(name="thinker", model=chat_model, model_settings=settings)
        return (await Runner.run(agent, "What is 2 + 2?")).final_output

    if model not in REASONING:
        with pytest.raises(openai.BadRequestError, match="reasoning_effort"):
            run(base_url, main, model)
        assert upstream.requests == []
        return
    assert run(base_url, main, model) == "4"
    check_reasoning(last(upstream), "low")
