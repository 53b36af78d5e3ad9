"""Rate limits, leases, budgets and spend through the app: rpm, tpm and max_parallel answer 429 with
Retry-After; a spent budget 402; every call is settled to its exact cost (streams, race losers, every
answer of ``all``, judges); 50 concurrent requests never overspend by more than one reservation."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.fakes.scripts import Reply
from tests.fakes.server import FakeUpstream
from tests.governance.support import (
    MASTER_HEADERS,
    PRICE_IN,
    PRICE_OUT,
    PRICED,
    PRICED_UPSTREAM,
    RedisServer,
    bearer,
    chat,
    chat_body,
    create_key,
    governed_client,
    governed_config,
    key_info,
)

COMPAT = "compat-llama"  # upstream id llama3, $0.0001 / $0.0002 per 1k tokens
# chat(): "hello there" is 2 input tokens (the fake counts words), "ok" 1 output token; 10 max_tokens
CALL_COST = 2 * PRICE_IN + 1 * PRICE_OUT
RESERVATION = 2 * PRICE_IN + 10 * PRICE_OUT


@pytest.fixture
def config(upstream: FakeUpstream, tmp_path: Path, provider_keys: dict[str, str]) -> Path:
    return governed_config(tmp_path, upstream.base_url, orchestration={"max_retries": 0})


@pytest.fixture
async def client(config: Path, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with governed_client(config, tmp_path) as c:
        yield c


def ok_replies(upstream: FakeUpstream, n: int, delay_s: float = 0.0) -> None:
    upstream.script(PRICED_UPSTREAM, *[Reply(text="ok", delay_s=delay_s)] * n)


async def test_rpm(client: httpx.AsyncClient, upstream: FakeUpstream) -> None:
    key_id, secret = await create_key(client, rpm=3)
    ok_replies(upstream, 3)
    assert [(await chat(client, secret)).status_code for _ in range(3)] == [200, 200, 200]
    limited = await chat(client, secret)
    assert limited.status_code == 429
    assert limited.json()["error"]["type"] == "rate_limit_exceeded" and limited.json()["error"]["limit"] == "rpm"
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert (await client.get("/v1/models", headers=bearer(secret))).status_code == 200  # listings are not counted
    assert (await key_info(client, key_id))["usage"]["requests_in_window"] == 3


async def test_tpm(client: httpx.AsyncClient, upstream: FakeUpstream) -> None:
    _, secret = await create_key(client, tpm=10)
    upstream.script(PRICED_UPSTREAM, Reply(text="ok", input_tokens=4, output_tokens=6))
    assert (await chat(client, secret)).status_code == 200  # 10 tokens: the window is full
    limited = await chat(client, secret)
    assert limited.status_code == 429 and limited.json()["error"]["limit"] == "tpm"
    assert 1 <= int(limited.headers["retry-after"]) <= 60


async def test_max_parallel_lease_is_held_then_released(client: httpx.AsyncClient, upstream: FakeUpstream) -> None:
    key_id, secret = await create_key(client, max_parallel=1)
    ok_replies(upstream, 1, delay_s=1.0)
    first = asyncio.create_task(chat(client, secret))
    await asyncio.to_thread(upstream.wait_for_requests, 1)
    assert (await key_info(client, key_id))["usage"]["parallel"] == 1
    busy = await chat(client, secret)
    assert busy.status_code == 429 and busy.json()["error"]["limit"] == "parallel" and busy.headers["retry-after"]
    assert (await first).status_code == 200
    upstream.script(PRICED_UPSTREAM, Reply(status=500))
    assert (await chat(client, secret)).status_code >= 500  # a failure releases the lease too
    ok_replies(upstream, 1)
    assert (await chat(client, secret)).status_code == 200
    assert (await key_info(client, key_id))["usage"]["parallel"] == 0


async def test_budget_is_spent_then_402(client: httpx.AsyncClient, upstream: FakeUpstream) -> None:
    key_id, secret = await create_key(client, budget_usd=CALL_COST * 2.5, budget_period="1d")
    ok_replies(upstream, 3)
    assert [(await chat(client, secret)).status_code for _ in range(3)] == [200, 200, 200]
    refused = await chat(client, secret)
    assert refused.status_code == 402
    error = refused.json()["error"]
    assert error["type"] == "key_budget_exceeded" and error["code"] == "key_budget_exceeded"
    assert error["budget_usd"] == pytest.approx(CALL_COST * 2.5) and error["period_resets_at"]
    info = await key_info(client, key_id)
    assert info["spend_usd"] == pytest.approx(3 * CALL_COST)  # exact: 3 calls, the last one began under budget
    assert info["spend_by_model"] == pytest.approx({PRICED: 3 * CALL_COST})
    assert info["budget_remaining_usd"] == 0 and info["reserved_usd"] == 0
    assert len([r for r in upstream.requests if r.model == PRICED_UPSTREAM]) == 3
    messages = await client.post(
        "/v1/messages",
        json={"model": PRICED, "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]},
        headers={"x-api-key": secret},
    )
    assert messages.status_code == 402 and messages.json()["error"]["type"] == "billing_error"


async def test_streams_are_settled_to_their_usage(client: httpx.AsyncClient, upstream: FakeUpstream) -> None:
    key_id, secret = await create_key(client, budget_usd=10)
    upstream.script(PRICED_UPSTREAM, Reply(text="one two three", input_tokens=7, output_tokens=3))
    async with client.stream(
        "POST", "/v1/chat/completions", json=chat_body(stream=True), headers=bearer(secret)
    ) as response:
        assert response.status_code == 200
        assert "[DONE]" in "".join([chunk async for chunk in response.aiter_text()])
    info = await key_info(client, key_id)
    assert info["spend_usd"] == pytest.approx(7 * PRICE_IN + 3 * PRICE_OUT) and info["reserved_usd"] == 0


async def test_every_call_of_a_parallel_strategy_is_settled(client: httpx.AsyncClient, upstream: FakeUpstream) -> None:
    key_id, secret = await create_key(client, budget_usd=10)
    headers = bearer(secret)
    body = {"prompt": "hello there", "routing": "parallel", "models": [PRICED, COMPAT], "max_tokens": 10}
    every = await client.post("/v1/complete", json={**body, "strategy": "all"}, headers=headers)
    assert every.status_code == 200
    info = await key_info(client, key_id)
    assert set(info["spend_by_model"]) == {PRICED, COMPAT}
    assert info["spend_usd"] == pytest.approx(every.json()["total_cost"])

    upstream.script(PRICED_UPSTREAM, Reply(text="slow", delay_s=3))  # the race's loser, cancelled
    raced = await client.post("/v1/complete", json={**body, "strategy": "race"}, headers=headers)
    assert raced.status_code == 200 and raced.json()["model"] == COMPAT
    voted = await client.post("/v1/complete", json={**body, "strategy": "vote", "judge": PRICED}, headers=headers)
    assert voted.status_code == 200 and voted.json()["judge"]["model"] == PRICED
    info = await key_info(client, key_id)
    total = every.json()["total_cost"] + raced.json()["total_cost"] + voted.json()["total_cost"]
    assert info["spend_usd"] == pytest.approx(total)  # losers (estimated prompt) and the judge included
    assert raced.json()["cancelled"] and info["reserved_usd"] == 0


async def test_failed_calls_release_their_reservation(client: httpx.AsyncClient, upstream: FakeUpstream) -> None:
    key_id, secret = await create_key(client, budget_usd=RESERVATION * 1.5)
    upstream.script(PRICED_UPSTREAM, *[Reply(status=500)] * 3)
    for _ in range(3):
        assert (await chat(client, secret)).status_code == 502
    info = await key_info(client, key_id)
    assert info["spend_usd"] == 0 and info["reserved_usd"] == 0
    ok_replies(upstream, 1)
    assert (await chat(client, secret)).status_code == 200


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
async def test_50_concurrent_requests_never_overspend(
    backend: str, config: Path, tmp_path: Path, upstream: FakeUpstream, request: pytest.FixtureRequest
) -> None:
    settings = {}
    if backend == "redis":
        settings["redis_url"] = request.getfixturevalue("redis_server").url
    budget = 10 * CALL_COST
    async with governed_client(config, tmp_path, **settings) as client:
        key_id, secret = await create_key(client, budget_usd=budget)
        ok_replies(upstream, 100, delay_s=0.05)

        async def one(i: int) -> int:
            await asyncio.sleep(0.01 * i)  # arrivals spread over the calls' settlements (0.5 s)
            return (await chat(client, secret)).status_code

        statuses = await asyncio.gather(*(one(i) for i in range(50)))
        assert set(statuses) <= {200, 402} and 200 in statuses and 402 in statuses
        while (await chat(client, secret)).status_code == 200:  # use what is left
            pass
        info = await key_info(client, key_id)
        assert budget - 1e-9 <= info["spend_usd"] <= budget + RESERVATION  # at most one reservation over
        assert info["reserved_usd"] == 0
        calls = len([r for r in upstream.requests if r.model == PRICED_UPSTREAM])
        assert info["spend_usd"] == pytest.approx(calls * CALL_COST)  # every call settled, exactly


async def test_metrics_by_key_name_with_bounded_names(
    config: Path, tmp_path: Path, upstream: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)  # this process's own registry
    alpha, beta = f"alpha-{uuid.uuid4().hex[:6]}", f"beta-{uuid.uuid4().hex[:6]}"  # counters are process-wide
    async with governed_client(config, tmp_path, metrics_max_key_names=1) as client:
        _, first = await create_key(client, name=alpha, rpm=1)
        _, second = await create_key(client, name=beta)
        ok_replies(upstream, 3)
        for secret in (first, first, second):
            await chat(client, secret)
        text = (await client.get("/metrics")).text
    lines = [line for line in text.splitlines() if line.startswith("switchyard_key_")]
    assert f'switchyard_key_requests_total{{key="{alpha}"}} 1.0' in lines
    assert f'switchyard_key_rejections_total{{key="{alpha}",reason="rpm"}} 1.0' in lines
    assert any(line.startswith(f'switchyard_key_spend_usd_total{{key="{alpha}",model="priced"}}') for line in lines)
    assert not any(beta in line for line in lines)  # over the cap: counted as "other"
    assert any('key="other"' in line for line in lines)
    assert first not in text and second not in text


async def test_keys_never_reach_logs_metrics_or_errors(
    config: Path,
    tmp_path: Path,
    upstream: FakeUpstream,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("DEBUG")
    bodies: list[str] = []
    async with governed_client(config, tmp_path, log_level="debug") as client:
        key_id, secret = await create_key(client, rpm=2, budget_usd=1)
        ok_replies(upstream, 3)
        for headers in (bearer(secret), {"x-api-key": secret}, bearer(secret), bearer(secret + "x")):
            response = await client.post("/v1/chat/completions", json=chat_body(), headers=headers)
            bodies.append(response.text)
        await client.delete(f"/v1/keys/{key_id}", headers=MASTER_HEADERS)
        bodies.append((await chat(client, secret)).text)
        bodies.append((await client.get(f"/v1/keys/{key_id}", headers=MASTER_HEADERS)).text)
        bodies.append((await client.get("/v1/keys", headers=MASTER_HEADERS)).text)
        bodies.append((await client.get("/metrics")).text)
    out, err = capfd.readouterr()
    assert err and caplog.records  # the request logs were captured
    records = " ".join(f"{r.getMessage()} {getattr(r, 'fields', '')}" for r in caplog.records)
    access = [getattr(r, "fields", {}) for r in caplog.records if r.name == "switchyard.access"]
    assert {"test-key", "master"} <= {f.get("key") for f in access}  # each line names the key, never its secret
    for secret_value in (secret, secret[6:], "sy-master-test-0123456789abcdef"):
        for where, text in (("stdout", out), ("stderr", err), ("records", records), ("bodies", " ".join(bodies))):
            assert secret_value not in text, where


async def test_redis_backed_limits(
    config: Path, tmp_path: Path, upstream: FakeUpstream, redis_server: RedisServer
) -> None:
    async with governed_client(config, tmp_path, redis_url=redis_server.url) as client:
        key_id, secret = await create_key(client, rpm=2, budget_usd=1, max_parallel=2)
        ok_replies(upstream, 2)
        assert [(await chat(client, secret)).status_code for _ in range(3)] == [200, 200, 429]
        info = await key_info(client, key_id)
        assert info["spend_usd"] == pytest.approx(2 * CALL_COST) and info["usage"]["requests_in_window"] == 2
    assert not (tmp_path / "state.db").exists()  # everything lives in Redis
