"""Redis unreachable (the server frozen with SIGSTOP, so calls time out as with a hung server): keys validated
within the grace period keep working with local limits, unknown keys get 503 at once, no request hangs, the
warning is rate-limited, and the spend made meanwhile reaches Redis when it answers again."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests.fakes.scripts import Reply
from tests.fakes.server import FakeUpstream
from tests.governance.support import (
    MASTER_HEADERS,
    PRICE_IN,
    PRICE_OUT,
    PRICED_UPSTREAM,
    RedisServer,
    bearer,
    chat,
    create_key,
    governed_client,
    governed_config,
    key_info,
)

CALL_COST = 2 * PRICE_IN + 1 * PRICE_OUT
SLOW_S = 5.0  # generous bound for "did not hang" (a store call times out after 0.3 s here)


@pytest.fixture
def config(upstream: FakeUpstream, tmp_path: Path, provider_keys: dict[str, str]) -> Path:
    return governed_config(tmp_path, upstream.base_url, orchestration={"max_retries": 0})


async def timed(coro):  # type: ignore[no-untyped-def]
    started = time.monotonic()
    result = await coro
    return result, time.monotonic() - started


async def test_cached_keys_keep_working_with_local_limits(
    config: Path, tmp_path: Path, upstream: FakeUpstream, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    settings = {"redis_url": redis_server.url, "redis_timeout_s": 0.3, "store_grace_s": 60}
    async with governed_client(config, tmp_path, **settings) as client:
        key_id, secret = await create_key(client, rpm=3, budget_usd=1)
        upstream.script(PRICED_UPSTREAM, *[Reply(text="ok")] * 10)
        assert (await chat(client, secret)).status_code == 200  # validated (and cached) while Redis is up
        redis_server.pause()
        try:
            await asyncio.sleep(0.6)  # past the key cache's freshness: lookups go to the (frozen) store
            statuses = []
            for _ in range(4):
                response, seconds = await timed(chat(client, secret))
                assert seconds < SLOW_S
                statuses.append(response.status_code)
            assert statuses == [200, 200, 200, 429]  # rpm 3 enforced locally
            unknown, seconds = await timed(client.get("/v1/models", headers=bearer("sk-sy-unknown-key")))
            assert unknown.status_code == 503 and unknown.json()["error"]["type"] == "state_unavailable"
            assert seconds < SLOW_S
            assert (await client.get("/v1/models", headers=MASTER_HEADERS)).status_code == 200
            managed, _ = await timed(client.get("/v1/keys", headers=MASTER_HEADERS))
            assert managed.status_code == 503
        finally:
            redis_server.resume()
        warnings = [r for r in caplog.records if r.name == "switchyard.governance" and r.levelname == "WARNING"]
        assert 1 <= len(warnings) <= 2  # at most one every 30 s
        assert "redis://" not in " ".join(r.getMessage() for r in warnings)

        await asyncio.sleep(1.2)  # the store is tried again after a second
        deadline = time.monotonic() + 10
        while True:  # the calls made during the outage are replayed into Redis
            info = await key_info(client, key_id)
            if info["spend_usd"] == pytest.approx(4 * CALL_COST) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        assert info["spend_usd"] == pytest.approx(4 * CALL_COST)
        assert info["usage"]["requests_in_window"] == 1  # the shared window saw only the first request
        assert (await chat(client, secret)).status_code == 200


async def test_without_grace_a_down_store_refuses(
    config: Path, tmp_path: Path, upstream: FakeUpstream, redis_server: RedisServer
) -> None:
    settings = {"redis_url": redis_server.url, "redis_timeout_s": 0.3, "store_grace_s": 0, "key_cache_ttl_s": 0}
    async with governed_client(config, tmp_path, **settings) as client:
        _, secret = await create_key(client)
        upstream.script(PRICED_UPSTREAM, Reply(text="ok"))
        assert (await chat(client, secret)).status_code == 200
        redis_server.pause()
        try:
            response, seconds = await timed(chat(client, secret))
            assert response.status_code == 503 and seconds < SLOW_S
            assert response.headers["retry-after"]
        finally:
            redis_server.resume()
