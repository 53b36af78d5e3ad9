"""LlamaIndex (llama-index-llms-openai ``OpenAI``; ``OpenAILike`` for model names outside OpenAI's list)
against a real ``switchyard serve``, to every provider kind: chat, stream, tool calls (a loop, and
streamed), ``structured_predict``, an image, reasoning effort (``additional_kwargs``: LlamaIndex sends its
own ``reasoning_effort`` field only to o-series model names)."""

from __future__ import annotations

import base64
import json
from typing import Any

import openai
import pytest
from llama_index.core.base.llms.types import ChatMessage, ImageBlock, MessageRole, TextBlock
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.prompts import PromptTemplate
from llama_index.core.tools import FunctionTool
from llama_index.llms.openai import OpenAI
from llama_index.llms.openai_like import OpenAILike

from tests.clients.conftest import CLIENT_KEY
from tests.clients.shapes import (
    CALL_WEATHER,
    MODELS,
    PNG,
    REASONING,
    Weather,
    check_image,
    check_json_schema,
    check_reasoning,
    check_stream,
    check_tool,
    check_tool_result,
    check_vendor,
    json_reply,
    last,
    one,
    script,
)
from tests.fakes.scripts import Reply
from tests.fakes.server import FakeUpstream

pytestmark = pytest.mark.parametrize("model", MODELS)
ASK = "What is the weather in Paris?"


def get_weather(city: str) -> str:
    """The weather in a city."""
    return json.dumps({"city": city, "celsius": 21})


WEATHER_TOOL = FunctionTool.from_defaults(fn=get_weather)


def llm(base_url: str, model: str, **options: Any) -> FunctionCallingLLM:
    if model == "gpt-4o-mini":  # a name OpenAI's class knows
        return OpenAI(model=model, api_base=base_url, api_key=CLIENT_KEY, max_retries=0, **options)
    return OpenAILike(
        model=model,
        api_base=base_url,
        api_key=CLIENT_KEY,
        max_retries=0,
        is_chat_model=True,
        is_function_calling_model=True,
        context_window=128_000,
        **options,
    )


def test_chat(base_url: str, upstream: FakeUpstream, model: str) -> None:
    script(upstream, model, Reply(text="Sunny, 21 degrees."))
    response = llm(base_url, model).chat([ChatMessage(role=MessageRole.USER, content=ASK)])
    assert response.message.content == "Sunny, 21 degrees."
    (request,) = one(upstream)
    check_vendor(request, model)


def test_stream_chat(base_url: str, upstream: FakeUpstream, model: str) -> None:
    script(upstream, model, Reply(text="Sunny and warm today."))
    deltas = [r.delta or "" for r in llm(base_url, model).stream_chat([ChatMessage(role="user", content=ASK)])]
    assert "".join(deltas) == "Sunny and warm today."
    check_stream(last(upstream))


def test_tool_loop(base_url: str, upstream: FakeUpstream, model: str) -> None:
    script(upstream, model, Reply(tool_calls=[CALL_WEATHER]), Reply(text="It is 21 degrees in Paris."))
    client = llm(base_url, model)
    history = [ChatMessage(role="user", content=ASK)]
    response = client.chat_with_tools([WEATHER_TOOL], chat_history=list(history), strict=True)
    (call,) = client.get_tool_calls_from_response(response)
    assert (call.tool_name, call.tool_kwargs) == ("get_weather", {"city": "Paris"})
    check_tool(last(upstream), "get_weather", strict=True, parallel=False)
    history += [
        response.message,
        ChatMessage(
            role="tool", content=get_weather(**call.tool_kwargs), additional_kwargs={"tool_call_id": call.tool_id}
        ),
    ]
    final = client.chat_with_tools([WEATHER_TOOL], chat_history=history)
    assert final.message.content == "It is 21 degrees in Paris."
    check_tool_result(last(upstream), "get_weather", "celsius")


def test_streamed_tool_calls(base_url: str, upstream: FakeUpstream, model: str) -> None:
    script(upstream, model, Reply(tool_calls=[CALL_WEATHER]))
    client = llm(base_url, model)
    responses = list(client.stream_chat_with_tools([WEATHER_TOOL], user_msg=ASK))
    (call,) = client.get_tool_calls_from_response(responses[-1])
    assert (call.tool_name, call.tool_kwargs) == ("get_weather", {"city": "Paris"})
    check_stream(last(upstream))


def test_structured_predict(base_url: str, upstream: FakeUpstream, model: str) -> None:
    # OpenAI's class uses structured outputs (json_schema) for the models it knows to have them; OpenAILike
    # calls one forced tool without parallel calls (FunctionCallingProgram)
    native = model == "gpt-4o-mini"
    arguments = {"city": "Paris", "celsius": 21}
    script(upstream, model, json_reply() if native else Reply(tool_calls=[{"name": "Weather", "arguments": arguments}]))
    prompt = PromptTemplate("Give the weather in {city}.")
    result = llm(base_url, model).structured_predict(Weather, prompt, city="Paris")
    assert result == Weather(city="Paris", celsius=21)
    if native:
        check_json_schema(last(upstream))
    else:
        check_tool(last(upstream), "Weather", parallel=False, forced=True)


def test_image_input(base_url: str, upstream: FakeUpstream, model: str) -> None:
    script(upstream, model, Reply(text="A single pixel."))
    message = ChatMessage(
        role="user",
        blocks=[
            TextBlock(text="What is in this image?"),
            ImageBlock(image=base64.b64decode(PNG), image_mimetype="image/png"),
        ],
    )
    assert llm(base_url, model).chat([message]).message.content == "A single pixel."
    check_image(last(upstream))


def test_reasoning_effort(base_url: str, upstream: FakeUpstream, model: str) -> None:
    script(upstream, model, Reply(text="4", reasoning="2 + 2 = 4"))
    client = llm(base_url, model, additional_kwargs={"reasoning_effort": "low"})
    if model not in REASONING:
        with pytest.raises(openai.BadRequestError, match="reasoning_effort"):
            client.chat([ChatMessage(role="user", content="What is 2 + 2?")])
        assert upstream.requests == []
        return
    assert client.chat([ChatMessage(role="user", content="What is 2 + 2?")]).message.content == "4"
    check_reasoning(last(upstream), "low")
