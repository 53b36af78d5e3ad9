"""Fixtures of the access-control tests: a real redis-server per test, and both stores."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from app.state import RedisStore, SqliteStore, StateStore
from tests.governance.support import REDIS, RedisServer

needs_redis = pytest.mark.skipif(REDIS is None, reason="redis-server not installed (apt-get install redis-server)")


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    if REDIS is None:
        pytest.skip("redis-server not installed (apt-get install redis-server)")
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.stop()


WINDOW_S = 1.0  # the stores' rate window in these tests (60 s in production)


@pytest.fixture(params=["sqlite", "redis"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StateStore]:
    """Each store, with a rate window of ``WINDOW_S`` seconds."""
    made: StateStore
    if request.param == "redis":
        server = request.getfixturevalue("redis_server")
        # a generous timeout: these tests check atomicity, not latency (a loaded CI machine is slow to connect
        # the 40 connections of the concurrency test)
        made = RedisStore(server.url, timeout_s=5.0, window_s=WINDOW_S)
    else:
        made = SqliteStore(tmp_path / "state.db", window_s=WINDOW_S)
    await made.start()
    try:
        yield made
    finally:
        await made.aclose()
