"""litellm as a client (``litellm.completion(model="openai/<name>", api_base=<gateway>)``) against a real
``switchyard serve``, to every provider kind: chat, stream, a pydantic ``response_format`` (json_schema),
tools (streamed too), an image and ``reasoning_effort``."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no download of the price map at import
import litellm

from tests.clients.conftest import CLIENT_KEY
from tests.clients.shapes import (
    CALL_WEATHER,
    MODELS,
    PNG_URL,
    REASONING,
    WEATHER_JSON,
    Weather,
    check_image,
    check_json_schema,
    check_reasoning,
    check_stream,
    check_tool,
    check_vendor,
    json_reply,
    last,
    one,
    script,
)
from tests.fakes.scripts import Reply
from tests.fakes.server import FakeUpstream

litellm.telemetry = False
pytestmark = [
    pytest.mark.parametrize("model", MODELS),
    # pydantic warns about litellm's own TypedDicts when litellm first builds them (not our code)
    pytest.mark.filterwarnings("ignore:Item.*ReadOnly:UserWarning", "ignore:Items.*ReadOnly:UserWarning"),
]
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]
WEATHER_TOOL = {
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


def complete(base_url: str, model: str, **options: Any) -> Any:
    return litellm.completion(model=f"openai/{model}", api_base=base_url, api_key=CLIENT_KEY, num_retries=0, **options)


def test_chat(base_url: str, upstream: FakeUpstream, model: str) -> None:
    script(upstream, model, Reply(text="Sunny, 21 degrees.", input_tokens=7, output_tokens=3))
    response = complete(base_url, model, messages=ASK)
    assert response.choices[0].message.content == "Sunny, 21 degrees."
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (7, 3)
    (request,) = one(upstream)
    check_vendor(request, model)


def test_stream(base_url: str, upstream: FakeUpstream, model: str) -> None:
    script(upstream, model, Reply(text="Sunny and warm today."))
    chunks = list(complete(base_url, model, messages=ASK, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Sunny and warm today."
    check_stream(last(upstream))


def test_response_format_pydantic(base_url: str, upstream: FakeUpstream, model: str) -> None:
    script(upstream, model, json_reply())
    response = complete(base_url, model, messages=ASK, response_format=Weather)
    assert json.loads(response.choices[0].message.content) == WEATHER_JSON
    check_json_schema(last(upstream))


@pytest.mark.parametrize("stream", [False, True])
def test_tools(base_url: str, upstream: FakeUpstream, model: str, stream: bool) -> None:
    script(upstream, model, Reply(tool_calls=[CALL_WEATHER]))
    options: dict[str, Any] = {"tools": [WEATHER_TOOL], "parallel_tool_calls": False, "stream": stream}
    response = complete(base_url, model, messages=ASK, **options)
    if stream:
        response = litellm.stream_chunk_builder(list(response), messages=ASK)
    (call,) = response.choices[0].message.tool_calls
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Paris"}
    check_tool(last(upstream), "get_weather", strict=True, parallel=False)


def test_image_input(base_url: str, upstream: FakeUpstream, model: str) -> None:
    script(upstream, model, Reply(text="A single pixel."))
    content = [{"type": "text", "text": "What is in this image?"}, {"type": "image_url", "image_url": {"url": PNG_URL}}]
    response = complete(base_url, model, messages=[{"role": "user", "content": content}])
    assert response.choices[0].message.content == "A single pixel."
    check_image(last(upstream))


def test_reasoning_effort(base_url: str, upstream: FakeUpstream, model: str) -> None:
    script(upstream, model, Reply(text="4", reasoning="2 + 2 = 4"))
    # litellm checks its own model table: gpt-4o-mini is listed without reasoning, so allow it explicitly
    options: dict[str, Any] = {"reasoning_effort": "low", "allowed_openai_params": ["reasoning_effort"]}
    ask = [{"role": "user", "content": "What is 2 + 2?"}]
    if model not in REASONING:
        with pytest.raises(litellm.BadRequestError, match="reasoning_effort"):
            complete(base_url, model, messages=ask, **options)
        assert upstream.requests == []
        return
    response = complete(base_url, model, messages=ask, **options)
    assert response.choices[0].message.content == "4"
    check_reasoning(last(upstream), "low")
