"""instructor (``instructor.from_openai``) against a real ``switchyard serve``, to every provider kind: JSON
mode (``response_format: json_object``), TOOLS mode (one forced tool) and a streamed partial object (TOOLS
mode: streamed tool-call arguments). (instructor 1.17 folds TOOLS_STRICT into TOOLS: no strict flag is sent.)"""

from __future__ import annotations

from collections.abc import Iterator

import instructor
import openai
import pytest

from tests.clients.conftest import CLIENT_KEY
from tests.clients.shapes import (
    MODELS,
    PROVIDER,
    WEATHER_JSON,
    Weather,
    check_json_object,
    check_stream,
    check_tool,
    json_mode_reply,
    one,
    script,
)
from tests.fakes.scripts import Reply
from tests.fakes.server import FakeUpstream

pytestmark = pytest.mark.parametrize("model", MODELS)
ASK = [{"role": "user", "content": "Give the weather in Paris."}]
WEATHER_CALL = Reply(tool_calls=[{"name": "Weather", "arguments": WEATHER_JSON}])


@pytest.fixture
def raw(base_url: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=base_url, api_key=CLIENT_KEY, max_retries=0, timeout=30) as c:
        yield c


def test_json_mode(raw: openai.OpenAI, upstream: FakeUpstream, model: str) -> None:
    script(upstream, model, json_mode_reply(model))
    client = instructor.from_openai(raw, mode=instructor.Mode.JSON)
    weather = client.chat.completions.create(model=model, messages=ASK, response_model=Weather, max_retries=1)  # type: ignore[arg-type]
    assert weather.model_dump() == WEATHER_JSON
    (request,) = one(upstream)
    check_json_object(request)


def test_tools_mode(raw: openai.OpenAI, upstream: FakeUpstream, model: str) -> None:
    script(upstream, model, WEATHER_CALL)
    client = instructor.from_openai(raw, mode=instructor.Mode.TOOLS)
    weather = client.chat.completions.create(model=model, messages=ASK, response_model=Weather, max_retries=1)  # type: ignore[arg-type]
    assert weather.model_dump() == WEATHER_JSON
    (request,) = one(upstream)
    check_tool(request, "Weather", forced=True)


def test_streamed_partial_object(raw: openai.OpenAI, upstream: FakeUpstream, model: str) -> None:
    script(upstream, model, WEATHER_CALL)
    client = instructor.from_openai(raw, mode=instructor.Mode.TOOLS)
    partials = list(client.chat.completions.create_partial(model=model, messages=ASK, response_model=Weather))  # type: ignore[arg-type]
    if PROVIDER[model] != "google":  # Gemini streams a function call whole, the others its arguments in pieces
        assert len(partials) > 1
    assert (partials[-1].city, partials[-1].celsius) == ("Paris", 21)
    (request,) = one(upstream)
    check_stream(request)
    check_tool(request, "PartialWeather", forced=True)
