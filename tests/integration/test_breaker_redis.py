"""Breaker transitions shared through a real ``redis-server`` (started per test on a free 127.0.0.1 port):
between two boards, two gateways, a late starter, and with Redis unreachable or coming up late."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from app.orchestration.breaker import BreakerBoard
from app.orchestration.breaker_sync import KEY_PREFIX, BreakerSync
from app.settings.orchestration import BreakerConfig
from tests.fakes.scripts import Reply
from tests.fakes.server import FakeUpstream
from tests.support import app_client, fake_models, write_config

REDIS = shutil.which("redis-server")
pytestmark = pytest.mark.skipif(
    REDIS is None, reason="redis-server binary not installed (apt-get install redis-server)"
)
MODELS = ("a", "b")
WAIT_S = 15.0  # generous: propagation normally takes milliseconds


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    def __init__(self, port: int) -> None:
        self.port, self.url = port, f"redis://127.0.0.1:{port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisServer:
        assert REDIS is not None
        args = [REDIS, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer(free_port()).start()
    try:
        yield server
    finally:
        server.stop()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_sync(url: str, clock: Callable[[], float] = time.monotonic, **kw: object) -> BreakerSync:
    board = BreakerBoard(BreakerConfig(failure_threshold=2, cooldown_s=600.0), clock)
    return BreakerSync(url, board, MODELS, **kw)  # type: ignore[arg-type]


async def eventually(check: Callable[[], object]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def trip(board: BreakerBoard, model: str) -> None:
    for _ in range(board.config.failure_threshold):
        board.get(model).record_failure()


async def test_open_and_close_propagate_between_boards(redis_server: RedisServer) -> None:
    clock = Clock()
    one, two = make_sync(redis_server.url, clock), make_sync(redis_server.url)
    await one.start()
    await two.start()
    try:
        trip(one.board, "a")
        assert one.board.state("a") == "open"
        await eventually(lambda: two.board.state("a") == "open")
        assert not two.board.get("a").allow()
        assert 500 < two.board.get("a").retry_in <= 600  # open until the shared until, not a fresh cooldown
        assert two.board.state("b") == "closed"

        clock.now += 600  # worker one's probe succeeds: the circuit closes everywhere
        assert one.board.get("a").allow()
        one.board.get("a").record_success()
        await eventually(lambda: two.board.state("a") == "closed")
        assert two.board.get("a").allow()

        trip(two.board, "b")  # and the other way round
        await eventually(lambda: one.board.state("b") == "open")
    finally:
        await one.aclose()
        await two.aclose()


async def test_late_starter_loads_the_open_state(redis_server: RedisServer) -> None:
    first = make_sync(redis_server.url)
    await first.start()
    try:
        trip(first.board, "a")
        client = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
        try:
            await eventually(lambda: not first.pending())
            stored = await client.hgetall(KEY_PREFIX + "a")
            assert stored["state"] == "open" and stored["model"] == "a"
            assert await client.pttl(KEY_PREFIX + "a") > 0
            assert await client.keys("switchyard:*") == [KEY_PREFIX + "a"]  # one key per catalogue model touched
        finally:
            await client.aclose()
        late = make_sync(redis_server.url)
        await late.start()  # waits for the first load
        try:
            assert late.board.state("a") == "open" and late.board.state("b") == "closed"
        finally:
            await late.aclose()
    finally:
        await first.aclose()


async def test_unreachable_redis_keeps_breakers_local(caplog: pytest.LogCaptureFixture) -> None:
    sync = make_sync(f"redis://127.0.0.1:{free_port()}/0", backoff=(0.05, 0.2))
    started = time.monotonic()
    await sync.start()
    try:
        assert time.monotonic() - started < 10  # start does not hang on a dead Redis
        trip(sync.board, "a")
        assert sync.board.state("a") == "open" and not sync.board.get("a").allow()
        assert sync.board.get("b").allow()
        await asyncio.sleep(0.5)  # both loops retry in the background
        assert "a" in sync.pending()  # kept for when Redis comes back
    finally:
        await sync.aclose()
    warnings = [r.getMessage() for r in caplog.records if r.name == "app.orchestration.breaker_sync"]
    assert warnings and len(warnings) <= 2  # rate-limited: not one per retry
    assert "redis://" not in " ".join(warnings)


async def test_reconnects_when_redis_comes_up_later() -> None:
    server = RedisServer(free_port())
    one = make_sync(server.url, backoff=(0.05, 0.2))
    two = make_sync(server.url, backoff=(0.05, 0.2))
    await one.start()
    await two.start()
    try:
        trip(one.board, "a")  # decided while Redis was down
        server.start()
        await eventually(lambda: two.board.state("a") == "open")
    finally:
        await one.aclose()
        await two.aclose()
        server.stop()


GEMINI, MINI = "gemini-2.0-flash", "gpt-4o-mini"
ORCHESTRATION = {
    "max_retries": 1,
    "backoff_base_s": 0.01,
    "backoff_max_s": 0.02,
    "breaker": {"failure_threshold": 2, "cooldown_s": 600},
}


@pytest.fixture
def config_path(upstream: FakeUpstream, tmp_path: Path, provider_keys: dict[str, str]) -> Path:
    return write_config(tmp_path, {"models": fake_models(upstream.base_url), "orchestration": ORCHESTRATION})


async def circuit(client: object, model: str) -> str:
    models = (await client.get("/v1/models")).json()["models"]  # type: ignore[attr-defined]
    return next(m for m in models if m["id"] == model)["circuit"]["state"]


async def test_two_gateways_share_an_open_circuit(
    redis_server: RedisServer, upstream: FakeUpstream, config_path: Path
) -> None:
    body = {"prompt": "capital of France?", "routing": "specific", "model": GEMINI}
    async with app_client(config_path, redis_url=redis_server.url) as one:
        async with app_client(config_path, redis_url=redis_server.url) as two:
            upstream.script(GEMINI, *[Reply(status=500)] * 2)
            assert (await one.post("/v1/complete", json=body)).status_code == 502  # a call and a retry: opens
            assert await circuit(one, GEMINI) == "open"
            deadline = time.monotonic() + WAIT_S
            while await circuit(two, GEMINI) != "open":
                assert time.monotonic() < deadline, "the other gateway never learnt the open circuit"
                await asyncio.sleep(0.05)
            calls = len(upstream.requests)
            response = await two.post("/v1/complete", json=body)
            assert response.status_code >= 500 and response.json()["error"]
            assert len(upstream.requests) == calls  # gateway two never called the dead model
            assert (await two.get("/ready")).json()["open_circuits"] == [GEMINI]
        async with app_client(config_path, redis_url=redis_server.url) as three:  # started after: loads it
            assert await circuit(three, GEMINI) == "open"


async def test_gateway_with_unreachable_redis_serves_and_breaks_locally(
    upstream: FakeUpstream, config_path: Path
) -> None:
    body = {"prompt": "capital of France?", "routing": "specific", "model": GEMINI}
    async with app_client(config_path, redis_url=f"redis://127.0.0.1:{free_port()}/0") as client:
        upstream.script(GEMINI, Reply(text="Paris"))
        response = await client.post("/v1/complete", json=body)
        assert response.status_code == 200 and response.json()["content"] == "Paris"
        upstream.script(GEMINI, *[Reply(status=500)] * 2)
        assert (await client.post("/v1/complete", json=body)).status_code == 502
        assert await circuit(client, GEMINI) == "open"
        calls = len(upstream.requests)
        assert (await client.post("/v1/complete", json=body)).status_code >= 500
        assert len(upstream.requests) == calls
