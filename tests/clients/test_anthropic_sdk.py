"""The official ``anthropic`` Python SDK against a real ``switchyard serve`` (``/v1/messages``), routed to
every provider kind: create, stream, a tools round trip, thinking, images, token counting and the model
listing; a recorded Claude Code request streamed through the translated providers; and the pass-through
to an Anthropic upstream, whose body is the client's but for the model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import orjson
import pytest

from app.providers.anthropic_thinking import open_signature
from app.schemas.anthropic_ids import model_of_tool_id
from tests.clients.conftest import CLIENT_KEY
from tests.clients.gateway_process import GatewayProcess
from tests.clients.shapes import (
    CALL_WEATHER,
    MODELS,
    PNG,
    PROVIDER,
    body,
    check_image,
    check_stream,
    check_tool_result,
    check_vendor,
    last,
    one,
    script,
)
from tests.fakes.scripts import Reply
from tests.fakes.server import FakeUpstream

ANTHROPIC = "claude-3-5-sonnet-20241022"
TRANSLATED = [m for m in MODELS if PROVIDER[m] != "anthropic"]
ASK: Any = [{"role": "user", "content": "What is the weather in Paris?"}]
WEATHER: Any = {
    "name": "get_weather",
    "description": "The weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
THINKING: Any = {"type": "enabled", "budget_tokens": 1024}
RECORDED = json.loads((Path(__file__).parents[1] / "api" / "data" / "claude_code_request.json").read_text())


@pytest.fixture
def client(gateway: GatewayProcess, upstream: FakeUpstream) -> Iterator[anthropic.Anthropic]:
    """The SDK as Claude Code is pointed at the gateway (``ANTHROPIC_BASE_URL``: no ``/v1``)."""
    with anthropic.Anthropic(base_url=gateway.base_url, api_key=CLIENT_KEY, max_retries=0, timeout=30) as c:
        yield c


def sse(text: str) -> list[tuple[str, dict[str, Any]]]:
    """The (event name, data) pairs of an SSE body."""
    out = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        out.append((lines["event"], json.loads(lines["data"])))
    return out


@pytest.mark.parametrize("model", MODELS)
def test_create(client: anthropic.Anthropic, upstream: FakeUpstream, model: str) -> None:
    script(upstream, model, Reply(text="Sunny, 21 degrees.", input_tokens=7, output_tokens=3))
    message = client.messages.create(model=model, max_tokens=50, messages=ASK, stop_sequences=["END"])
    assert [b.type for b in message.content] == ["text"] and message.content[0].text == "Sunny, 21 degrees."  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn" and (message.usage.input_tokens, message.usage.output_tokens) == (7, 3)
    (request,) = one(upstream)
    check_vendor(request, model)
    assert "What is the weather in Paris?" in json.dumps(body(request))


@pytest.mark.parametrize("model", MODELS)
def test_stream(client: anthropic.Anthropic, upstream: FakeUpstream, model: str) -> None:
    script(
        upstream, model, Reply(text="It is sunny in Paris today.", input_tokens=9, output_tokens=6, chunk_delay_s=0.02)
    )
    with client.messages.stream(model=model, max_tokens=50, messages=ASK) as stream:
        texts = list(stream.text_stream)
        final = stream.get_final_message()
    assert "".join(texts) == "It is sunny in Paris today." and len(texts) > 1
    assert final.stop_reason == "end_turn" and final.usage.output_tokens == 6
    check_stream(last(upstream))


@pytest.mark.parametrize("model", MODELS)
def test_stream_is_anthropics_event_sequence(gateway: GatewayProcess, upstream: FakeUpstream, model: str) -> None:
    script(upstream, model, Reply(text="Sunny.", tool_calls=[CALL_WEATHER]))
    request = {"model": model, "max_tokens": 50, "messages": ASK, "tools": [WEATHER], "stream": True}
    headers = {"anthropic-version": "2023-06-01", "x-api-key": CLIENT_KEY}
    response = httpx.post(f"{gateway.base_url}/v1/messages", json=request, headers=headers, timeout=30)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    names = [name for name, _ in sse(response.text)]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-2:] == ["message_delta", "message_stop"] and "error" not in names
    assert names.count("content_block_start") == names.count("content_block_stop") == 2


@pytest.mark.parametrize("model", MODELS)
def test_tools_round_trip(client: anthropic.Anthropic, upstream: FakeUpstream, model: str) -> None:
    script(upstream, model, Reply(tool_calls=[CALL_WEATHER]))
    first = client.messages.create(model=model, max_tokens=100, messages=ASK, tools=[WEATHER])
    assert first.stop_reason == "tool_use"
    (use,) = [b for b in first.content if b.type == "tool_use"]
    assert use.name == "get_weather" and use.input == {"city": "Paris"}
    if PROVIDER[model] != "anthropic":
        assert model_of_tool_id(use.id) == model  # the id names the model that made the call
    script(upstream, model, Reply(text="21 degrees and sunny."))
    history: Any = [
        *ASK,
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "21C, sunny"}]},
    ]
    with client.messages.stream(model=model, max_tokens=100, messages=history, tools=[WEATHER]) as stream:
        second = stream.get_final_message()
    assert second.content[0].text == "21 degrees and sunny."  # type: ignore[union-attr]
    check_tool_result(last(upstream), "get_weather", "21C, sunny")


@pytest.mark.parametrize("model", MODELS)
def test_thinking(client: anthropic.Anthropic, upstream: FakeUpstream, model: str) -> None:
    script(upstream, model, Reply(text="Paris.", reasoning="The user asks about Paris."))
    message = client.messages.create(model=model, max_tokens=2048, messages=ASK, thinking=THINKING)
    assert [b.type for b in message.content] == ["thinking", "text"]
    block = message.content[0]
    assert block.thinking == "The user asks about Paris."  # type: ignore[union-attr]
    foreign = open_signature(block.signature)  # type: ignore[union-attr]
    if PROVIDER[model] == "anthropic":
        assert foreign is None and block.signature  # type: ignore[union-attr]  # Anthropic's own
    else:
        assert foreign is not None and foreign.provider == PROVIDER[model]  # never an empty signature
    script(upstream, model, Reply(text="Paris.", reasoning="Thinking hard."))
    with client.messages.stream(model=model, max_tokens=2048, messages=ASK, thinking=THINKING) as stream:
        final = stream.get_final_message()
    assert [b.type for b in final.content] == ["thinking", "text"]
    history: Any = [
        *ASK,
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in final.content]},
        {"role": "user", "content": "And tomorrow?"},
    ]
    for target in (model, ANTHROPIC):  # its own vendor, and Anthropic (which checks every signature)
        script(upstream, target, Reply(text="Rain."))
        again = client.messages.create(model=target, max_tokens=2048, messages=history, thinking=THINKING)
        assert again.content[-1].text == "Rain."  # type: ignore[union-attr]


@pytest.mark.parametrize("model", MODELS)
def test_image(client: anthropic.Anthropic, upstream: FakeUpstream, model: str) -> None:
    script(upstream, model, Reply(text="A pixel."))
    content: Any = [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "text", "text": "What is this?"},
    ]
    message = client.messages.create(model=model, max_tokens=50, messages=[{"role": "user", "content": content}])
    assert message.content[0].text == "A pixel."  # type: ignore[union-attr]
    check_image(last(upstream))


@pytest.mark.parametrize("model", MODELS)
def test_count_tokens(client: anthropic.Anthropic, model: str) -> None:
    counted = client.messages.with_raw_response.count_tokens(model=model, messages=ASK, tools=[WEATHER])
    assert counted.parse().input_tokens > 0
    # the fake Anthropic upstream has no count_tokens endpoint: every model gets the gateway's estimate
    assert counted.headers["x-switchyard-token-count"] == "estimated"


def test_model_listing(client: anthropic.Anthropic) -> None:
    listed = list(client.models.list(limit=2))
    assert {m.id for m in listed} >= set(MODELS) and all(m.type == "model" for m in listed)
    assert client.models.retrieve(ANTHROPIC).id == ANTHROPIC
    with pytest.raises(anthropic.NotFoundError):
        client.models.retrieve("no-such-model")


@pytest.mark.parametrize("model", TRANSLATED)
def test_claude_code_request_streamed(gateway: GatewayProcess, upstream: FakeUpstream, model: str) -> None:
    """The recorded Claude Code request (system blocks with cache_control, many tools, thinking, the beta
    header) through an OpenAI-backed, a Gemini-backed and an OpenAI-compatible model."""
    request = {**RECORDED["body"], "model": model}
    headers = {k: v for k, v in RECORDED["headers"].items() if k != "content-type"}
    call = {"name": "Glob", "arguments": {"pattern": "**/*.py"}}
    script(upstream, model, Reply(text="Let me look.", reasoning="I should glob.", tool_calls=[call]))
    response = httpx.post(f"{gateway.base_url}/v1/messages", json=request, headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    seen = sse(response.text)
    names = [name for name, _ in seen]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"] and "error" not in names
    starts = [d["content_block"] for n, d in seen if n == "content_block_start"]
    assert [b["type"] for b in starts] == ["thinking", "text", "tool_use"]
    arguments = "".join(
        d["delta"]["partial_json"]
        for n, d in seen
        if n == "content_block_delta" and d["delta"]["type"] == "input_json_delta"
    )
    assert starts[-1]["name"] == "Glob" and json.loads(arguments) == {"pattern": "**/*.py"}
    assert seen[-2][1]["delta"]["stop_reason"] == "tool_use"
    sent = last(upstream)
    check_vendor(sent, model)
    check_stream(sent)
    assert all(t["name"] in json.dumps(body(sent)) for t in RECORDED["body"]["tools"])


def test_passthrough_body_is_the_clients(gateway: GatewayProcess, upstream: FakeUpstream) -> None:
    """To an Anthropic upstream the client's body goes as sent (unknown fields, cache breakpoints, beta
    header, key order), only ``model`` replaced; its events come back as Anthropic sent them."""
    request = {**RECORDED["body"], "model": ANTHROPIC, "a_future_field": {"kept": [1, 2]}}
    headers = {k: v for k, v in RECORDED["headers"].items() if k != "content-type"}
    script(upstream, ANTHROPIC, Reply(text="Let me look.", reasoning="I should glob."))
    response = httpx.post(f"{gateway.base_url}/v1/messages", json=request, headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    (sent,) = one(upstream)
    assert orjson.dumps(sent.body) == orjson.dumps(request)  # same JSON, same key order
    assert sent.headers["anthropic-beta"] == RECORDED["headers"]["anthropic-beta"]
    kinds = [d["delta"]["type"] for n, d in sse(response.text) if n == "content_block_delta"]
    assert {"thinking_delta", "signature_delta", "text_delta"} <= set(kinds)
    assert "x-switchyard-ignored-params" not in response.headers
