"""The embedded store: one SQLite file (WAL), shared by every worker process on the machine.

Each operation is one transaction started with ``BEGIN IMMEDIATE``, which takes the database's write lock
before reading, so the read and the write of a rate window, a lease or a reservation are never interleaved
with another process's (writers queue on the lock for up to ``busy_timeout_s``). A transaction runs on the
event loop's own connection when the lock is free (a few page writes to the WAL: no disk sync, which only the
checkpoints do), and on the store's thread, which waits for the lock, when another process holds it: the
event loop never waits on a lock or on the disk. The file survives restarts; ``":memory:"`` makes a private
in-memory store (the governance service's local fallback), all on the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from app.state.base import StoreUnavailableError
from app.state.records import (
    RATE_WINDOW_S,
    Admission,
    KeyRecord,
    KeyUsage,
    period_start,
    refused,
    window_retry,
    window_slice,
)

T = TypeVar("T")
Clock = Callable[[], float]

SCHEMA = """
CREATE TABLE IF NOT EXISTS keys (id TEXT PRIMARY KEY, secret_hash TEXT NOT NULL UNIQUE, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS spend (
    key_id TEXT PRIMARY KEY, period_start REAL NOT NULL, spent REAL NOT NULL, total REAL NOT NULL);
CREATE TABLE IF NOT EXISTS spend_model (
    key_id TEXT NOT NULL, model TEXT NOT NULL, period_start REAL NOT NULL, spent REAL NOT NULL,
    total REAL NOT NULL, PRIMARY KEY (key_id, model));
CREATE TABLE IF NOT EXISTS rate (
    key_id TEXT NOT NULL, kind TEXT NOT NULL, slice INTEGER NOT NULL, amount INTEGER NOT NULL, latest REAL NOT NULL,
    PRIMARY KEY (key_id, kind, slice));
CREATE TABLE IF NOT EXISTS leases (id TEXT PRIMARY KEY, key_id TEXT NOT NULL, expires_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS leases_by_key ON leases (key_id, expires_at);
CREATE TABLE IF NOT EXISTS reservations (
    id TEXT PRIMARY KEY, key_id TEXT NOT NULL, amount REAL NOT NULL, expires_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS reservations_by_key ON reservations (key_id, expires_at);
CREATE TABLE IF NOT EXISTS kv (
    namespace TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL, expires_at REAL,
    PRIMARY KEY (namespace, key));
CREATE INDEX IF NOT EXISTS kv_by_expiry ON kv (expires_at) WHERE expires_at IS NOT NULL;
"""
REQUESTS, TOKENS = "r", "t"


KV_SWEEP_EVERY = 256
"""Key/value writes between two deletions of the expired entries (by their index on ``expires_at``)."""

CHECKPOINT_EVERY = 500
"""Transactions committed on the event loop's connection between two WAL checkpoints, which run on the
store's thread (a checkpoint syncs the file to disk)."""


class SqliteStore:
    """See the module docstring. ``clock`` (Unix seconds) and ``window_s`` are injectable for tests."""

    kind = "sqlite"

    def __init__(
        self,
        path: str | Path,
        *,
        clock: Clock = time.time,
        window_s: float = RATE_WINDOW_S,
        busy_timeout_s: float = 5.0,
    ) -> None:
        self.path = str(path)
        self.description = "in-memory" if self.path == ":memory:" else f"sqlite file {self.path}"
        self.clock, self.window_s, self.busy_timeout_s = clock, window_s, busy_timeout_s
        self._pool: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None  # the thread's: waits for the write lock
        self._inline: sqlite3.Connection | None = None  # the event loop's: never waits (busy: the thread's)
        self._kv_writes = 0
        self._since_checkpoint = 0
        self._threaded = 0  # transactions on the thread, begun or queued
        self._thread_idle = asyncio.Event()  # set while there are none
        self._thread_idle.set()

    # -- plumbing -----------------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._inline is not None:
            return
        if self.path == ":memory:":  # a private database: no other writer, no disk, so no thread either
            inline = self._connect(self.path, wait_s=0.0)
            inline.executescript(SCHEMA)
            self._inline = inline
            return
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="switchyard-state")
        await self._call(self._open)
        inline = self._connect(self.path, wait_s=0.0)
        inline.execute("PRAGMA wal_autocheckpoint = 0")  # the thread checkpoints (CHECKPOINT_EVERY)
        self._inline = inline

    def _open(self) -> None:
        file = Path(self.path)
        file.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(file, os.O_CREAT | os.O_RDWR, 0o600))  # hashes only, but still not world-readable
        conn = self._connect(self.path, wait_s=self.busy_timeout_s)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.executescript(SCHEMA)  # idempotent statements: workers starting together may all run them
        self._conn = conn

    @staticmethod
    def _connect(path: str, *, wait_s: float) -> sqlite3.Connection:
        """A connection that waits up to ``wait_s`` for another writer's lock (0: fails at once, busy)."""
        conn = sqlite3.connect(path, timeout=wait_s, isolation_level=None)  # used by the thread that made it
        conn.execute(f"PRAGMA busy_timeout = {int(wait_s * 1000)}")
        if path != ":memory:":
            conn.execute("PRAGMA synchronous = NORMAL")  # WAL: a commit is a write, the sync is the checkpoint's
        return conn

    async def aclose(self) -> None:
        inline, self._inline = self._inline, None
        if inline is not None:
            inline.close()
        pool, self._pool = self._pool, None
        if pool is None:
            return
        conn, self._conn = self._conn, None
        if conn is not None:
            await asyncio.get_running_loop().run_in_executor(pool, conn.close)
        pool.shutdown(wait=True)

    async def _call(self, fn: Callable[[], T]) -> T:
        if self._pool is None:
            raise StoreUnavailableError("the embedded store is not open")
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, fn)
        except sqlite3.OperationalError as exc:  # locked for longer than busy_timeout, disk I/O error
            raise StoreUnavailableError(f"sqlite: {exc}") from exc

    async def _tx(self, fn: Callable[[sqlite3.Connection, float], T], *, inline: bool = True) -> T:
        """``fn(connection, now)`` in one ``BEGIN IMMEDIATE`` transaction: on the event loop's own connection
        when the write lock is free (a transaction here is a few page writes to the WAL, tens of
        microseconds, where a hop to the thread and back cost ~100 us of CPU), else on the thread, which
        waits for the lock up to ``busy_timeout_s``. The loop never waits on a lock or a disk sync.
        ``inline=False``: always on the thread (the background writers' batches and the scans, whose size is
        the caller's)."""
        conn = self._inline if inline or self._pool is None else None
        while conn is not None:
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY:
                    raise StoreUnavailableError(f"sqlite: {exc}") from exc
                if not self._threaded:
                    break  # another process holds the lock: the thread waits for it
                # most likely the lock is our own thread's: wait for it to finish and try here again. Queuing
                # behind it would hold the lock on the thread for the next one too, and each one after would
                # find it busy in turn (measured: 45% of transactions on the thread, on 2 cores)
                await self._thread_idle.wait()
                continue
            try:
                result = self._run(conn, fn)
            except sqlite3.OperationalError as exc:  # disk I/O error, disk full: the transaction is over
                if conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                raise StoreUnavailableError(f"sqlite: {exc}") from exc
            self._committed()
            return result
        self._threaded += 1
        self._thread_idle.clear()
        try:
            return await self._call(lambda: self._locked(fn))
        finally:
            self._threaded -= 1
            if not self._threaded:
                self._thread_idle.set()

    def _locked(self, fn: Callable[[sqlite3.Connection, float], T]) -> T:
        """On the thread: ``fn`` in a transaction of the thread's connection."""
        conn = self._conn
        assert conn is not None
        conn.execute("BEGIN IMMEDIATE")
        return self._run(conn, fn)

    def _run(self, conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection, float], T]) -> T:
        """``fn`` inside the transaction ``conn`` has begun; committed, or rolled back if it raises."""
        try:
            result = fn(conn, self.clock())
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    def _committed(self) -> None:
        """Count an inline commit; every ``CHECKPOINT_EVERY`` the thread checkpoints the WAL into the file."""
        self._since_checkpoint += 1
        if self._since_checkpoint >= CHECKPOINT_EVERY and self._pool is not None:
            self._since_checkpoint = 0
            self._pool.submit(self._checkpoint)

    def _checkpoint(self) -> None:
        conn = self._conn
        if conn is not None:
            with contextlib.suppress(sqlite3.Error):  # the next one will do; the WAL only grows meanwhile
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    # -- keys ---------------------------------------------------------------------------------------------

    async def create_key(self, record: KeyRecord) -> None:
        def run(c: sqlite3.Connection, now: float) -> None:
            c.execute(
                "INSERT INTO keys (id, secret_hash, record) VALUES (?, ?, ?)",
                (record.id, record.secret_hash, json.dumps(record.to_json())),
            )

        await self._tx(run)

    async def get_key(self, key_id: str) -> KeyRecord | None:
        return await self._tx(lambda c, now: _load(c, key_id))

    async def find_key(self, secret_hash: str) -> KeyRecord | None:
        def run(c: sqlite3.Connection, now: float) -> KeyRecord | None:
            row = c.execute("SELECT record FROM keys WHERE secret_hash = ?", (secret_hash,)).fetchone()
            return None if row is None else KeyRecord.from_json(json.loads(row[0]))

        return await self._tx(run)

    async def list_keys(self) -> list[KeyRecord]:
        def run(c: sqlite3.Connection, now: float) -> list[KeyRecord]:
            rows = c.execute("SELECT record FROM keys").fetchall()
            return sorted((KeyRecord.from_json(json.loads(r[0])) for r in rows), key=lambda k: (k.created_at, k.id))

        return await self._tx(run, inline=False)

    async def update_key(self, key_id: str, changes: dict[str, Any]) -> KeyRecord | None:
        def run(c: sqlite3.Connection, now: float) -> KeyRecord | None:
            record = _load(c, key_id)
            if record is None:
                return None
            updated = record.with_changes(changes, now)
            c.execute("UPDATE keys SET record = ? WHERE id = ?", (json.dumps(updated.to_json()), key_id))
            if updated.anchor != record.anchor:  # a new budget period starts now
                c.execute("UPDATE spend SET period_start = ?, spent = 0 WHERE key_id = ?", (updated.anchor, key_id))
            return updated

        return await self._tx(run)

    # -- governance ---------------------------------------------------------------------------------------

    async def admit(self, key_id: str, lease_id: str | None, lease_ttl_s: float) -> Admission:
        window = self.window_s

        def run(c: sqlite3.Connection, now: float) -> Admission:
            record = _load(c, key_id)
            if record is None:
                return refused("missing")
            if record.revoked_at is not None:
                return refused("revoked")
            if record.is_expired(now):
                return refused("expired")
            start, spent = _roll(c, record, now)
            if record.budget_usd is not None and spent >= record.budget_usd:
                return refused("budget", _period_left(record, start, now), spent=spent, period_start=start)
            if record.rpm is not None:
                retry = window_retry(_window(c, key_id, REQUESTS, now, window), record.rpm, now, window)
                if retry is not None:
                    return refused("rpm", retry)
            if record.tpm is not None:
                retry = window_retry(_window(c, key_id, TOKENS, now, window), record.tpm, now, window)
                if retry is not None:
                    return refused("tpm", retry)
            lease = lease_id is not None and record.max_parallel is not None
            if lease:
                c.execute("DELETE FROM leases WHERE key_id = ? AND expires_at <= ?", (key_id, now))
                (held,) = c.execute("SELECT COUNT(*) FROM leases WHERE key_id = ?", (key_id,)).fetchone()
                if record.max_parallel is not None and held >= record.max_parallel:
                    return refused("parallel", 1.0)
                c.execute(
                    "INSERT INTO leases (id, key_id, expires_at) VALUES (?, ?, ?)",
                    (lease_id, key_id, now + lease_ttl_s),
                )
            if record.rpm is not None:
                _count(c, key_id, REQUESTS, now, window, 1)
            return Admission(True, spent=spent, period_start=start, leased=lease)

        return await self._tx(run)

    async def release_lease(self, key_id: str, lease_id: str) -> None:
        def run(c: sqlite3.Connection, now: float) -> None:
            c.execute("DELETE FROM leases WHERE id = ? AND key_id = ?", (lease_id, key_id))

        await self._tx(run)

    async def renew_lease(self, key_id: str, lease_id: str, ttl_s: float) -> None:
        def run(c: sqlite3.Connection, now: float) -> None:
            c.execute("UPDATE leases SET expires_at = ? WHERE id = ? AND key_id = ?", (now + ttl_s, lease_id, key_id))

        await self._tx(run)

    async def reserve(self, key_id: str, reservation_id: str, amount: float, ttl_s: float) -> Admission:
        def run(c: sqlite3.Connection, now: float) -> Admission:
            record = _load(c, key_id)
            if record is None:
                return refused("missing")
            if record.revoked_at is not None:
                return refused("revoked")
            if record.budget_usd is None:
                return Admission(True)
            start, spent = _roll(c, record, now)
            c.execute("DELETE FROM reservations WHERE key_id = ? AND expires_at <= ?", (key_id, now))
            (reserved,) = c.execute(
                "SELECT COALESCE(SUM(amount), 0) FROM reservations WHERE key_id = ?", (key_id,)
            ).fetchone()
            if spent + reserved >= record.budget_usd:
                retry = 1.0 if spent < record.budget_usd else _period_left(record, start, now)
                return refused("budget", retry, spent=spent, reserved=reserved, period_start=start)
            c.execute(
                "INSERT INTO reservations (id, key_id, amount, expires_at) VALUES (?, ?, ?, ?)",
                (reservation_id, key_id, amount, now + ttl_s),
            )
            return Admission(True, spent=spent, reserved=reserved + amount, period_start=start)

        return await self._tx(run)

    async def settle(self, key_id: str, reservation_id: str | None, cost: float, model: str, tokens: int) -> None:
        window = self.window_s

        def run(c: sqlite3.Connection, now: float) -> None:
            if reservation_id is not None:
                c.execute("DELETE FROM reservations WHERE id = ?", (reservation_id,))
            record = _load(c, key_id)
            if record is None:
                return
            start, _ = _roll(c, record, now)
            if cost > 0:
                c.execute(
                    "UPDATE spend SET spent = spent + ?, total = total + ? WHERE key_id = ?", (cost, cost, key_id)
                )
                c.execute(
                    "INSERT INTO spend_model (key_id, model, period_start, spent, total) VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT (key_id, model) DO UPDATE SET "
                    "spent = CASE WHEN period_start < excluded.period_start THEN excluded.spent "
                    "ELSE spent + excluded.spent END, "
                    "period_start = MAX(period_start, excluded.period_start), total = total + excluded.total",
                    (key_id, model, start, cost, cost),
                )
            if tokens > 0 and record.tpm is not None:
                _count(c, key_id, TOKENS, now, window, tokens)

        await self._tx(run)

    async def usage(self, key_id: str) -> KeyUsage:
        window = self.window_s

        def run(c: sqlite3.Connection, now: float) -> KeyUsage:
            record = _load(c, key_id)
            if record is None:
                return KeyUsage(0.0, 0.0, 0.0, 0.0, {}, 0, 0, 0)
            start, spent = _roll(c, record, now)
            (total,) = c.execute("SELECT total FROM spend WHERE key_id = ?", (key_id,)).fetchone()
            by_model = {
                m: s
                for m, s in c.execute(
                    "SELECT model, spent FROM spend_model WHERE key_id = ? AND period_start >= ?", (key_id, start)
                )
            }
            (reserved,) = c.execute(
                "SELECT COALESCE(SUM(amount), 0) FROM reservations WHERE key_id = ? AND expires_at > ?", (key_id, now)
            ).fetchone()
            (leases,) = c.execute(
                "SELECT COUNT(*) FROM leases WHERE key_id = ? AND expires_at > ?", (key_id, now)
            ).fetchone()
            requests = sum(amount for amount, _ in _window(c, key_id, REQUESTS, now, window))
            tokens = sum(amount for amount, _ in _window(c, key_id, TOKENS, now, window))
            return KeyUsage(start, spent, float(reserved), float(total), by_model, requests, tokens, int(leases))

        return await self._tx(run)

    # -- key/value ----------------------------------------------------------------------------------------

    async def kv_get(self, namespace: str, key: str) -> bytes | None:
        def run(c: sqlite3.Connection, now: float) -> bytes | None:
            row = c.execute(
                "SELECT value FROM kv WHERE namespace = ? AND key = ? AND (expires_at IS NULL OR expires_at > ?)",
                (namespace, key, now),
            ).fetchone()
            return None if row is None else bytes(row[0])

        return await self._tx(run)

    async def kv_set(self, namespace: str, key: str, value: bytes, ttl_s: float | None = None) -> None:
        sweep = self._count_kv_writes(1)

        def run(c: sqlite3.Connection, now: float) -> None:
            expires = None if ttl_s is None else now + ttl_s
            c.execute(
                "INSERT OR REPLACE INTO kv (namespace, key, value, expires_at) VALUES (?, ?, ?, ?)",
                (namespace, key, value, expires),
            )
            if sweep:
                _sweep_kv(c, now)

        await self._tx(run, inline=not sweep)  # a sweep's size is the expired rows': on the thread

    async def kv_set_many(self, namespace: str, items: Sequence[tuple[str, bytes]], ttl_s: float | None = None) -> None:
        if not items:
            return
        sweep = self._count_kv_writes(len(items))

        def run(c: sqlite3.Connection, now: float) -> None:
            expires = None if ttl_s is None else now + ttl_s
            c.executemany(
                "INSERT OR REPLACE INTO kv (namespace, key, value, expires_at) VALUES (?, ?, ?, ?)",
                [(namespace, key, value, expires) for key, value in items],
            )
            if sweep:
                _sweep_kv(c, now)

        await self._tx(run, inline=False)

    def _count_kv_writes(self, written: int) -> bool:
        """Count key/value writes; True when this one should also delete the expired entries (one in
        ``KV_SWEEP_EVERY`` writes, the batches' included: they are most of them)."""
        before = self._kv_writes
        self._kv_writes += written
        return before // KV_SWEEP_EVERY != self._kv_writes // KV_SWEEP_EVERY

    async def kv_delete(self, namespace: str, key: str) -> bool:
        def run(c: sqlite3.Connection, now: float) -> bool:
            return c.execute("DELETE FROM kv WHERE namespace = ? AND key = ?", (namespace, key)).rowcount > 0

        return await self._tx(run)

    async def kv_scan(self, namespace: str, limit: int | None = None) -> list[tuple[str, bytes]]:
        if limit is not None and limit <= 0:
            return []

        def run(c: sqlite3.Connection, now: float) -> list[tuple[str, bytes]]:
            rows = c.execute(
                "SELECT key, value FROM kv WHERE namespace = ? AND (expires_at IS NULL OR expires_at > ?) "
                "ORDER BY key LIMIT ?",
                (namespace, now, -1 if limit is None else limit),
            ).fetchall()
            return [(str(key), bytes(value)) for key, value in rows]

        return await self._tx(run, inline=False)


# -- helpers, run inside a transaction ---------------------------------------------------------------------


MAX_PARSED = 1024
_parsed: dict[str, KeyRecord] = {}
"""Records by their stored JSON text: a key's every request loads its record, which changes rarely (a
record is a value; a changed one is other text). Bounded: cleared when full."""


def _sweep_kv(c: sqlite3.Connection, now: float) -> None:
    """Delete the expired key/value entries: a range of the expiry index, not a scan of the table (the
    routing decisions alone are one entry per request, kept 30 days by default)."""
    c.execute("DELETE FROM kv WHERE expires_at IS NOT NULL AND expires_at <= ?", (now,))


def _load(c: sqlite3.Connection, key_id: str) -> KeyRecord | None:
    row = c.execute("SELECT record FROM keys WHERE id = ?", (key_id,)).fetchone()
    if row is None:
        return None
    text: str = row[0]
    record = _parsed.get(text)
    if record is None:
        if len(_parsed) >= MAX_PARSED:
            _parsed.clear()
        record = _parsed[text] = KeyRecord.from_json(json.loads(text))
    return record


def _roll(c: sqlite3.Connection, record: KeyRecord, now: float) -> tuple[float, float]:
    """The current period's start and settled spend, starting a new period when the stored one is over."""
    start = period_start(record.anchor, record.period_s, now)
    row = c.execute("SELECT period_start, spent FROM spend WHERE key_id = ?", (record.id,)).fetchone()
    if row is None:
        c.execute("INSERT INTO spend (key_id, period_start, spent, total) VALUES (?, ?, 0, 0)", (record.id, start))
        return start, 0.0
    stored, spent = row
    if stored < start:
        c.execute("UPDATE spend SET period_start = ?, spent = 0 WHERE key_id = ?", (start, record.id))
        return start, 0.0
    return float(stored), float(spent)


def _window(c: sqlite3.Connection, key_id: str, kind: str, now: float, window: float) -> list[tuple[int, float]]:
    """The live slices of a rate window, (amount, latest event time) oldest first (the expired ones are
    deleted): at most ``WINDOW_SLICES + 1`` rows, whatever the key's traffic."""
    rows = c.execute(
        "SELECT amount, latest FROM rate WHERE key_id = ? AND kind = ? ORDER BY slice", (key_id, kind)
    ).fetchall()
    since = now - window
    if rows and rows[0][1] <= since:  # slices leave oldest first, one per slice length: most reads delete none
        c.execute("DELETE FROM rate WHERE key_id = ? AND kind = ? AND latest <= ?", (key_id, kind, since))
        rows = [row for row in rows if row[1] > since]
    return [(int(amount), float(latest)) for amount, latest in rows]


def _count(c: sqlite3.Connection, key_id: str, kind: str, now: float, window: float, amount: int) -> None:
    """Add ``amount`` to the rate window's slice that holds ``now``."""
    c.execute(
        "INSERT INTO rate (key_id, kind, slice, amount, latest) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (key_id, kind, slice) DO UPDATE SET amount = amount + excluded.amount, "
        "latest = MAX(latest, excluded.latest)",
        (key_id, kind, window_slice(now, window), amount, now),
    )


def _period_left(record: KeyRecord, start: float, now: float) -> float | None:
    return None if record.period_s is None else start + record.period_s - now
