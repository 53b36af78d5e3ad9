"""The official ``openai`` SDK's Responses API against a real ``switchyard serve``, routed to every provider
kind (played by the fake upstream): ``responses.create``, ``responses.stream``, ``responses.parse`` with a
pydantic ``text_format``, a function tool loop, ``previous_response_id`` continued on other providers, and
the stored response read back and deleted."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from pydantic import BaseModel

from tests.clients.conftest import CLIENT_KEY
from tests.clients.gateway_process import GatewayProcess
from tests.clients.responses_support import carries, check_path, generation_requests, responses_gateway, tool_names
from tests.clients.shapes import MODELS, UPSTREAM_ID
from tests.fakes.scripts import Reply
from tests.fakes.server import FakeUpstream

OPENAI, ANTHROPIC, GEMINI = "gpt-4o-mini", "claude-3-5-sonnet-20241022", "gemini-2.0-flash"
TOOL: Any = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}


class Weather(BaseModel):
    city: str
    celsius: int


@pytest.fixture(scope="module")
def process(fake_upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    with responses_gateway(fake_upstream, tmp_path_factory.mktemp("responses")) as running:
        yield running


@pytest.fixture
def client(process: GatewayProcess, upstream: FakeUpstream) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=process.openai_base_url, api_key=CLIENT_KEY, max_retries=0) as c:
        yield c


def script(upstream: FakeUpstream, model: str, *replies: Reply) -> None:
    upstream.script(UPSTREAM_ID.get(model, model), *replies)


@pytest.mark.parametrize("model", MODELS)
def test_create(client: openai.OpenAI, upstream: FakeUpstream, model: str) -> None:
    script(upstream, model, Reply(text="It is sunny.", input_tokens=11, output_tokens=3))
    response = client.responses.create(model=model, input="Weather in Paris?", instructions="Be brief.")
    assert response.status == "completed" and response.output_text == "It is sunny."
    assert response.usage is not None and (response.usage.input_tokens, response.usage.output_tokens) == (11, 3)
    (request,) = generation_requests(upstream)
    check_path(request, model)
    assert carries(request, "Be brief.") and carries(request, "Weather in Paris?")


@pytest.mark.parametrize("model", MODELS)
def test_stream(client: openai.OpenAI, upstream: FakeUpstream, model: str) -> None:
    script(upstream, model, Reply(text="Sunny and warm in Paris.", chunk_delay_s=0.02))
    with client.responses.stream(model=model, input="Weather in Paris?") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == "Sunny and warm in Paris." == final.output_text
    assert len(deltas) > 1 and final.status == "completed"
    (request,) = generation_requests(upstream)
    assert request.stream is True


@pytest.mark.parametrize("model", MODELS)
def test_parse(client: openai.OpenAI, upstream: FakeUpstream, model: str) -> None:
    script(upstream, model, Reply(text=json.dumps({"city": "Paris", "celsius": 21})))
    parsed = client.responses.parse(model=model, input="Weather in Paris, as JSON", text_format=Weather)
    assert parsed.output_parsed == Weather(city="Paris", celsius=21)
    (request,) = generation_requests(upstream)
    assert carries(request, "celsius")  # the schema reached the vendor


@pytest.mark.parametrize("model", MODELS)
def test_function_tool_loop(client: openai.OpenAI, upstream: FakeUpstream, model: str) -> None:
    script(upstream, model, Reply(tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}]))
    script(upstream, model, Reply(text="21 degrees."))
    first = client.responses.create(model=model, input="Weather in Paris?", tools=[TOOL])
    (call,) = [item for item in first.output if item.type == "function_call"]
    assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "Paris"}
    output: Any = [{"type": "function_call_output", "call_id": call.call_id, "output": '{"celsius": 21}'}]
    second = client.responses.create(model=model, input=output, tools=[TOOL], previous_response_id=first.id)
    assert second.output_text == "21 degrees."
    one, two = generation_requests(upstream)
    assert tool_names(one) == ["get_weather"] == tool_names(two)
    assert carries(two, "Weather in Paris?") and carries(two, "celsius")


def test_previous_response_id_across_providers(client: openai.OpenAI, upstream: FakeUpstream) -> None:
    script(upstream, OPENAI, Reply(text="Paris is in France."))
    script(upstream, ANTHROPIC, Reply(text="Two million people."))
    script(upstream, GEMINI, Reply(text="The Seine."))
    first = client.responses.create(model=OPENAI, input="Where is Paris?")
    second = client.responses.create(model=ANTHROPIC, input="How many live there?", previous_response_id=first.id)
    with client.responses.stream(model=GEMINI, input="Its river?", previous_response_id=second.id) as stream:
        third = stream.get_final_response()
    assert (second.output_text, third.output_text) == ("Two million people.", "The Seine.")
    _, to_claude, to_gemini = generation_requests(upstream)
    assert carries(to_claude, "Paris is in France.") and carries(to_claude, "Where is Paris?")
    assert carries(to_gemini, "Two million people.") and carries(to_gemini, "Paris is in France.")
    stored = client.responses.retrieve(third.id)
    assert stored.output_text == "The Seine." and stored.previous_response_id == second.id
    items = client.responses.input_items.list(second.id)
    assert [item.type for item in items.data] == ["message"]
    client.responses.delete(first.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(first.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model=ANTHROPIC, input="again", previous_response_id=first.id)


def test_builtin_tool_refused_off_openai(client: openai.OpenAI, upstream: FakeUpstream) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.responses.create(model=ANTHROPIC, input="news?", tools=[{"type": "web_search"}])
    assert info.value.param == "tools" and generation_requests(upstream) == []
