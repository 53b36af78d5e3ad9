"""The Responses API through the official ``openai`` SDK against the gateway (over ASGI), routed to each kind
of provider (played by the fake upstream): create, stream (the SDK's own accumulator), parse, a function
tool loop, reasoning, usage mapped back; the byte-faithful pass-through to OpenAI's ``/responses``;
built-in tools only there; errors in OpenAI's shape, never a 422 or 500; a stream that breaks ends with
``response.failed``."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest
from pydantic import BaseModel

from tests.api.responses_fixtures import *  # noqa: F403  (the fixtures: responses_app, sdk, http)
from tests.api.responses_support import (
    ANTHROPIC,
    GEMINI,
    MODELS,
    OPENAI,
    TRANSLATED,
    UPSTREAM_PATH,
    sent,
    sse_events,
    upstream_id,
)
from tests.fakes.scripts import Reply
from tests.fakes.server import FakeUpstream

WEATHER_TOOL: Any = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "strict": False,
}


class Weather(BaseModel):
    city: str
    celsius: int


@pytest.mark.parametrize("model", MODELS)
async def test_create(sdk: openai.AsyncOpenAI, upstream: FakeUpstream, model: str) -> None:
    upstream.script(
        upstream_id(model), Reply(text="It is sunny.", input_tokens=12, output_tokens=3, cached_input_tokens=4)
    )
    response = await sdk.responses.create(model=model, input="Weather in Paris?", instructions="Be brief.")
    assert response.object == "response" and response.status == "completed"
    assert response.output_text == "It is sunny."
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens, response.usage.total_tokens) == (12, 3, 15)
    if model != GEMINI:  # the Gemini fake reports no cached tokens for a prompt this short
        assert response.usage.input_tokens_details.cached_tokens == 4
    if model in UPSTREAM_PATH:
        assert upstream.requests[-1].path == UPSTREAM_PATH[model]
    if model == OPENAI:  # the pass-through: the body as sent, only the model replaced
        assert sent(upstream) == {"model": OPENAI, "input": "Weather in Paris?", "instructions": "Be brief."}
    else:
        assert "Be brief." in json.dumps(sent(upstream))


async def test_passthrough_answer_is_byte_faithful(
    http: httpx.AsyncClient, upstream: FakeUpstream, responses_app: Any
) -> None:
    upstream.script(OPENAI, Reply(text="exact bytes"))
    body = {"model": OPENAI, "input": "x", "x_unknown_field": {"kept": True}, "store": False}
    answer = await http.post("/v1/responses", json=body)
    assert answer.status_code == 200 and answer.headers["x-switchyard-provider"] == "openai"
    assert sent(upstream)["x_unknown_field"] == {"kept": True}
    data = answer.json()
    assert data["id"].startswith("resp_") and data["output"][0]["content"][0]["text"] == "exact bytes"
    assert "switchyard" not in data  # the upstream's own object, not re-encoded


@pytest.mark.parametrize("model", MODELS)
async def test_stream(sdk: openai.AsyncOpenAI, upstream: FakeUpstream, model: str) -> None:
    upstream.script(upstream_id(model), Reply(text="It is sunny in Paris today.", input_tokens=9, output_tokens=6))
    async with sdk.responses.stream(model=model, input="Weather in Paris?") as stream:
        events = [event async for event in stream]
        final = await stream.get_final_response()
    numbers = [e.sequence_number for e in events]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers) and numbers[0] == 0
    kinds = [e.type for e in events]
    assert kinds[:3] == ["response.created", "response.in_progress", "response.output_item.added"]
    assert kinds[-1] == "response.completed"
    for kind in ("response.content_part.added", "response.output_text.done", "response.output_item.done"):
        assert kind in kinds
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "It is sunny in Paris today."
    assert final.output_text == "It is sunny in Paris today."
    assert final.usage is not None and (final.usage.input_tokens, final.usage.output_tokens) == (9, 6)


@pytest.mark.parametrize("model", MODELS)
async def test_function_tool_loop(sdk: openai.AsyncOpenAI, upstream: FakeUpstream, model: str) -> None:
    call = {"name": "get_weather", "arguments": {"city": "Paris"}}
    upstream.script(upstream_id(model), Reply(tool_calls=[call]), Reply(text="21 degrees in Paris."))
    first = await sdk.responses.create(model=model, input="Weather in Paris?", tools=[WEATHER_TOOL], store=False)
    calls = [item for item in first.output if item.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather" and json.loads(calls[0].arguments) == {"city": "Paris"}
    follow_up: Any = [
        {"role": "user", "content": "Weather in Paris?"},
        *[item.model_dump(exclude_none=True) for item in first.output],
        {"type": "function_call_output", "call_id": calls[0].call_id, "output": '{"celsius": 21}'},
    ]
    second = await sdk.responses.create(model=model, input=follow_up, tools=[WEATHER_TOOL], store=False)
    assert second.output_text == "21 degrees in Paris."
    carried = json.dumps(sent(upstream))
    assert '\\"celsius\\": 21' in carried or '"celsius": 21' in carried


@pytest.mark.parametrize("model", MODELS)
async def test_streamed_tool_call(sdk: openai.AsyncOpenAI, upstream: FakeUpstream, model: str) -> None:
    call = {"name": "get_weather", "arguments": {"city": "Paris, France"}}
    upstream.script(upstream_id(model), Reply(tool_calls=[call]))
    async with sdk.responses.stream(model=model, input="Weather?", tools=[WEATHER_TOOL]) as stream:
        events = [event async for event in stream]
        final = await stream.get_final_response()
    (item,) = [i for i in final.output if i.type == "function_call"]
    assert item.name == "get_weather" and json.loads(item.arguments) == {"city": "Paris, France"}
    kinds = [e.type for e in events]
    assert "response.function_call_arguments.delta" in kinds and "response.function_call_arguments.done" in kinds


@pytest.mark.parametrize("model", MODELS)
async def test_parse(sdk: openai.AsyncOpenAI, upstream: FakeUpstream, model: str) -> None:
    upstream.script(upstream_id(model), Reply(text=json.dumps({"city": "Paris", "celsius": 21})))
    parsed = await sdk.responses.parse(model=model, input="Weather in Paris as JSON", text_format=Weather)
    assert parsed.output_parsed == Weather(city="Paris", celsius=21)
    schema_sent = json.dumps(sent(upstream))
    assert '"celsius"' in schema_sent and '"city"' in schema_sent  # the schema reached the vendor, in its form


@pytest.mark.parametrize("model", [OPENAI, ANTHROPIC, GEMINI])
async def test_reasoning_summary_streamed(sdk: openai.AsyncOpenAI, upstream: FakeUpstream, model: str) -> None:
    upstream.script(upstream_id(model), Reply(text="42.", reasoning="Let me think it through."))
    reasoning: Any = {"effort": "low", "summary": "auto"}
    async with sdk.responses.stream(model=model, input="Answer?", reasoning=reasoning) as stream:
        events = [event async for event in stream]
        final = await stream.get_final_response()
    summary = "".join(e.delta for e in events if e.type == "response.reasoning_summary_text.delta")
    assert "Let me think it through." in summary.replace("\n", " ") or summary.strip() == "Let me think it through."
    assert final.output_text == "42." and [i.type for i in final.output][-1] == "message"


async def test_builtin_tool_needs_openai(http: httpx.AsyncClient, upstream: FakeUpstream) -> None:
    body = {"model": ANTHROPIC, "input": "news?", "tools": [{"type": "web_search"}]}
    answer = await http.post("/v1/responses", json=body)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["param"] == "tools" and "web_search" in error["message"] and error["type"] == "invalid_request_error"
    assert upstream.requests == []
    upstream.script(OPENAI, Reply(text="searched"))
    body = {**body, "model": OPENAI, "tools": [{"type": "web_search", "search_context_size": "low"}]}
    answer = await http.post("/v1/responses", json=body)
    assert answer.status_code == 200 and sent(upstream)["tools"] == body["tools"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": OPENAI}, "input"),
        ({"model": OPENAI, "input": "x", "temperature": 3}, "temperature"),
        ({"model": OPENAI, "input": "x", "temperature": "0.5"}, "temperature"),
        ({"model": OPENAI, "input": [{"role": "robot", "content": "x"}]}, "input.0.role"),
        ({"model": OPENAI, "input": [{"type": "function_call", "name": "f"}]}, "input.0.call_id"),
        (
            {"model": OPENAI, "input": [{"role": "user", "content": [{"type": "input_audio"}]}]},
            "input.0.content.0.type",
        ),
        ({"model": OPENAI, "input": "x", "tool_choice": {"type": "function", "name": "nope"}}, "tool_choice.name"),
        ({"model": OPENAI, "input": "x", "text": {"format": {"type": "json_schema"}}}, "text.format.schema"),
        ({"model": OPENAI, "input": "x", "tools": [{"type": "function"}]}, "tools.0.name"),
        ({"model": OPENAI, "input": "x", "max_output_tokens": 0}, "max_output_tokens"),
    ],
)
async def test_bad_requests_are_400_naming_the_field(
    http: httpx.AsyncClient, upstream: FakeUpstream, body: dict[str, Any], param: str
) -> None:
    answer = await http.post("/v1/responses", json=body)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error"
    assert upstream.requests == []


async def test_malformed_json_is_400(http: httpx.AsyncClient) -> None:
    answer = await http.post("/v1/responses", content=b"{not json")
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "invalid_json"


async def test_unknown_model_is_404(http: httpx.AsyncClient) -> None:
    answer = await http.post("/v1/responses", json={"model": "no-such-model", "input": "x"})
    assert answer.status_code == 404 and answer.json()["error"]["type"] == "model_not_found"


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("fault", [{"error_after_chunks": 2}, {"cut_after_chunks": 2}])
async def test_stream_that_breaks_ends_failed(
    http: httpx.AsyncClient, upstream: FakeUpstream, model: str, fault: dict[str, int]
) -> None:
    upstream.script(upstream_id(model), Reply(text="one two three four five", **fault))
    async with http.stream("POST", "/v1/responses", json={"model": model, "input": "x", "stream": True}) as answer:
        assert answer.status_code == 200
        text = "".join([piece async for piece in answer.aiter_text()])
    events = sse_events(text)
    kinds = [data["type"] for _, data in events]
    assert kinds[-1] == "response.failed" and "response.completed" not in kinds
    assert [name for name, _ in events][-1] == "response.failed"
    failed = events[-1][1]
    assert failed["response"]["status"] == "failed" and failed["response"]["error"]["message"]
    numbers = [data["sequence_number"] for _, data in events]
    assert numbers == list(range(len(numbers)))


async def test_upstream_failure_before_the_stream_is_a_json_error(
    http: httpx.AsyncClient, upstream: FakeUpstream
) -> None:
    upstream.script(upstream_id("compat-llama"), Reply(status=500))
    answer = await http.post("/v1/responses", json={"model": "compat-llama", "input": "x", "stream": True})
    assert answer.status_code == 502 and answer.json()["error"]["type"].startswith("upstream")


async def test_fallback_from_openai_to_anthropic(sdk: openai.AsyncOpenAI, upstream: FakeUpstream) -> None:
    upstream.script(OPENAI, Reply(status=503))
    upstream.script(ANTHROPIC, Reply(text="from claude"))
    response = await sdk.responses.with_raw_response.create(model=OPENAI, input="hello")
    assert response.headers["x-switchyard-provider"] == "anthropic"
    assert response.parse().output_text == "from claude"
    assert [r.path for r in upstream.requests] == ["/v1/responses", "/v1/messages"]


@pytest.mark.parametrize("model", TRANSLATED)
async def test_truncated_is_incomplete(sdk: openai.AsyncOpenAI, upstream: FakeUpstream, model: str) -> None:
    upstream.script(upstream_id(model), Reply(text="cut short", truncated=True))
    response = await sdk.responses.create(model=model, input="x", max_output_tokens=5)
    assert response.status == "incomplete" and response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"


def _counter(text: str, name: str, **labels: str) -> float:
    """The value of one series of ``/metrics`` (0 when absent)."""
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_metrics_count_responses_like_any_request(http: httpx.AsyncClient, upstream: FakeUpstream) -> None:
    """The same pipeline: tokens by model and the fallback are counted as for chat completions."""
    before = (await http.get("/metrics")).text
    upstream.script(OPENAI, Reply(status=503))
    upstream.script(ANTHROPIC, Reply(text="counted", input_tokens=7, output_tokens=2))
    assert (await http.post("/v1/responses", json={"model": OPENAI, "input": "x"})).status_code == 200
    after = (await http.get("/metrics")).text
    tokens = {"model": ANTHROPIC, "direction": "input"}
    assert (
        _counter(after, "switchyard_tokens_total", **tokens) - _counter(before, "switchyard_tokens_total", **tokens)
        == 7
    )
    moved = {"from_model": OPENAI, "to_model": ANTHROPIC}
    assert (
        _counter(after, "switchyard_fallbacks_total", **moved) - _counter(before, "switchyard_fallbacks_total", **moved)
        == 1
    )


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input"),
        ({"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file-1"}]}]}, "input_image"),
        ({"tool_choice": {"type": "web_search_preview"}}, "tool_choice"),
        ({"background": True}, "background"),
    ],
)
async def test_openai_only_inputs(
    http: httpx.AsyncClient, upstream: FakeUpstream, extra: dict[str, Any], param: str
) -> None:
    body = {"model": GEMINI, "input": "x", **extra}
    answer = await http.post("/v1/responses", json=body)
    assert answer.status_code == 400 and answer.json()["error"]["param"] == param
    assert "only by an OpenAI upstream" in answer.json()["error"]["message"]
    upstream.script(OPENAI, Reply(text="fine"))
    assert (await http.post("/v1/responses", json={**body, "model": OPENAI})).status_code == 200
    assert {k: sent(upstream)[k] for k in extra} == extra  # as the client sent it


async def test_routing_keeps_builtin_tools_on_openai(http: httpx.AsyncClient, upstream: FakeUpstream) -> None:
    upstream.script("*", Reply(text="searched"))
    body = {"model": "cheapest", "input": "latest news?", "tools": [{"type": "web_search"}]}
    answer = await http.post("/v1/responses", json=body)
    assert answer.status_code == 200 and answer.headers["x-switchyard-provider"] == "openai"
    assert upstream.requests[-1].path == "/v1/responses"
