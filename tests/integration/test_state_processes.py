"""The embedded store under contention from several processes on one SQLite file (what ``--workers N`` does):
rate windows stay exact and reservations never overspend by more than one, with no lost update."""

from __future__ import annotations

import asyncio
import multiprocessing
import time
import uuid
from pathlib import Path

from app.state import KeyRecord, SqliteStore

PROCESSES = 4


async def _hammer(path: str, rate_key: str, budget_key: str, rounds: int) -> tuple[int, int]:
    store = SqliteStore(path)
    await store.start()
    admitted = settled = 0
    try:
        for _ in range(rounds):
            if (await store.admit(rate_key, None, 10)).ok:
                admitted += 1
            rid = uuid.uuid4().hex
            if (await store.reserve(budget_key, rid, 0.05, 10)).ok:
                await store.settle(budget_key, rid, 0.04, "m", 1)
                settled += 1
    finally:
        await store.aclose()
    return admitted, settled


def _worker(path: str, rounds: int, start_at: float, results: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    time.sleep(max(0.0, start_at - time.time()))  # all start together
    results.put(asyncio.run(_hammer(path, "key_rate", "key_budget", rounds)))


async def test_processes_share_exact_limits(tmp_path: Path) -> None:
    path = str(tmp_path / "state.db")
    store = SqliteStore(path)
    await store.start()
    now = time.time()
    await store.create_key(KeyRecord(id="key_rate", name="r", secret_hash="h1", created_at=now, rpm=50))
    await store.create_key(KeyRecord(id="key_budget", name="b", secret_hash="h2", created_at=now, budget_usd=1.0))
    ctx = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue = ctx.Queue()  # type: ignore[type-arg]
    start_at = time.time() + 3.0
    workers = [ctx.Process(target=_worker, args=(path, 40, start_at, results)) for _ in range(PROCESSES)]
    for worker in workers:
        worker.start()
    outcomes = [await asyncio.to_thread(results.get, True, 120) for _ in workers]
    for worker in workers:
        worker.join(30)
        assert worker.exitcode == 0
    assert sum(a for a, _ in outcomes) == 50  # 160 requests from 4 processes, rpm 50: exactly 50 admitted
    usage = await store.usage("key_budget")
    settled = sum(s for _, s in outcomes)
    assert abs(usage.spent_usd - 0.04 * settled) < 1e-9  # every settlement counted: no lost update
    assert 1.0 <= usage.spent_usd <= 1.0 + 0.05 and usage.reserved_usd == 0
    await store.aclose()
