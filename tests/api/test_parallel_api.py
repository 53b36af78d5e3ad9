"""``/v1/complete`` orchestration over HTTP: strategies, hedging, deadlines, retries, totals and breakers."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.scripts import Reply
from tests.fakes.server import FakeUpstream
from tests.support import app_client, fake_models, write_config

MINI, SONNET, GEMINI, LLAMA = "gpt-4o-mini", "claude-3-5-sonnet-20241022", "gemini-2.0-flash", "compat-llama"
ORCHESTRATION = {
    "max_retries": 1,
    "backoff_base_s": 0.01,
    "backoff_max_s": 0.02,
    "request_timeout_s": 30,
    "max_request_timeout_s": 60,
    "breaker": {"failure_threshold": 2, "cooldown_s": 600},
}


@pytest.fixture
async def client(
    upstream: FakeUpstream, tmp_path: Path, provider_keys: dict[str, str]
) -> AsyncIterator[httpx.AsyncClient]:
    models = fake_models(upstream.base_url, **{MINI: {"fallbacks": [SONNET]}})
    path = write_config(tmp_path, {"models": models, "orchestration": ORCHESTRATION})
    async with app_client(path) as c:
        yield c


async def post(client: httpx.AsyncClient, **body: Any) -> httpx.Response:
    return await client.post("/v1/complete", json={"prompt": "what is the capital of France", **body})


async def test_race_over_http(client: httpx.AsyncClient, upstream: FakeUpstream) -> None:
    upstream.script(MINI, Reply(text="Paris", delay_s=0.05, input_tokens=7, output_tokens=1))
    upstream.script(SONNET, Reply(text="slow Paris", delay_s=10))
    response = await post(client, routing="parallel", models=[MINI, SONNET])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == MINI and body["content"] == "Paris" and body["strategy"] == "race"
    assert [c["model"] for c in body["cancelled"]] == [SONNET]
    estimated = body["cancelled"][0]["tokens"]["input"]
    assert body["total_tokens"] == {"input": 7 + estimated, "output": 1}
    assert body["totals_estimated"] is True
    assert body["total_cost"] is not None and body["total_cost"] > body["cost"]
    assert upstream.wait_for_disconnects(1) == 1


async def test_consensus_implies_parallel_and_lists_candidates(
    client: httpx.AsyncClient, upstream: FakeUpstream
) -> None:
    upstream.script(MINI, Reply(text="Paris is the capital of France."))
    upstream.script(SONNET, Reply(text="I believe it is Marseille, a port city in the south."))
    upstream.script(GEMINI, Reply(text="The capital of France is Paris."))
    response = await post(client, strategy="consensus", models=[MINI, SONNET, GEMINI])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["route"]["strategy"] == "parallel" and body["strategy"] == "consensus"
    assert body["model"] in (MINI, GEMINI)
    assert set(body["agreement"]) == {MINI, SONNET, GEMINI}
    assert len(body["candidates"]) == 3
    assert body["total_tokens"]["output"] == sum(c["tokens"]["output"] for c in body["candidates"])


async def test_vote_adds_the_judge_to_the_totals(client: httpx.AsyncClient, upstream: FakeUpstream) -> None:
    upstream.script(MINI, Reply(text="first", input_tokens=3, output_tokens=1))
    upstream.script(SONNET, Reply(text="second", input_tokens=3, output_tokens=1))
    upstream.script("llama3", Reply(text="Response 1", input_tokens=30, output_tokens=2))
    response = await post(client, routing="parallel", strategy="vote", judge=LLAMA, models=[MINI, SONNET])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == MINI
    assert body["judge"]["choice"] == 1 and body["judge"]["model"] == LLAMA
    assert body["total_tokens"] == {"input": 36, "output": 4}


async def test_all_fail_is_502_with_each_failure(client: httpx.AsyncClient, upstream: FakeUpstream) -> None:
    upstream.script(MINI, Reply(status=500), Reply(status=500))
    upstream.script(GEMINI, Reply(status=401))
    response = await post(client, routing="parallel", strategy="all", models=[MINI, GEMINI])
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["type"] == "all_models_failed"
    assert sorted(f["type"] for f in error["failures"]) == ["upstream_auth_error", "upstream_server_error"]


async def test_retries_and_fallbacks_are_reported(client: httpx.AsyncClient, upstream: FakeUpstream) -> None:
    upstream.script(MINI, Reply(status=503), Reply(status=503))
    upstream.script(SONNET, Reply(text="fallback answer"))
    response = await post(client, routing="specific", model=MINI)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == SONNET and body["strategy"] == "fallback"
    assert body["retries"] == 1 and body["attempts"] == {MINI: 2, SONNET: 1}
    assert [(f["model"], f["type"]) for f in body["failures"]] == [(MINI, "upstream_unavailable")]


async def test_hedge_over_http(client: httpx.AsyncClient, upstream: FakeUpstream) -> None:
    upstream.script(MINI, Reply(text="late", delay_s=10))
    upstream.script(SONNET, Reply(text="hedged"))
    response = await post(client, model=MINI, hedge={"delay_s": 0.2})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == SONNET and body["hedge"]["hedged"] is True and body["strategy"] == "hedge"
    assert upstream.wait_for_disconnects(1) == 1


async def test_deadline_is_a_prompt_504(client: httpx.AsyncClient, upstream: FakeUpstream) -> None:
    upstream.script(MINI, Reply(delay_s=20))
    started = time.monotonic()
    response = await post(client, model=MINI, timeout_s=0.5)
    assert time.monotonic() - started < 4
    assert response.status_code == 504
    assert response.json()["error"]["type"] == "deadline_exceeded"
    assert upstream.wait_for_disconnects(1) == 1


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"timeout_s": 61}, 422, "exceeds the maximum of 60"),
        ({"timeout_s": 0}, 400, "timeout_s"),
        ({"routing": "parallel", "judge": LLAMA}, 400, "'judge' needs strategy 'vote'"),
        ({"routing": "specific", "model": MINI, "strategy": "race"}, 400, "needs routing 'parallel'"),
        ({"routing": "parallel", "hedge": True}, 400, "'hedge' applies"),
        ({"strategy": "race", "selector": "longest"}, 400, "'selector' needs"),
        ({"strategy": "fastest"}, 400, "strategy"),
        ({"strategy": "vote", "judge": "no-such-model"}, 404, "no-such-model"),
        ({"hedge": {"delay_s": -1}}, 400, "hedge"),
    ],
)
async def test_bad_orchestration_input_is_a_clear_4xx(
    client: httpx.AsyncClient, body: dict[str, Any], status: int, needle: str
) -> None:
    response = await post(client, **body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    text = error["message"] + " ".join(e.get("field", "") + e.get("message", "") for e in error.get("errors", []))
    assert needle in text


async def test_open_circuit_shows_and_is_skipped(client: httpx.AsyncClient, upstream: FakeUpstream) -> None:
    upstream.script(GEMINI, *[Reply(status=500)] * 2)
    response = await post(client, routing="specific", model=GEMINI)
    assert response.status_code == 502  # one call and one retry, both failed: the circuit opens
    models = {m["id"]: m for m in (await client.get("/v1/models")).json()["models"]}
    assert models[GEMINI]["circuit"]["state"] == "open"
    assert models[GEMINI]["available"] is False and models[GEMINI]["unavailable_reason"] == "circuit open"
    assert models[MINI]["circuit"]["state"] == "closed"
    ready = (await client.get("/ready")).json()
    assert ready["open_circuits"] == [GEMINI] and GEMINI not in ready["available_models"]
    assert ready["status"] == "ready"

    calls_before = len(upstream.requests)
    response = await post(client, routing="parallel", models=[GEMINI, MINI])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == MINI
    assert {"model": GEMINI, "reason": "circuit open"} in body["route"]["skipped"]
    assert all(r.model != GEMINI for r in upstream.requests[calls_before:])
