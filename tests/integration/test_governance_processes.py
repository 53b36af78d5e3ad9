"""Access control across processes: real ``switchyard serve`` processes sharing one Redis (two replicas) or
one embedded SQLite file (like ``--workers``), in front of the fake upstream.

- rpm 60 on two replicas: 60 successes in the window in total (not 120), none refused below the limit;
- 50 concurrent requests on a budget that covers 10: spend never exceeds it by more than one reservation;
- a revocation on one replica is refused by the other within a second;
- a ``max_parallel`` lease is released when the client disconnects (mid-stream, or while waiting).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.clients.gateway_process import GatewayProcess, serve
from tests.fakes.scripts import Reply
from tests.fakes.server import FakeUpstream
from tests.governance.support import (
    MASTER,
    MASTER_HEADERS,
    PRICE_IN,
    PRICE_OUT,
    PRICED_UPSTREAM,
    REDIS,
    RedisServer,
    bearer,
    chat_body,
    governed_config,
)
from tests.support import TEST_KEYS

CALL_COST = 2 * PRICE_IN + 1 * PRICE_OUT  # "hello there" -> "ok"
RESERVATION = 2 * PRICE_IN + 10 * PRICE_OUT  # 10 max_tokens
# retries cover a pooled upstream connection that the fake's keep-alive timeout closes just as it is reused
ORCHESTRATION = {"max_retries": 2, "backoff_base_s": 0.01, "backoff_max_s": 0.05}
REVOKE_WITHIN_S = 3.0  # the contract says a second (cache TTL 0.5 s); generous for a loaded CI machine


def start_pair(stack: ExitStack, config: Path, logs: Path, env: dict[str, str]) -> tuple[GatewayProcess, ...]:
    base = {**TEST_KEYS, "SWITCHYARD_MASTER_KEY": MASTER, **env}
    return tuple(stack.enter_context(serve(config, logs / f"gateway-{i}.log", base)) for i in (1, 2))


@pytest.fixture(scope="module")
def redis_pair(
    fake_upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[GatewayProcess, ...]]:
    if REDIS is None:
        pytest.skip("redis-server not installed")
    tmp = tmp_path_factory.mktemp("redis-pair")
    config = governed_config(tmp, fake_upstream.base_url, orchestration=ORCHESTRATION)
    redis = RedisServer().start()
    try:
        with ExitStack() as stack:
            yield start_pair(stack, config, tmp, {"SWITCHYARD_REDIS_URL": redis.url})
    finally:
        redis.stop()


@pytest.fixture(scope="module")
def sqlite_pair(
    fake_upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[GatewayProcess, ...]]:
    tmp = tmp_path_factory.mktemp("sqlite-pair")
    config = governed_config(tmp, fake_upstream.base_url, orchestration=ORCHESTRATION)
    with ExitStack() as stack:
        yield start_pair(stack, config, tmp, {"SWITCHYARD_STATE_PATH": str(tmp / "state.db")})


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=200)) as client:
        yield client


async def new_key(http: httpx.AsyncClient, gateway: GatewayProcess, **fields: Any) -> tuple[str, str]:
    response = await http.post(f"{gateway.base_url}/v1/keys", json={"name": "proc", **fields}, headers=MASTER_HEADERS)
    assert response.status_code == 201, response.text
    return response.json()["id"], response.json()["key"]


async def call(http: httpx.AsyncClient, gateway: GatewayProcess, secret: str, **kw: Any) -> int:
    response = await http.post(
        f"{gateway.openai_base_url}/chat/completions", json=chat_body(**kw), headers=bearer(secret)
    )
    return response.status_code


async def info(http: httpx.AsyncClient, gateway: GatewayProcess, key_id: str) -> dict[str, Any]:
    response = await http.get(f"{gateway.base_url}/v1/keys/{key_id}", headers=MASTER_HEADERS)
    assert response.status_code == 200
    return dict(response.json())


async def rpm_holds_across(pair: tuple[GatewayProcess, ...], http: httpx.AsyncClient, rpm: int) -> None:
    _, secret = await new_key(http, pair[0], rpm=rpm)
    first = await asyncio.gather(*(call(http, pair[i % 2], secret) for i in range(rpm)))
    assert first == [200] * rpm  # no early 429 below the limit
    second = await asyncio.gather(*(call(http, pair[i % 2], secret) for i in range(rpm // 3)))
    assert second == [429] * (rpm // 3)  # the limit is the key's, not each process's


async def test_rpm_is_shared_by_two_replicas_on_redis(
    redis_pair: tuple[GatewayProcess, ...], http: httpx.AsyncClient, upstream: FakeUpstream
) -> None:
    await rpm_holds_across(redis_pair, http, 60)


async def test_rpm_is_shared_by_two_processes_on_one_sqlite_file(
    sqlite_pair: tuple[GatewayProcess, ...], http: httpx.AsyncClient, upstream: FakeUpstream
) -> None:
    await rpm_holds_across(sqlite_pair, http, 30)


@pytest.mark.parametrize("pair_name", ["redis_pair", "sqlite_pair"])
async def test_budget_holds_under_concurrency_across_processes(
    pair_name: str, request: pytest.FixtureRequest, http: httpx.AsyncClient, upstream: FakeUpstream
) -> None:
    pair = request.getfixturevalue(pair_name)
    budget = 10 * CALL_COST
    key_id, secret = await new_key(http, pair[0], budget_usd=budget)
    upstream.script(PRICED_UPSTREAM, *[Reply(text="ok", delay_s=0.05)] * 200)

    async def one(i: int) -> int:
        await asyncio.sleep(0.01 * i)
        return await call(http, pair[i % 2], secret)

    statuses = await asyncio.gather(*(one(i) for i in range(50)))
    assert set(statuses) <= {200, 402} and 402 in statuses
    i = 0
    while await call(http, pair[i % 2], secret) == 200:  # use what is left
        i += 1
    spent = (await info(http, pair[1], key_id))["spend_usd"]
    assert budget - 1e-9 <= spent <= budget + RESERVATION
    calls = len([r for r in upstream.requests if r.model == PRICED_UPSTREAM])
    assert spent == pytest.approx(calls * CALL_COST)


async def test_revocation_reaches_the_other_replica_within_a_second(
    redis_pair: tuple[GatewayProcess, ...], http: httpx.AsyncClient, upstream: FakeUpstream
) -> None:
    one, two = redis_pair
    key_id, secret = await new_key(http, one)
    assert (await http.get(f"{two.base_url}/v1/models", headers=bearer(secret))).status_code == 200  # cached on two
    assert (await http.delete(f"{one.base_url}/v1/keys/{key_id}", headers=MASTER_HEADERS)).status_code == 200
    revoked_at = time.monotonic()
    assert await call(http, two, secret) == 401  # a model call is checked by the store itself: at once
    while (await http.get(f"{two.base_url}/v1/models", headers=bearer(secret))).status_code != 401:
        assert time.monotonic() - revoked_at < REVOKE_WITHIN_S, "the other replica still accepts the revoked key"
        await asyncio.sleep(0.05)


async def wait_admitted(http: httpx.AsyncClient, gateway: GatewayProcess, secret: str) -> None:
    deadline = time.monotonic() + 10
    while (status := await call(http, gateway, secret)) == 429:
        assert time.monotonic() < deadline, "the lease was never released"
        await asyncio.sleep(0.05)
    assert status == 200


async def test_lease_is_released_when_the_client_disconnects(
    sqlite_pair: tuple[GatewayProcess, ...], http: httpx.AsyncClient, upstream: FakeUpstream
) -> None:
    gateway = sqlite_pair[0]
    key_id, secret = await new_key(http, gateway, max_parallel=1, budget_usd=10)
    upstream.script(PRICED_UPSTREAM, Reply(endless=True, chunk_delay_s=0.05))
    url = f"{gateway.openai_base_url}/chat/completions"
    async with (
        httpx.AsyncClient(timeout=30) as streaming,  # its own connection, closed mid-stream
        streaming.stream("POST", url, json=chat_body(stream=True), headers=bearer(secret)) as response,
    ):
        assert response.status_code == 200
        async for _ in response.aiter_bytes():
            break
        assert await call(http, gateway, secret) == 429  # the stream holds the key's only slot
    await wait_admitted(http, gateway, secret)  # the stream's lease went with its client
    after_stream = await info(http, gateway, key_id)
    assert after_stream["reserved_usd"] == 0 and after_stream["spend_usd"] > 0  # settled to what it streamed

    upstream.script(PRICED_UPSTREAM, Reply(text="late", delay_s=20))
    with pytest.raises(httpx.ReadTimeout):
        await http.post(
            f"{gateway.openai_base_url}/chat/completions", json=chat_body(), headers=bearer(secret), timeout=0.5
        )
    await wait_admitted(http, gateway, secret)  # a client that gave up waiting released it too
    final = await info(http, sqlite_pair[1], key_id)
    assert final["usage"]["parallel"] == 0 and final["reserved_usd"] == 0
    for process in sqlite_pair:
        assert secret not in process.log() and MASTER not in process.log()
