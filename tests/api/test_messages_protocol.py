"""The edges of the Anthropic Messages front-end: Anthropic's error shape and statuses (validation
included), an ``event: error`` for a stream that breaks after it started, Anthropic-only features (kept on
Anthropic upstreams, refused elsewhere), harmless ones dropped and named, ``count_tokens``, the model
listing in Anthropic's shape, and an agent loop that keeps its model."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse

from tests.api.messages_support import (
    ANTHROPIC,
    MESSAGE_MODELS,
    TRANSLATED,
    WEATHER,
    sent_body,
    upstream_id,
)
from tests.fakes.scripts import Reply
from tests.fakes.server import FakeUpstream
from tests.support import app_client, fake_models, write_config

USER: Any = [{"role": "user", "content": "Hello there"}]
BODY: dict[str, Any] = {"max_tokens": 50, "messages": USER}


def error_of(response: httpx.Response) -> dict[str, Any]:
    data = response.json()
    assert data["type"] == "error" and set(data["error"]) >= {"type", "message"}, data
    return data["error"]


# --- errors -------------------------------------------------------------------------------------------------


async def test_validation_errors_are_anthropic_400(raw: httpx.AsyncClient) -> None:
    missing = await raw.post("/v1/messages", json={"model": ANTHROPIC, "messages": USER})
    assert missing.status_code == 400 and error_of(missing)["type"] == "invalid_request_error"
    assert "max_tokens" in error_of(missing)["message"]
    wrong = await raw.post("/v1/messages", json={**BODY, "model": ANTHROPIC, "temperature": "hot"})
    assert wrong.status_code == 400 and error_of(wrong)["type"] == "invalid_request_error"
    broken = await raw.post("/v1/messages", content=b"{not json")
    assert broken.status_code == 400 and error_of(broken)["type"] == "invalid_request_error"
    role = await raw.post(
        "/v1/messages", json={**BODY, "model": ANTHROPIC, "messages": [{"role": "x", "content": "y"}]}
    )
    assert role.status_code == 400 and "messages.0.role" in error_of(role)["message"]


async def test_unknown_model_is_not_found(claude: anthropic.AsyncAnthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as caught:
        await claude.messages.create(model="no-such-model", **BODY)
    assert caught.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]


@pytest.mark.parametrize(
    ("status", "error_type", "exception"),
    [
        (529, "overloaded_error", anthropic.InternalServerError),
        (429, "rate_limit_error", anthropic.RateLimitError),
        (500, "api_error", anthropic.InternalServerError),
    ],
)
@pytest.mark.parametrize("model", [ANTHROPIC, "gemini-2.0-flash"])
async def test_upstream_errors_in_anthropic_shape(
    claude: anthropic.AsyncAnthropic, upstream: FakeUpstream, model: str, status: int, error_type: str, exception: type
) -> None:
    upstream.script(upstream_id(model), Reply(status=503 if status == 529 and model != ANTHROPIC else status))
    with pytest.raises(exception) as caught:
        await claude.messages.create(model=model, **BODY)
    assert caught.value.status_code == status  # type: ignore[attr-defined]
    assert caught.value.body["error"]["type"] == error_type  # type: ignore[attr-defined]


@pytest.mark.parametrize("model", MESSAGE_MODELS)
async def test_stream_failure_after_start_is_an_error_event(
    claude: anthropic.AsyncAnthropic, upstream: FakeUpstream, model: str
) -> None:
    upstream.script(upstream_id(model), Reply(text="one two three four five six", error_after_chunks=2))
    with pytest.raises(anthropic.APIStatusError):
        async with claude.messages.stream(model=model, **BODY) as stream:
            async for _ in stream:
                pass


async def test_stream_opening_failure_is_anthropic_json(raw: httpx.AsyncClient, upstream: FakeUpstream) -> None:
    upstream.script(ANTHROPIC, Reply(status=529))
    response = await raw.post("/v1/messages", json={**BODY, "model": ANTHROPIC, "stream": True})
    assert response.status_code == 529 and error_of(response)["type"] == "overloaded_error"


# --- Anthropic-only and harmless features ----------------------------------------------------------------------

SERVER_TOOL = {"type": "web_search_20250305", "name": "web_search", "max_uses": 3}


async def test_server_tools_pass_to_anthropic(raw: httpx.AsyncClient, upstream: FakeUpstream) -> None:
    body = {**BODY, "model": ANTHROPIC, "tools": [WEATHER, SERVER_TOOL]}
    response = await raw.post("/v1/messages", json=body)
    assert response.status_code == 200, response.text
    assert sent_body(upstream)["tools"] == [WEATHER, SERVER_TOOL]


@pytest.mark.parametrize("model", TRANSLATED)
async def test_server_tools_refused_elsewhere(raw: httpx.AsyncClient, model: str) -> None:
    response = await raw.post("/v1/messages", json={**BODY, "model": model, "tools": [SERVER_TOOL]})
    assert response.status_code == 400
    error = error_of(response)
    assert error["type"] == "invalid_request_error" and "web_search_20250305" in error["message"]


async def test_server_tools_route_to_anthropic(raw: httpx.AsyncClient, upstream: FakeUpstream) -> None:
    response = await raw.post("/v1/messages", json={**BODY, "model": "auto", "tools": [SERVER_TOOL]})
    assert response.status_code == 200, response.text
    assert response.headers["x-switchyard-provider"] == "anthropic"


@pytest.mark.parametrize("model", TRANSLATED)
async def test_harmless_features_dropped_and_named(raw: httpx.AsyncClient, model: str) -> None:
    body = {
        **BODY,
        "model": model,
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        "metadata": {"user_id": "user-1"},
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "future_field": 1,
    }
    response = await raw.post("/v1/messages", json=body, headers={"anthropic-beta": "x-2025"})
    assert response.status_code == 200, response.text
    ignored = response.headers["x-switchyard-ignored-params"].split(",")
    assert {"cache_control", "future_field", "header:anthropic-beta"} <= set(ignored)


async def test_tool_choice_and_parallel_control_translated(raw: httpx.AsyncClient, upstream: FakeUpstream) -> None:
    choice = {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True}
    body = {**BODY, "model": "gpt-4o-mini", "tools": [WEATHER], "tool_choice": choice, "stop_sequences": ["END"]}
    upstream.script("gpt-4o-mini", Reply(tool_calls=[{"name": "get_weather", "arguments": {"city": "Oslo"}}]))
    response = await raw.post("/v1/messages", json={**body, "temperature": 0.2, "top_p": 0.9})
    assert response.status_code == 200, response.text
    sent = sent_body(upstream)
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert sent["parallel_tool_calls"] is False and sent["stop"] == ["END"] and sent["temperature"] == 0.2


# --- pass-through ------------------------------------------------------------------------------------------------


@pytest.fixture
def renamed(upstream: FakeUpstream, tmp_path: Path, provider_keys: dict[str, str]) -> Path:
    """A catalogue whose Anthropic model's name differs from its upstream id."""
    models = fake_models(
        upstream.base_url,
        **{
            "claude-code": {
                "provider": "anthropic",
                "model": "claude-sonnet-4-5",
                "api_base": upstream.base_url,
                "timeout_s": 5,
            }
        },
    )
    return write_config(tmp_path, {"models": models, "orchestration": {"max_retries": 0}})


async def test_passthrough_replaces_only_the_model(renamed: Path, upstream: FakeUpstream) -> None:
    body = {**BODY, "model": "claude-code", "thinking": {"type": "enabled", "budget_tokens": 1024}, "x_new": [1]}
    async with app_client(renamed) as client:
        answer = await client.post("/v1/messages", json=body)
        assert answer.status_code == 200
        assert upstream.requests[-1].body == {**body, "model": "claude-sonnet-4-5"}
        assert answer.json()["model"] == "claude-sonnet-4-5"  # the upstream's answer, as it sent it
        streamed = await client.post("/v1/messages", json={**body, "stream": True})
    assert upstream.requests[-1].body == {**body, "model": "claude-sonnet-4-5", "stream": True}
    events = [line for line in streamed.text.splitlines() if line.startswith("event: ")]
    assert events[0] == "event: message_start" and events[-1] == "event: message_stop"
    assert '"model":"claude-sonnet-4-5"' in streamed.text  # the upstream's events, byte for byte


async def test_passthrough_keeps_the_clients_bytes(renamed: Path, upstream: FakeUpstream) -> None:
    """Whitespace, key order, number spelling and escapes arrive upstream as the client wrote them."""
    raw = (
        b'{ "messages" : [ {"role": "user", "content": "caf\\u00e9 \xc3\xa9 1e2"} ],\n'
        b'  "model": "claude-code", "max_tokens": 64, "temperature": 1.0E0, "x_new": {"model": "not me"} }'
    )
    async with app_client(renamed) as client:
        answer = await client.post("/v1/messages", content=raw, headers={"content-type": "application/json"})
        assert answer.status_code == 200, answer.text
    assert upstream.requests[-1].raw == raw.replace(b'"model": "claude-code"', b'"model": "claude-sonnet-4-5"')


# --- count_tokens ------------------------------------------------------------------------------------------------


@pytest.fixture
def counting_upstream() -> Iterator[FakeUpstream]:
    """A fake Anthropic upstream that also answers ``POST /v1/messages/count_tokens`` (12 per message)."""
    fake = FakeUpstream()
    seen: list[Any] = []
    lock = threading.Lock()

    async def count(request: Request) -> JSONResponse:
        body = await request.json()
        with lock:
            seen.append((body, dict(request.headers)))
        if body.get("system") == "refuse me":
            error = {"type": "invalid_request_error", "message": "prompt is too long"}
            return JSONResponse({"type": "error", "error": error}, status_code=400)
        return JSONResponse({"input_tokens": 12 * len(body["messages"])})

    fake.app.add_route("/v1/messages/count_tokens", count, methods=["POST"])
    fake.counted = seen  # type: ignore[attr-defined]
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


async def test_count_tokens_exact_from_anthropic(
    counting_upstream: FakeUpstream, tmp_path: Path, provider_keys: dict[str, str]
) -> None:
    path = write_config(tmp_path, {"models": fake_models(counting_upstream.base_url)})
    async with app_client(path) as client:
        body = {"model": ANTHROPIC, "messages": USER, "system": "Be brief."}
        response = await client.post("/v1/messages/count_tokens", json=body, headers={"anthropic-beta": "b1"})
        assert response.status_code == 200, response.text
        assert response.json()["input_tokens"] == 12 and response.headers["x-switchyard-token-count"] == "exact"
        ((sent, headers),) = counting_upstream.counted  # type: ignore[attr-defined]
        assert sent == body and headers["anthropic-beta"] == "b1"
        refused = await client.post("/v1/messages/count_tokens", json={**body, "system": "refuse me"})
        assert refused.status_code == 400 and refused.json()["error"]["type"] == "invalid_request_error"
        estimated = await client.post("/v1/messages/count_tokens", json={**body, "model": "gpt-4o-mini"})
    assert estimated.status_code == 200
    assert estimated.headers["x-switchyard-token-count"] == "estimated"
    assert estimated.json()["input_tokens"] > 0 and estimated.json()["switchyard"]["estimated"] is True


async def test_count_tokens_falls_back_to_the_estimate(raw: httpx.AsyncClient) -> None:
    """An Anthropic upstream without ``count_tokens`` (the plain fake answers 404): the estimate, marked."""
    response = await raw.post("/v1/messages/count_tokens", json={"model": ANTHROPIC, "messages": USER})
    assert response.status_code == 200, response.text
    assert response.headers["x-switchyard-token-count"] == "estimated"
    data = response.json()
    assert data["input_tokens"] > 0 and data["switchyard"]["estimated"] is True
    assert data["switchyard"]["exact_failed"] == "upstream_model_not_found"


async def test_count_tokens_with_the_sdk(claude: anthropic.AsyncAnthropic) -> None:
    counted = await claude.messages.count_tokens(model="gpt-4o-mini", messages=USER, tools=[WEATHER])  # type: ignore[arg-type]
    assert counted.input_tokens > 0


# --- model listing ------------------------------------------------------------------------------------------------


async def test_models_listing_in_anthropic_shape(claude: anthropic.AsyncAnthropic, raw: httpx.AsyncClient) -> None:
    models = [m async for m in claude.models.list(limit=2)]  # the SDK pages through every page
    assert ANTHROPIC in [m.id for m in models] and all(m.type == "model" for m in models)
    assert len(models) == 5
    page = (await raw.get("/v1/models", params={"limit": 2})).json()
    assert page["has_more"] is True and len(page["data"]) == 2 and page["last_id"] == page["data"][1]["id"]
    nxt = (await raw.get("/v1/models", params={"limit": 2, "after_id": page["last_id"]})).json()
    assert nxt["first_id"] not in [m["id"] for m in page["data"]]
    one = await claude.models.retrieve(ANTHROPIC)
    assert one.id == ANTHROPIC and one.display_name
    with pytest.raises(anthropic.NotFoundError):
        await claude.models.retrieve("nope")
    plain = httpx.AsyncClient(transport=raw._transport, base_url="http://gateway")  # no anthropic-version
    async with plain:
        listing = (await plain.get("/v1/models")).json()
    assert listing["object"] == "list" and "cost_per_1k_input" in listing["data"][0]


# --- an agent loop keeps its model ------------------------------------------------------------------------------------


async def test_tool_use_turn_stays_on_its_model(claude: anthropic.AsyncAnthropic, upstream: FakeUpstream) -> None:
    call = Reply(tool_calls=[{"name": "get_weather", "arguments": {"city": "Rome"}}])
    upstream.script("gemini-2.0-flash", call)
    first = await claude.messages.create(model="gemini-2.0-flash", **BODY, tools=[WEATHER])  # type: ignore[arg-type]
    (use,) = [b for b in first.content if b.type == "tool_use"]
    history: Any = [
        *USER,
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "sunny"}]},
    ]
    for alias in ("cheapest", "auto", "complexity"):
        upstream.script("gemini-2.0-flash", Reply(text="Sunny in Rome."))
        again = await claude.messages.with_raw_response.create(
            model=alias,
            max_tokens=50,
            messages=history,
            tools=[WEATHER],  # type: ignore[list-item]
        )
        assert again.headers["x-switchyard-route"].endswith("model=gemini-2.0-flash"), alias
    # when that model fails, the plan goes on
    upstream.script("gemini-2.0-flash", Reply(status=503))
    upstream.script("gpt-4o-mini", Reply(text="fallback"))
    upstream.script("compat-llama", Reply(text="fallback"))
    upstream.script(ANTHROPIC, Reply(text="fallback"))
    upstream.script("gpt-4o", Reply(text="fallback"))
    after = await claude.messages.with_raw_response.create(
        model="cheapest",
        max_tokens=50,
        messages=history,
        tools=[WEATHER],  # type: ignore[list-item]
    )
    assert not after.headers["x-switchyard-route"].endswith("model=gemini-2.0-flash")
