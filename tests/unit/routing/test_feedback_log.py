"""``FeedbackLog``: decisions recorded under load are written in batches by one background writer."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence

from app.routing import feedback
from app.routing.feedback import DECISIONS, FeedbackLog
from app.settings.routing import FeedbackConfig
from app.state.sqlite import SqliteStore


class CountingStore(SqliteStore):
    def __init__(self, write_s: float = 0.0) -> None:
        super().__init__(":memory:")
        self.batches: list[int] = []
        self.write_s = write_s  # how long a round trip takes

    async def kv_set_many(self, namespace: str, items: Sequence[tuple[str, bytes]], ttl_s: float | None = None) -> None:
        self.batches.append(len(items))
        await super().kv_set_many(namespace, items, ttl_s)
        if self.write_s:
            await asyncio.sleep(self.write_s)


async def test_a_burst_of_decisions_takes_few_round_trips() -> None:
    store = CountingStore()
    await store.start()

    async def opened() -> SqliteStore:
        return store

    log = FeedbackLog(opened, FeedbackConfig())
    for i in range(1200):  # one burst: the writer has not run yet
        log.record(f"r{i}", {"model": "m", "i": i})
    await log.drain()
    assert store.batches == [500, 500, 200]
    log.record("late", {"model": "m"})  # after the writer finished: a new one starts
    await log.drain()
    assert store.batches[-1] == 1
    assert json.loads(await store.kv_get(DECISIONS, "r1199") or b"{}") == {"model": "m", "i": 1199}
    assert await store.kv_get(DECISIONS, "late") is not None
    await store.aclose()


async def test_a_steady_trickle_is_written_once_per_gathering_interval() -> None:
    """Decisions arriving one by one while the writer is busy wait for the next interval's batch instead of
    a round trip each (the writer used to loop straight back and write every few decisions alone)."""
    store = CountingStore(write_s=0.01)
    await store.start()

    async def opened() -> SqliteStore:
        return store

    log = FeedbackLog(opened, FeedbackConfig())
    loop = asyncio.get_running_loop()
    started = loop.time()
    for i in range(60):  # ~0.3 s of traffic at 200 requests per second
        log.record(f"r{i}", {"i": i})
        await asyncio.sleep(0.005)
    took = loop.time() - started
    await asyncio.sleep(feedback.GATHER_S * 1.5)
    assert sum(store.batches) == 60
    assert len(store.batches) <= took / feedback.GATHER_S + 2, (store.batches, took)  # not ~one per 2 records
    await log.drain()
    await store.aclose()
