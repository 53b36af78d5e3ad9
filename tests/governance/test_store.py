"""The state store's contract, run against both implementations (the embedded SQLite file and a real
redis-server): keys, rate windows, leases, budget reservations, spend, key/value with expiry."""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from app.state import KeyRecord, SqliteStore, StateStore, sqlite_tx
from app.state.records import WINDOW_SLICES
from app.state.sqlite import SCHEMA
from app.state.sqlite_kv import KV_SWEEP_EVERY
from app.state.sqlite_tx import CHECKPOINT_EVERY, Transactions
from tests.governance.conftest import WINDOW_S


def record(**fields: object) -> KeyRecord:
    fields.setdefault("id", "key_" + uuid.uuid4().hex[:8])
    fields.setdefault("name", "k")
    fields.setdefault("secret_hash", uuid.uuid4().hex)
    fields.setdefault("created_at", time.time())
    return KeyRecord(**fields)  # type: ignore[arg-type]


def uid() -> str:
    return uuid.uuid4().hex


async def test_keys_are_created_found_listed_updated(store: StateStore) -> None:
    key = record(name="alpha", models=("a", "b"), rpm=10, metadata={"team": "x"})
    await store.create_key(key)
    assert await store.find_key(key.secret_hash) == key
    assert await store.get_key(key.id) == key
    assert await store.find_key("nope") is None and await store.get_key("nope") is None
    other = record(name="beta")
    await store.create_key(other)
    assert [k.name for k in await store.list_keys()] == ["alpha", "beta"]
    updated = await store.update_key(key.id, {"rpm": None, "tpm": 500, "models": None, "name": "alpha2"})
    assert updated is not None and (updated.rpm, updated.tpm, updated.models, updated.name) == (
        None,
        500,
        None,
        "alpha2",
    )
    assert await store.get_key(key.id) == updated
    assert await store.update_key("nope", {"rpm": 1}) is None


async def test_refusals_of_missing_revoked_and_expired_keys(store: StateStore) -> None:
    assert (await store.admit("key_missing", None, 10)).refusal == "missing"
    revoked, expired = record(), record(expires_at=time.time() - 1)
    await store.create_key(revoked)
    await store.create_key(expired)
    await store.update_key(revoked.id, {"revoked_at": time.time()})
    assert (await store.admit(revoked.id, None, 10)).refusal == "revoked"
    assert (await store.admit(expired.id, None, 10)).refusal == "expired"
    assert (await store.reserve(revoked.id, uid(), 0.1, 10)).refusal == "revoked"


async def test_rpm_is_an_exact_sliding_window(store: StateStore) -> None:
    key = record(rpm=5)
    await store.create_key(key)
    results = await asyncio.gather(*(store.admit(key.id, None, 10) for _ in range(12)))
    assert sum(r.ok for r in results) == 5  # exactly the limit, concurrent callers included
    refused = [r for r in results if not r.ok]
    assert all(r.refusal == "rpm" and r.retry_after is not None and 0 < r.retry_after <= WINDOW_S for r in refused)
    await asyncio.sleep(WINDOW_S + 0.2)  # the window slides: the limit is available again, all of it
    assert sum([(await store.admit(key.id, None, 10)).ok for _ in range(6)]) == 5
    assert (await store.usage(key.id)).requests_in_window == 5


async def test_tpm_counts_settled_tokens(store: StateStore) -> None:
    key = record(tpm=100)
    await store.create_key(key)
    assert (await store.admit(key.id, None, 10)).ok
    await store.settle(key.id, None, 0.0, "m", 60)
    assert (await store.admit(key.id, None, 10)).ok  # 60 < 100: admitted
    await store.settle(key.id, None, 0.0, "m", 40)
    refused = await store.admit(key.id, None, 10)
    assert refused.refusal == "tpm" and refused.retry_after is not None and 0 < refused.retry_after <= WINDOW_S
    assert (await store.usage(key.id)).tokens_in_window == 100
    await asyncio.sleep(WINDOW_S + 0.2)
    assert (await store.admit(key.id, None, 10)).ok


async def test_rate_windows_stay_small_whatever_the_traffic(store: StateStore) -> None:
    """A window is kept as slices, not one row per request: its size is bounded by WINDOW_SLICES, so a busy
    key's admission costs the same as a quiet one's (a log of single events grew by one row per request)."""
    key = record(rpm=1_000_000, tpm=1_000_000_000)
    await store.create_key(key)
    loop = asyncio.get_running_loop()
    ends = loop.time() + 1.5 * WINDOW_S
    admitted = 0
    while loop.time() < ends:
        admitted += (await store.admit(key.id, None, 10)).ok
        await store.settle(key.id, None, 0.0, "m", 7)
    usage = await store.usage(key.id)
    assert 0 < usage.requests_in_window < admitted  # the first half-window's requests have left it
    assert usage.tokens_in_window > 0 and usage.tokens_in_window % 7 == 0  # whole settlements only
    if isinstance(store, SqliteStore):
        with sqlite3.connect(store.path) as db:
            sizes = [n for (n,) in db.execute("SELECT COUNT(*) FROM rate GROUP BY kind")]
    else:
        client = store._client  # the stored shape is what this test is about
        windows = [f"switchyard:{part}:{{{key.id}}}" for part in ("rpmc", "tpmc")]
        sizes = [await client.hlen(window) - 2 for window in windows]  # the slices, less "sum" and "lo"
    assert len(sizes) == 2 and all(0 < n <= WINDOW_SLICES + 1 for n in sizes), sizes


async def test_a_rate_window_never_lets_more_through_than_its_limit(tmp_path: Path) -> None:
    """Requests every 10 ms for three windows against rpm=7: no window-long span ever holds more than 7
    admissions, each refusal's retry-after lands where the next admission is, and the limit is used up
    again in every window (the slices never hold an event much longer than the window)."""
    now = [1_000.0]
    store = SqliteStore(tmp_path / "state.db", clock=lambda: now[0], window_s=WINDOW_S)
    await store.start()
    try:
        key = record(rpm=7)
        await store.create_key(key)
        admitted: list[float] = []
        retry_at: float | None = None
        for step in range(300):
            now[0] = 1_000.0 + step * 0.01
            answer = await store.admit(key.id, None, 10)
            if answer.ok:
                if retry_at is not None:
                    assert now[0] >= retry_at - 1e-9  # never admitted before the retry-after said
                admitted.append(now[0])
                retry_at = None
            else:
                assert answer.retry_after is not None and 0 < answer.retry_after <= WINDOW_S
                retry_at = now[0] + answer.retry_after
        for i, at in enumerate(admitted):
            assert sum(1 for t in admitted if at - WINDOW_S < t <= at) <= 7, i
        assert len(admitted) >= 3 * 7 - 1  # about 7 per window: the slices cost at most one slice per window
    finally:
        await store.aclose()


async def test_sqlite_waits_for_another_writer_off_the_event_loop(tmp_path: Path) -> None:
    """Transactions run on the event loop while the write lock is free; when another process holds it the
    store's thread waits for it: the loop goes on meanwhile, and the operation completes once it is free."""
    store = SqliteStore(tmp_path / "state.db", window_s=WINDOW_S)
    await store.start()
    other = sqlite3.connect(tmp_path / "state.db", isolation_level=None)  # as another worker process would
    try:
        key = record(rpm=2)
        await store.create_key(key)
        assert (await store.admit(key.id, None, 10)).ok  # on the loop: the lock is free
        other.execute("BEGIN IMMEDIATE")
        loop = asyncio.get_running_loop()
        waiting = loop.create_task(store.admit(key.id, None, 10))
        began = loop.time()
        await asyncio.sleep(0.2)
        assert loop.time() - began < 0.5  # the loop was not blocked
        assert not waiting.done()  # the store's thread waits for the lock
        other.execute("COMMIT")
        assert (await asyncio.wait_for(waiting, 5)).ok
        refused = await store.admit(key.id, None, 10)  # the thread's admission counted: 2 of 2
        assert refused.refusal == "rpm"
    finally:
        other.close()
        await store.aclose()


async def test_sqlite_waits_for_its_own_thread_and_goes_on_on_the_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the store's own thread holds the write lock (a batch), the loop's transactions wait for it and
    then run on the loop; queued behind it on the thread instead, each would find the lock taken by the one
    before, and the thread would end up running all of them."""
    store = SqliteStore(tmp_path / "state.db", window_s=WINDOW_S)
    await store.start()
    on_thread: list[str] = []
    locked = Transactions._locked

    def counting(self: Transactions, fn: Any) -> Any:
        on_thread.append(getattr(fn, "__name__", "?"))
        return locked(self, fn)

    monkeypatch.setattr(Transactions, "_locked", counting)
    try:
        key = record(rpm=1000)
        await store.create_key(key)

        def slow_batch(c: sqlite3.Connection, now: float) -> None:
            c.execute("INSERT INTO kv (namespace, key, value) VALUES ('t', 'k', x'00')")
            time.sleep(0.3)  # on the thread, holding the write lock

        batch = asyncio.get_running_loop().create_task(store._tx(slow_batch, inline=False))
        await asyncio.sleep(0.05)  # the thread has begun
        answers = await asyncio.gather(*(store.admit(key.id, None, 10) for _ in range(20)))
        await batch
        assert all(a.ok for a in answers)
        assert on_thread == ["slow_batch"]
        assert (await store.usage(key.id)).requests_in_window == 20
    finally:
        await store.aclose()


async def test_sqlite_wal_stays_bounded_under_traffic_that_never_pauses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Transactions back to back, never a pause between them: a passive checkpoint never catches up with
    them, so once the WAL is past its reset size a checkpoint resets it, and it holds at most that and one
    checkpoint interval's frames. Without the reset it grew by every transaction's pages (1 GB in 25,000
    keyed requests)."""
    monkeypatch.setattr(sqlite_tx, "WAL_RESET_BYTES", 1024 * 1024)
    store = SqliteStore(tmp_path / "state.db", window_s=WINDOW_S)
    await store.start()
    wal = tmp_path / "state.db-wal"
    try:
        key = record(rpm=10**9, tpm=10**12, budget_usd=10**9, budget_period="1d")
        await store.create_key(key)
        sizes: list[int] = []
        for i in range(4 * CHECKPOINT_EVERY):
            assert (await store.admit(key.id, None, 10)).ok
            await store.settle(key.id, None, 0.001, "m", 10)
            if i % CHECKPOINT_EVERY == CHECKPOINT_EVERY - 1:
                sizes.append(wal.stat().st_size)
        unbounded = 4 * CHECKPOINT_EVERY * 2 * 4096  # at least one page per transaction
        assert max(sizes) < unbounded / 2, sizes
        assert (await store.usage(key.id)).requests_in_window == 4 * CHECKPOINT_EVERY  # nothing was lost
    finally:
        await store.aclose()


async def test_max_parallel_leases_are_released_and_expire(store: StateStore) -> None:
    key = record(max_parallel=2)
    await store.create_key(key)
    first, second = await store.admit(key.id, "l1", 10), await store.admit(key.id, "l2", 10)
    assert first.ok and first.leased and second.ok
    third = await store.admit(key.id, "l3", 10)
    assert third.refusal == "parallel" and third.retry_after
    assert (await store.usage(key.id)).parallel == 2
    await store.release_lease(key.id, "l1")
    assert (await store.admit(key.id, "l4", 0.3)).ok  # a short lease: the worker "dies" holding it
    assert not (await store.admit(key.id, "l5", 10)).ok
    await asyncio.sleep(0.6)
    assert (await store.admit(key.id, "l6", 0.3)).ok  # l4 expired by itself
    await store.renew_lease(key.id, "l6", 10)  # renewed: it no longer expires soon
    await asyncio.sleep(0.6)
    assert not (await store.admit(key.id, "l7", 10)).ok
    unlimited = record()
    await store.create_key(unlimited)
    assert not (await store.admit(unlimited.id, "l", 10)).leased  # no max_parallel: no lease taken


async def test_reservations_hold_the_budget_until_settled(store: StateStore) -> None:
    key = record(budget_usd=1.0, budget_period="1d")
    await store.create_key(key)
    assert (await store.reserve(key.id, "r1", 0.6, 10)).ok
    second = await store.reserve(key.id, "r2", 0.6, 10)  # 0.6 < 1.0: admitted, may overspend by one
    assert second.ok and second.reserved == pytest.approx(1.2)
    held = await store.reserve(key.id, "r3", 0.01, 10)
    assert held.refusal == "budget" and held.spent == 0 and held.retry_after == 1.0  # held, not spent
    await store.settle(key.id, "r1", 0.25, "model-a", 30)
    await store.settle(key.id, "r2", 0.5, "model-b", 30)
    usage = await store.usage(key.id)
    assert usage.spent_usd == pytest.approx(0.75) and usage.reserved_usd == 0
    assert usage.spend_by_model == pytest.approx({"model-a": 0.25, "model-b": 0.5})
    assert (await store.admit(key.id, None, 10)).ok
    await store.settle(key.id, None, 0.3, "model-a", 0)  # spend now 1.05: the budget is spent
    spent = await store.admit(key.id, None, 10)
    assert spent.refusal == "budget" and spent.retry_after is not None and 0 < spent.retry_after <= 86400
    assert (await store.reserve(key.id, "r4", 0.0, 10)).refusal == "budget"


async def test_expired_reservations_free_the_budget(store: StateStore) -> None:
    key = record(budget_usd=1.0)
    await store.create_key(key)
    assert (await store.reserve(key.id, "r1", 5.0, 0.3)).ok  # the worker dies holding it
    assert not (await store.reserve(key.id, "r2", 0.1, 10)).ok
    await asyncio.sleep(0.6)
    assert (await store.reserve(key.id, "r3", 0.1, 10)).ok


async def test_concurrent_reservations_never_overspend_by_more_than_one(store: StateStore) -> None:
    key = record(budget_usd=1.0)
    await store.create_key(key)

    async def call() -> None:
        rid = uid()
        if (await store.reserve(key.id, rid, 0.3, 10)).ok:
            await asyncio.sleep(0.01)
            await store.settle(key.id, rid, 0.25, "m", 10)

    await asyncio.gather(*(call() for _ in range(40)))
    usage = await store.usage(key.id)
    assert 1.0 <= usage.spent_usd <= 1.0 + 0.3 and usage.reserved_usd == 0


async def test_a_new_budget_period_starts_when_it_changes(store: StateStore) -> None:
    key = record(budget_usd=1.0, budget_period="30d")
    await store.create_key(key)
    await store.settle(key.id, None, 2.0, "m", 0)
    assert (await store.admit(key.id, None, 10)).refusal == "budget"
    await store.update_key(key.id, {"budget_period": "1d"})
    usage = await store.usage(key.id)
    assert usage.spent_usd == 0 and usage.total_spend_usd == pytest.approx(2.0) and usage.spend_by_model == {}
    assert usage.period_start >= key.created_at
    assert (await store.admit(key.id, None, 10)).ok


async def test_key_value_with_expiry(store: StateStore) -> None:
    assert await store.kv_get("responses", "a") is None
    await store.kv_set("responses", "a", b"\x00binary\xff")
    await store.kv_set("feedback", "a", b"other namespace", ttl_s=0.3)
    assert await store.kv_get("responses", "a") == b"\x00binary\xff"
    assert await store.kv_get("feedback", "a") == b"other namespace"
    await asyncio.sleep(0.6)
    assert await store.kv_get("feedback", "a") is None
    assert await store.kv_delete("responses", "a") and not await store.kv_delete("responses", "a")


async def test_sqlite_deletes_expired_entries_by_their_index(tmp_path: Path) -> None:
    """Batches (the routing decisions, one per request) count towards the sweep of expired entries too, and
    the sweep reads the expiry index, not the whole table."""
    now = [1_000.0]
    store = SqliteStore(tmp_path / "state.db", clock=lambda: now[0])
    await store.start()
    try:
        await store.kv_set_many("decisions", [(f"old{i}", b"x") for i in range(100)], ttl_s=10)
        await store.kv_set("responses", "kept", b"y")  # no expiry
        now[0] += 60
        await store.kv_set_many("decisions", [(f"new{i}", b"x") for i in range(KV_SWEEP_EVERY)], ttl_s=10)
        with sqlite3.connect(store.path) as db:
            (left,) = db.execute("SELECT COUNT(*) FROM kv WHERE key LIKE 'old%'").fetchone()
            (total,) = db.execute("SELECT COUNT(*) FROM kv").fetchone()
            plan = db.execute(
                "EXPLAIN QUERY PLAN DELETE FROM kv WHERE expires_at IS NOT NULL AND expires_at <= 1"
            ).fetchall()
        assert left == 0 and total == KV_SWEEP_EVERY + 1
        assert any("kv_by_expiry" in str(row) for row in plan), plan
    finally:
        await store.aclose()


async def test_sqlite_file_made_before_its_tables_lost_their_rowids_still_works(tmp_path: Path) -> None:
    """The tables a decision writes are ``WITHOUT ROWID`` (one B-tree each instead of the table and its
    primary key's index: a fifth fewer pages written per keyed request). A file made by an earlier release
    keeps its tables (``CREATE TABLE IF NOT EXISTS``) and every operation works on them as before."""
    path = tmp_path / "state.db"
    with sqlite3.connect(path) as db:
        db.executescript(SCHEMA.replace(" WITHOUT ROWID", ""))
    store = SqliteStore(path, window_s=WINDOW_S)
    await store.start()
    try:
        key = record(rpm=2, tpm=1_000, max_parallel=1, budget_usd=1.0, budget_period="1d")
        await store.create_key(key)
        assert (await store.admit(key.id, "lease1", 10)).ok
        assert (await store.reserve(key.id, "res1", 0.4, 10)).ok
        await store.settle(key.id, "res1", 0.3, "m", 50)
        await store.release_lease(key.id, "lease1")
        assert (await store.admit(key.id, None, 10)).ok
        assert (await store.admit(key.id, None, 10)).refusal == "rpm"
        usage = await store.usage(key.id)
        assert (usage.requests_in_window, usage.tokens_in_window, usage.spent_usd) == (2, 50, pytest.approx(0.3))
        with sqlite3.connect(path) as db:
            (sql,) = db.execute("SELECT sql FROM sqlite_master WHERE name = 'rate'").fetchone()
        assert "WITHOUT ROWID" not in sql
    finally:
        await store.aclose()


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_sqlite_periods_roll_over_and_state_survives_a_restart(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "state.db"
    store = SqliteStore(path, clock=clock)
    await store.start()
    key = record(budget_usd=1.0, budget_period="1h", created_at=clock.now)
    await store.create_key(key)
    await store.settle(key.id, None, 1.5, "m", 0)
    assert (await store.admit(key.id, None, 10)).refusal == "budget"
    await store.aclose()

    store = SqliteStore(path, clock=clock)  # a restart keeps the key and its spend
    await store.start()
    try:
        assert await store.find_key(key.secret_hash) == key
        assert (await store.usage(key.id)).spent_usd == pytest.approx(1.5)
        clock.now += 3600 * 2.5  # two and a half periods later: a fresh period, aligned on the creation
        usage = await store.usage(key.id)
        assert usage.spent_usd == 0 and usage.period_start == key.created_at + 7200
        assert usage.total_spend_usd == pytest.approx(1.5)
        assert (await store.admit(key.id, None, 10)).ok
    finally:
        await store.aclose()
    assert oct(path.stat().st_mode & 0o777) == "0o600"
