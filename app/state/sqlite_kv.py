"""The embedded store's key/value namespace (``StateStore.kv_*``): one table, entries with an optional
expiry, the expired ones deleted every ``KV_SWEEP_EVERY`` writes. A part of ``SqliteStore``, which brings the
transactions and the write counter."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from app.state.sqlite_tx import Transactions

KV_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (
    namespace TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL, expires_at REAL,
    PRIMARY KEY (namespace, key));
CREATE INDEX IF NOT EXISTS kv_by_expiry ON kv (expires_at) WHERE expires_at IS NOT NULL;
"""

KV_SWEEP_EVERY = 256
"""Key/value writes between two deletions of the expired entries (by their index on ``expires_at``)."""


class KeyValueTables:
    """The ``kv_*`` operations of ``SqliteStore`` (see the module docstring)."""

    _transactions: Transactions
    _kv_writes: int

    async def kv_get(self, namespace: str, key: str) -> bytes | None:
        def run(c: sqlite3.Connection, now: float) -> bytes | None:
            row = c.execute(
                "SELECT value FROM kv WHERE namespace = ? AND key = ? AND (expires_at IS NULL OR expires_at > ?)",
                (namespace, key, now),
            ).fetchone()
            return None if row is None else bytes(row[0])

        return await self._transactions.run(run)

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

        await self._transactions.run(run, inline=not sweep)  # a sweep's size is the expired rows': on the thread

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

        await self._transactions.run(run, inline=False)

    def _count_kv_writes(self, written: int) -> bool:
        """Count key/value writes; True when this one should also delete the expired entries (one in
        ``KV_SWEEP_EVERY`` writes, the batches' included: they are most of them)."""
        before = self._kv_writes
        self._kv_writes += written
        return before // KV_SWEEP_EVERY != self._kv_writes // KV_SWEEP_EVERY

    async def kv_delete(self, namespace: str, key: str) -> bool:
        def run(c: sqlite3.Connection, now: float) -> bool:
            return c.execute("DELETE FROM kv WHERE namespace = ? AND key = ?", (namespace, key)).rowcount > 0

        return await self._transactions.run(run)

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

        return await self._transactions.run(run, inline=False)


def _sweep_kv(c: sqlite3.Connection, now: float) -> None:
    """Delete the expired key/value entries: a range of the expiry index, not a scan of the table (the
    routing decisions alone are one entry per request, kept 30 days by default)."""
    c.execute("DELETE FROM kv WHERE expires_at IS NOT NULL AND expires_at <= ?", (now,))
