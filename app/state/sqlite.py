"""The embedded store: one SQLite file (WAL), shared by every worker process on the machine.

Each operation is one transaction (``app.state.sqlite_tx``: ``BEGIN IMMEDIATE``, on the event loop while no
other process holds the file's write lock), so the read and the write of a rate window, a lease or a
reservation are never interleaved with another process's. The file survives restarts; ``":memory:"`` makes a
private in-memory store (the governance service's local fallback).
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

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
from app.state.sqlite_kv import KV_SCHEMA, KeyValueTables
from app.state.sqlite_tx import Clock, Transactions

GOVERNANCE_SCHEMA = """
CREATE TABLE IF NOT EXISTS keys (id TEXT PRIMARY KEY, secret_hash TEXT NOT NULL UNIQUE, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS spend (
    key_id TEXT PRIMARY KEY, period_start REAL NOT NULL, spent REAL NOT NULL, total REAL NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS spend_model (
    key_id TEXT NOT NULL, model TEXT NOT NULL, period_start REAL NOT NULL, spent REAL NOT NULL,
    total REAL NOT NULL, PRIMARY KEY (key_id, model)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rate (
    key_id TEXT NOT NULL, kind TEXT NOT NULL, slice INTEGER NOT NULL, amount INTEGER NOT NULL, latest REAL NOT NULL,
    PRIMARY KEY (key_id, kind, slice)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS leases (id TEXT PRIMARY KEY, key_id TEXT NOT NULL, expires_at REAL NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS leases_by_key ON leases (key_id, expires_at);
CREATE TABLE IF NOT EXISTS reservations (
    id TEXT PRIMARY KEY, key_id TEXT NOT NULL, amount REAL NOT NULL, expires_at REAL NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS reservations_by_key ON reservations (key_id, expires_at);
"""
SCHEMA = GOVERNANCE_SCHEMA + KV_SCHEMA
REQUESTS, TOKENS = "r", "t"


class SqliteStore(KeyValueTables):
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
        self.window_s = window_s
        self._transactions = Transactions(self.path, clock, busy_timeout_s)
        self._tx = self._transactions.run
        self._kv_writes = 0  # see KeyValueTables

    async def start(self) -> None:
        await self._transactions.start(SCHEMA)

    async def aclose(self) -> None:
        await self._transactions.aclose()

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
            loaded = _load_with_spend(c, key_id)
            if loaded is None:
                return refused("missing")
            record, stored = loaded
            if record.revoked_at is not None:
                return refused("revoked")
            if record.is_expired(now):
                return refused("expired")
            start, spent = _roll(c, record, stored, now)
            if record.budget_usd is not None and spent >= record.budget_usd:
                return refused("budget", _period_left(record, start, now), spent=spent, period_start=start)
            if record.rpm is not None:
                retry = _window_retry(c, key_id, REQUESTS, now, window, record.rpm)
                if retry is not None:
                    return refused("rpm", retry)
            if record.tpm is not None:
                retry = _window_retry(c, key_id, TOKENS, now, window, record.tpm)
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
            loaded = _load_with_spend(c, key_id)
            if loaded is None:
                return refused("missing")
            record, stored = loaded
            if record.revoked_at is not None:
                return refused("revoked")
            if record.budget_usd is None:
                return Admission(True)
            start, spent = _roll(c, record, stored, now)
            reserved, oldest = c.execute(
                "SELECT COALESCE(SUM(CASE WHEN expires_at > ? THEN amount END), 0), MIN(expires_at) "
                "FROM reservations WHERE key_id = ?",
                (now, key_id),
            ).fetchone()
            if oldest is not None and oldest <= now:  # a reservation its worker never settled (it died)
                c.execute("DELETE FROM reservations WHERE key_id = ? AND expires_at <= ?", (key_id, now))
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
            loaded = _load_with_spend(c, key_id)
            if loaded is None:
                return
            record, stored = loaded
            start, _ = _roll(c, record, stored, now)
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
            loaded = _load_with_spend(c, key_id)
            if loaded is None:
                return KeyUsage(0.0, 0.0, 0.0, 0.0, {}, 0, 0, 0)
            record, stored = loaded
            start, spent = _roll(c, record, stored, now)
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
            requests = _window_used(c, key_id, REQUESTS, now, window)
            tokens = _window_used(c, key_id, TOKENS, now, window)
            return KeyUsage(start, spent, float(reserved), float(total), by_model, requests, tokens, int(leases))

        return await self._tx(run)


# -- helpers, run inside a transaction ---------------------------------------------------------------------


MAX_PARSED = 1024
_parsed: dict[str, KeyRecord] = {}
"""Records by their stored JSON text: a key's every request loads its record, which changes rarely (a
record is a value; a changed one is other text). Bounded: cleared when full."""


def _load(c: sqlite3.Connection, key_id: str) -> KeyRecord | None:
    row = c.execute("SELECT record FROM keys WHERE id = ?", (key_id,)).fetchone()
    return None if row is None else _parsed_record(row[0])


Stored = tuple[float, float] | None
"""A key's stored spend row: (period start, settled spend), None before its first request."""


def _load_with_spend(c: sqlite3.Connection, key_id: str) -> tuple[KeyRecord, Stored] | None:
    """The key and its stored spend, in one read (``_roll`` makes the spend current)."""
    row = c.execute(
        "SELECT k.record, s.period_start, s.spent FROM keys k LEFT JOIN spend s ON s.key_id = k.id WHERE k.id = ?",
        (key_id,),
    ).fetchone()
    if row is None:
        return None
    text, stored, spent = row
    return _parsed_record(text), (None if stored is None else (float(stored), float(spent)))


def _parsed_record(text: str) -> KeyRecord:
    record = _parsed.get(text)
    if record is None:
        if len(_parsed) >= MAX_PARSED:
            _parsed.clear()
        record = _parsed[text] = KeyRecord.from_json(json.loads(text))
    return record


def _roll(c: sqlite3.Connection, record: KeyRecord, stored: Stored, now: float) -> tuple[float, float]:
    """The current period's start and settled spend, starting a new period when the ``stored`` one is over."""
    start = period_start(record.anchor, record.period_s, now)
    if stored is None:
        c.execute("INSERT INTO spend (key_id, period_start, spent, total) VALUES (?, ?, 0, 0)", (record.id, start))
        return start, 0.0
    if stored[0] < start:
        c.execute("UPDATE spend SET period_start = ?, spent = 0 WHERE key_id = ?", (start, record.id))
        return start, 0.0
    return stored


def _window_used(c: sqlite3.Connection, key_id: str, kind: str, now: float, window: float) -> int:
    """What a rate window holds now, summed by SQLite (no row reaches Python); its expired slices are
    deleted when there is one."""
    since = now - window
    used, oldest = c.execute(
        "SELECT COALESCE(SUM(CASE WHEN latest > ? THEN amount END), 0), MIN(latest) FROM rate "
        "WHERE key_id = ? AND kind = ?",
        (since, key_id, kind),
    ).fetchone()
    if (
        oldest is not None and oldest <= since
    ):  # slices leave oldest first, one per slice length: most reads delete none
        c.execute("DELETE FROM rate WHERE key_id = ? AND kind = ? AND latest <= ?", (key_id, kind, since))
    return int(used)


def _window_retry(c: sqlite3.Connection, key_id: str, kind: str, now: float, window: float, limit: int) -> float | None:
    """None while the rate window holds less than ``limit``; else the seconds until it will (from its live
    slices, oldest first: at most ``WINDOW_SLICES + 1`` rows, read only when the limit is reached)."""
    if _window_used(c, key_id, kind, now, window) < limit:
        return None
    rows = c.execute(
        "SELECT amount, latest FROM rate WHERE key_id = ? AND kind = ? AND latest > ? ORDER BY slice",
        (key_id, kind, now - window),
    ).fetchall()
    return window_retry([(int(amount), float(latest)) for amount, latest in rows], limit, now, window)


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
