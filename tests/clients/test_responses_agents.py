"""The OpenAI Agents SDK's default model, ``OpenAIResponsesModel`` (the Responses API over an
``AsyncOpenAI`` at the gateway), against a real ``switchyard serve`` routed to every provider kind: a
function tool with an ``output_type``, the same run streamed, and a multi-turn run continued with
``previous_response_id`` (the SDK's server-side conversation) on another provider."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import openai
import pytest
from agents import Agent, OpenAIResponsesModel, Runner, function_tool, set_tracing_disabled

from tests.clients.conftest import CLIENT_KEY
from tests.clients.gateway_process import GatewayProcess
from tests.clients.responses_support import carries, check_path, generation_requests, responses_gateway, tool_names
from tests.clients.shapes import CALL_WEATHER, MODELS, UPSTREAM_ID, Weather, json_reply
from tests.fakes.scripts import Reply
from tests.fakes.server import FakeUpstream

set_tracing_disabled(True)  # no trace export to OpenAI's servers
T = TypeVar("T")
ASK = "What is the weather in Paris?"


@function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return json.dumps({"city": city, "celsius": 21})


@pytest.fixture(scope="module")
def process(fake_upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    with responses_gateway(fake_upstream, tmp_path_factory.mktemp("agents")) as running:
        yield running


@pytest.fixture
def base_url(process: GatewayProcess, upstream: FakeUpstream) -> str:
    return process.openai_base_url


def run(base_url: str, main: Callable[[Callable[[str], OpenAIResponsesModel]], Awaitable[T]]) -> T:
    async def go() -> T:
        async with openai.AsyncOpenAI(base_url=base_url, api_key=CLIENT_KEY, max_retries=0) as client:
            return await main(lambda name: OpenAIResponsesModel(model=name, openai_client=client))

    return asyncio.run(go())


def weather_agent(model: OpenAIResponsesModel) -> Agent[Any]:
    tools: list[Any] = [get_weather]
    return Agent(name="weather", instructions="Use the tool.", model=model, tools=tools, output_type=Weather)


def script(upstream: FakeUpstream, model: str, *replies: Reply) -> None:
    upstream.script(UPSTREAM_ID.get(model, model), *replies)


@pytest.mark.parametrize("model", MODELS)
def test_function_tool_and_output_type(base_url: str, upstream: FakeUpstream, model: str) -> None:
    script(upstream, model, Reply(tool_calls=[CALL_WEATHER]), json_reply())

    async def main(make: Callable[[str], OpenAIResponsesModel]) -> Any:
        return (await Runner.run(weather_agent(make(model)), ASK)).final_output

    assert run(base_url, main) == Weather(city="Paris", celsius=21)
    first, second = generation_requests(upstream)
    check_path(first, model)
    assert tool_names(first) == ["get_weather"] and carries(first, "Use the tool.")
    assert carries(second, "celsius") and carries(second, ASK)  # the tool's output and the question went back


@pytest.mark.parametrize("model", MODELS)
def test_streamed_run_with_tool(base_url: str, upstream: FakeUpstream, model: str) -> None:
    script(upstream, model, Reply(tool_calls=[CALL_WEATHER]), json_reply())

    async def main(make: Callable[[str], OpenAIResponsesModel]) -> tuple[Any, list[str]]:
        result = Runner.run_streamed(weather_agent(make(model)), ASK)
        kinds = [event.item.type async for event in result.stream_events() if event.type == "run_item_stream_event"]
        return result.final_output, kinds

    output, kinds = run(base_url, main)
    assert output == Weather(city="Paris", celsius=21)
    assert "tool_call_item" in kinds and "tool_call_output_item" in kinds
    assert all(r.stream for r in generation_requests(upstream))


def test_conversation_continued_on_another_provider(base_url: str, upstream: FakeUpstream) -> None:
    """A run on OpenAI, then the next run with ``previous_response_id`` on Anthropic and on Gemini."""
    script(upstream, "gpt-4o-mini", Reply(text="Noted: your name is Ada."))
    script(upstream, "claude-3-5-sonnet-20241022", Reply(text="Your name is Ada."))
    script(upstream, "gemini-2.0-flash", Reply(text="Still Ada."))

    async def main(make: Callable[[str], OpenAIResponsesModel]) -> list[str]:
        first = await Runner.run(Agent(name="a", model=make("gpt-4o-mini")), "My name is Ada.")
        second = await Runner.run(
            Agent(name="b", model=make("claude-3-5-sonnet-20241022")),
            "What is my name?",
            previous_response_id=first.last_response_id,
        )
        third = await Runner.run(
            Agent(name="c", model=make("gemini-2.0-flash")), "And now?", previous_response_id=second.last_response_id
        )
        return [first.final_output, second.final_output, third.final_output]

    assert run(base_url, main) == ["Noted: your name is Ada.", "Your name is Ada.", "Still Ada."]
    _, to_claude, to_gemini = generation_requests(upstream)
    assert carries(to_claude, "My name is Ada.") and carries(to_claude, "Noted: your name is Ada.")
    assert carries(to_gemini, "Your name is Ada.") and carries(to_gemini, "My name is Ada.")
