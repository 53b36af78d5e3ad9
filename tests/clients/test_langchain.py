"""LangChain ``ChatOpenAI`` (langchain-openai) against a real ``switchyard serve``, to every provider kind:
invoke, stream, ``bind_tools`` with a tool loop (and streamed), ``with_structured_output`` in its three
methods, an image, ``reasoning_effort``."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from langchain_core.messages import AIMessageChunk, BaseMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI

from tests.clients.conftest import CLIENT_KEY
from tests.clients.shapes import (
    CALL_WEATHER,
    MODELS,
    PNG_URL,
    REASONING,
    Weather,
    check_image,
    check_json_object,
    check_json_schema,
    check_reasoning,
    check_stream,
    check_tool,
    check_tool_result,
    check_vendor,
    json_mode_reply,
    json_reply,
    last,
    one,
    script,
)
from tests.fakes.scripts import Reply
from tests.fakes.server import FakeUpstream

pytestmark = pytest.mark.parametrize("model", MODELS)
ASK = "What is the weather in Paris?"


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return json.dumps({"city": city, "celsius": 21})


def chat(base_url: str, model: str, **options: Any) -> ChatOpenAI:
    # use_responses_api=False: the Chat Completions protocol (the gateway's /v1/chat/completions)
    return ChatOpenAI(
        model=model, base_url=base_url, api_key=CLIENT_KEY, max_retries=0, use_responses_api=False, **options
    )


def test_invoke(base_url: str, upstream: FakeUpstream, model: str) -> None:
    script(upstream, model, Reply(text="Sunny, 21 degrees.", input_tokens=7, output_tokens=3))
    answer = chat(base_url, model, temperature=0).invoke(ASK)
    assert answer.content == "Sunny, 21 degrees."
    assert answer.usage_metadata is not None and answer.usage_metadata["input_tokens"] == 7
    (request,) = one(upstream)
    check_vendor(request, model)


def test_stream(base_url: str, upstream: FakeUpstream, model: str) -> None:
    script(upstream, model, Reply(text="Sunny and warm today.", input_tokens=7, output_tokens=4))
    chunks = list(chat(base_url, model, stream_usage=True).stream(ASK))
    assert "".join(str(c.content) for c in chunks) == "Sunny and warm today."
    total = sum(chunks[1:], chunks[0])
    assert isinstance(total, AIMessageChunk) and total.usage_metadata is not None
    assert (total.usage_metadata["input_tokens"], total.usage_metadata["output_tokens"]) == (7, 4)
    check_stream(last(upstream))


def test_bind_tools_tool_loop(base_url: str, upstream: FakeUpstream, model: str) -> None:
    script(upstream, model, Reply(tool_calls=[CALL_WEATHER]), Reply(text="It is 21 degrees in Paris."))
    llm = chat(base_url, model).bind_tools([get_weather], strict=True, parallel_tool_calls=False)
    messages: list[BaseMessage] = [HumanMessage(ASK)]
    first = llm.invoke(messages)
    assert [c["name"] for c in first.tool_calls] == ["get_weather"]
    assert first.tool_calls[0]["args"] == {"city": "Paris"}
    check_tool(last(upstream), "get_weather", strict=True, parallel=False)
    messages.append(first)
    for call in first.tool_calls:
        messages.append(ToolMessage(get_weather.invoke(call["args"]), tool_call_id=call["id"]))
    second = llm.invoke(messages)
    assert second.content == "It is 21 degrees in Paris."
    check_tool_result(last(upstream), "get_weather", "celsius")


def test_streamed_tool_calls(base_url: str, upstream: FakeUpstream, model: str) -> None:
    script(upstream, model, Reply(tool_calls=[CALL_WEATHER]))
    chunks = list(chat(base_url, model).bind_tools([get_weather]).stream(ASK))
    total = sum(chunks[1:], chunks[0])
    assert isinstance(total, AIMessageChunk)
    assert [(c["name"], c["args"]) for c in total.tool_calls] == [("get_weather", {"city": "Paris"})]
    assert total.response_metadata.get("finish_reason") == "tool_calls"
    check_stream(last(upstream))


@pytest.mark.parametrize("method", ["json_schema", "function_calling", "json_mode"])
def test_with_structured_output(base_url: str, upstream: FakeUpstream, model: str, method: str) -> None:
    if method == "function_calling":
        script(upstream, model, Reply(tool_calls=[{"name": "Weather", "arguments": {"city": "Paris", "celsius": 21}}]))
    elif method == "json_mode":
        script(upstream, model, json_mode_reply(model))
    else:
        script(upstream, model, json_reply())
    prompt = "Give the weather in Paris as JSON with keys city and celsius."
    structured = chat(base_url, model).with_structured_output(Weather, method=method)  # type: ignore[arg-type]
    assert structured.invoke(prompt) == Weather(city="Paris", celsius=21)
    request = last(upstream)
    if method == "json_schema":
        check_json_schema(request)
    elif method == "json_mode":
        check_json_object(request)
    else:  # a forced tool and parallel_tool_calls: false
        check_tool(request, "Weather", parallel=False, forced=True)


def test_image_input(base_url: str, upstream: FakeUpstream, model: str) -> None:
    script(upstream, model, Reply(text="A single pixel."))
    image = {"type": "image_url", "image_url": {"url": PNG_URL}}
    message = HumanMessage(content=[{"type": "text", "text": "What is in this image?"}, image])
    assert chat(base_url, model).invoke([message]).content == "A single pixel."
    check_image(last(upstream))


def test_reasoning_effort(base_url: str, upstream: FakeUpstream, model: str) -> None:
    script(upstream, model, Reply(text="4", reasoning="2 + 2 = 4", reasoning_tokens=5))
    llm = chat(base_url, model, reasoning_effort="low")
    if model not in REASONING:
        with pytest.raises(openai.BadRequestError, match="reasoning_effort"):
            llm.invoke("What is 2 + 2?")
        assert upstream.requests == []
        return
    answer = llm.invoke("What is 2 + 2?")
    assert answer.content == "4"
    assert answer.usage_metadata is not None
    assert answer.usage_metadata.get("output_token_details", {}).get("reasoning") == 5
    check_reasoning(last(upstream), "low")
