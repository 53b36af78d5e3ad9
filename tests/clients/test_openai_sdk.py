"""The official ``openai`` Python SDK against a real ``switchyard serve``, to every provider kind."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.clients.conftest import CLIENT_KEY
from tests.clients.shapes import (
    CALL_WEATHER,
    MODELS,
    PNG_URL,
    PROVIDER,
    REASONING,
    UPSTREAM_ID,
    Weather,
    body,
    check_image,
    check_json_schema,
    check_reasoning,
    check_stream,
    check_tool,
    check_tool_result,
    check_vendor,
    json_reply,
    last,
    noise_png,
    one,
    script,
)
from tests.fakes.scripts import Reply
from tests.fakes.server import FakeUpstream

ASK: Any = [{"role": "user", "content": "What is the weather in Paris?"}]
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
        "strict": True,
    },
}

pytestmark = pytest.mark.parametrize("model", MODELS)


@pytest.fixture
def client(base_url: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=base_url, api_key=CLIENT_KEY, max_retries=0, timeout=30) as c:
        yield c


def test_plain_chat(client: openai.OpenAI, upstream: FakeUpstream, model: str) -> None:
    script(upstream, model, Reply(text="Sunny, 21 degrees.", input_tokens=7, output_tokens=3))
    completion = client.chat.completions.create(model=model, messages=ASK, max_tokens=50, temperature=0.2)
    assert completion.choices[0].message.content == "Sunny, 21 degrees."
    assert completion.choices[0].finish_reason == "stop"
    # a pass-through answer names the upstream's model as the upstream sent it (compat-llama -> llama3)
    assert completion.model in (model, UPSTREAM_ID.get(model))
    assert completion.usage is not None and (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (
        7,
        3,
    )
    (request,) = one(upstream)
    check_vendor(request, model)
    assert "What is the weather in Paris?" in json.dumps(body(request))


def test_streaming_with_usage(client: openai.OpenAI, upstream: FakeUpstream, model: str) -> None:
    script(upstream, model, Reply(text="Sunny and warm today.", input_tokens=7, output_tokens=4))
    stream = client.chat.completions.create(
        model=model, messages=ASK, stream=True, stream_options={"include_usage": True}
    )
    text, finish, usage = "", [], None
    for chunk in stream:
        for choice in chunk.choices:
            text += choice.delta.content or ""
            if choice.finish_reason:
                finish.append(choice.finish_reason)
        usage = chunk.usage or usage
    assert text == "Sunny and warm today."
    assert finish == ["stop"]
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (7, 4)
    check_stream(last(upstream))


def test_parse_structured_output(client: openai.OpenAI, upstream: FakeUpstream, model: str) -> None:
    script(upstream, model, json_reply())
    completion = client.chat.completions.parse(model=model, messages=ASK, response_format=Weather)
    assert completion.choices[0].message.parsed == Weather(city="Paris", celsius=21)
    check_json_schema(last(upstream))


def test_strict_tool_loop_without_parallel_calls(client: openai.OpenAI, upstream: FakeUpstream, model: str) -> None:
    script(upstream, model, Reply(tool_calls=[CALL_WEATHER]), Reply(text="It is 21 degrees in Paris."))
    first = client.chat.completions.create(
        model=model, messages=ASK, tools=[WEATHER_TOOL], tool_choice="auto", parallel_tool_calls=False
    )
    message = first.choices[0].message
    assert first.choices[0].finish_reason == "tool_calls"
    (call,) = message.tool_calls or []
    assert call.type == "function" and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    check_tool(last(upstream), "get_weather", strict=True, parallel=False)
    history: Any = [
        *ASK,
        message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": '{"celsius": 21}'},
    ]
    second = client.chat.completions.create(model=model, messages=history, tools=[WEATHER_TOOL])
    assert second.choices[0].message.content == "It is 21 degrees in Paris."
    check_tool_result(last(upstream), "get_weather", "celsius")


def test_streamed_tool_calls(client: openai.OpenAI, upstream: FakeUpstream, model: str) -> None:
    script(upstream, model, Reply(tool_calls=[CALL_WEATHER]))
    stream = client.chat.completions.create(model=model, messages=ASK, tools=[WEATHER_TOOL], stream=True)
    names, arguments, ids, finish = [], "", set(), []
    for chunk in stream:
        for choice in chunk.choices:
            for delta in choice.delta.tool_calls or ():
                if delta.id:
                    ids.add(delta.id)
                if delta.function and delta.function.name:
                    names.append(delta.function.name)
                arguments += (delta.function.arguments or "") if delta.function else ""
            if choice.finish_reason:
                finish.append(choice.finish_reason)
    assert names == ["get_weather"] and len(ids) == 1
    assert json.loads(arguments) == {"city": "Paris"}
    assert finish == ["tool_calls"]
    check_stream(last(upstream))
    check_tool(last(upstream), "get_weather", strict=True)


def test_streamed_parse_helper(client: openai.OpenAI, upstream: FakeUpstream, model: str) -> None:
    script(upstream, model, json_reply())
    with client.chat.completions.stream(model=model, messages=ASK, response_format=Weather) as stream:
        for _ in stream:
            pass
        final = stream.get_final_completion()
    assert final.choices[0].message.parsed == Weather(city="Paris", celsius=21)
    check_json_schema(last(upstream))


def test_data_url_image(client: openai.OpenAI, upstream: FakeUpstream, model: str) -> None:
    script(upstream, model, Reply(text="A single pixel."))
    content: Any = [
        {"type": "text", "text": "What is in this image?"},
        {"type": "image_url", "image_url": {"url": PNG_URL, "detail": "low"}},
    ]
    completion = client.chat.completions.create(model=model, messages=[{"role": "user", "content": content}])
    assert completion.choices[0].message.content == "A single pixel."
    check_image(last(upstream))


def test_reasoning_effort(client: openai.OpenAI, upstream: FakeUpstream, model: str) -> None:
    script(upstream, model, Reply(text="4", reasoning="2 + 2 = 4", reasoning_tokens=5))
    if model not in REASONING:  # the target cannot honour it: a 400 naming it, before any call
        with pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(model=model, messages=ASK, reasoning_effort="low")
        assert caught.value.param == "reasoning_effort" or "reasoning_effort" in caught.value.message
        assert upstream.requests == []
        return
    completion = client.chat.completions.create(model=model, messages=ASK, reasoning_effort="low")
    assert completion.choices[0].message.content == "4"
    usage = completion.usage
    assert usage is not None and usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == 5
    check_reasoning(last(upstream), "low")


def test_photo_sized_image(client: openai.OpenAI, upstream: FakeUpstream, model: str) -> None:
    """A data: URL image of an ordinary photo's size (2 MB base64); vendors take far more per request
    (OpenAI 50 MB, Anthropic 32 MB, Gemini 20 MB inline)."""
    data = base64.b64encode(noise_png(800, 600)).decode()
    assert len(data) > 1_900_000
    script(upstream, model, Reply(text="Noise."))
    content: Any = [
        {"type": "text", "text": "What is in this photo?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{data}"}},
    ]
    completion = client.chat.completions.create(model=model, messages=[{"role": "user", "content": content}])
    assert completion.choices[0].message.content == "Noise."
    check_image(last(upstream), data)


def test_logprobs(client: openai.OpenAI, upstream: FakeUpstream, model: str) -> None:
    """``logprobs`` come back in OpenAI's shape (``logprobs.content[].token/logprob/top_logprobs``) from every
    vendor that has them, streamed and not; Anthropic has none: a 400 before any call."""
    options: Any = {"logprobs": True, "top_logprobs": 2}
    script(upstream, model, Reply(text="Sunny and warm."), Reply(text="Sunny and warm."))
    if PROVIDER[model] == "anthropic":
        with pytest.raises(openai.BadRequestError, match="logprobs"):
            client.chat.completions.create(model=model, messages=ASK, **options)
        assert upstream.requests == []
        return
    completion = client.chat.completions.create(model=model, messages=ASK, **options)
    logprobs = completion.choices[0].logprobs
    assert logprobs is not None and logprobs.content, logprobs
    assert "".join(t.token for t in logprobs.content) == "Sunny and warm."
    assert all(len(t.top_logprobs) == 2 and t.logprob <= 0 for t in logprobs.content)
    streamed = [
        token
        for chunk in client.chat.completions.create(model=model, messages=ASK, stream=True, **options)
        for choice in chunk.choices
        for token in ((choice.logprobs.content or []) if choice.logprobs else [])
    ]
    assert "".join(t.token for t in streamed) == "Sunny and warm."


def test_streamed_n_choices(client: openai.OpenAI, upstream: FakeUpstream, model: str) -> None:
    """``n: 2`` streamed: each choice's deltas and its own finish reason (OpenAI closes every choice);
    Anthropic has no native ``n`` and a stream cannot carry parallel calls: a 400 before any call."""
    script(upstream, model, Reply(text="Sunny and warm."))
    if PROVIDER[model] == "anthropic":
        with pytest.raises(openai.BadRequestError, match="n"):
            client.chat.completions.create(model=model, messages=ASK, n=2, stream=True)
        assert upstream.requests == []
        return
    texts: dict[int, str] = {}
    finish: dict[int, str] = {}
    for chunk in client.chat.completions.create(model=model, messages=ASK, n=2, stream=True):
        for choice in chunk.choices:
            texts[choice.index] = texts.get(choice.index, "") + (choice.delta.content or "")
            if choice.finish_reason:
                finish[choice.index] = choice.finish_reason
    assert texts == {0: "Sunny and warm.", 1: "Sunny and warm."}
    assert finish == {0: "stop", 1: "stop"}
