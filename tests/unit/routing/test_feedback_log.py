"""``FeedbackLog``: decisions recorded under load are written in batches by one background writer."""

from __future__ import annotations

import json
from collections.abc import Sequence

from app.routing.feedback import DECISIONS, FeedbackLog
from app.settings.routing import FeedbackConfig
from app.state.sqlite import SqliteStore


class CountingStore(SqliteStore):
    def __init__(self) -> None:
        super().__init__(":memory:")
        self.batches: list[int] = []

    async def kv_set_many(self, namespace: str, items: Sequence[tuple[str, bytes]], ttl_s: float | None = None) -> None:
        self.batches.append(len(items))
        await super().kv_set_many(namespace, items, ttl_s)


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
