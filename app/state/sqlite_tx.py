"""Where the embedded store's transactions run: one SQLite file (WAL), two connections per process.

Each transaction is started with ``BEGIN IMMEDIATE``, which takes the file's write lock before reading, so a
read and the write that depends on it are never interleaved with another process's. A transaction runs on the
event loop's own connection when the lock is free (a few page writes to the WAL, tens of microseconds: no disk
sync, which only the checkpoints do), and on a thread, which waits for the lock up to ``busy_timeout_s``, when
another process holds it: the event loop never waits on a lock or on the disk. ``":memory:"`` is a private
database: one connection, all on the loop.

Every ``CHECKPOINT_EVERY`` commits the thread checkpoints the WAL into the file (``PASSIVE``: the loop's
transactions go on meanwhile). SQLite starts the WAL again from its beginning only once every frame in it is
in the file, which a passive checkpoint beside writes that never pause never reaches: under steady traffic the
WAL grew without bound (measured: 1 GB after 25,000 keyed requests). So once the WAL is past
``WAL_RESET_BYTES`` the checkpoint is a ``RESTART`` instead, and this process's transactions wait for it (the
two disk syncs of a checkpoint, ~6 ms here): one such pause per ~2,000 keyed requests, where a ``RESTART`` at
every checkpoint paused the store every ~170 (p99 of 64 concurrent admissions 8 -> 14 ms).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from app.state.base import StoreUnavailableError

T = TypeVar("T")
Clock = Callable[[], float]
Work = Callable[[sqlite3.Connection, float], T]

CHECKPOINT_EVERY = 500
"""Transactions committed on the event loop's connection between two WAL checkpoints, which run on the
thread (a checkpoint syncs the file to disk)."""
WAL_RESET_BYTES = 64 * 1024 * 1024
"""A WAL holding more than this (its frames in use, as the last checkpoint counted them) is checkpointed and
started again (``RESTART``), and a WAL file that grew larger is cut back to it when it starts again
(``journal_size_limit``); a keyed request writes ~33 kB of WAL."""


class Transactions:
    """``run(fn)``: ``fn(connection, now)`` in one transaction of the file at ``path`` (see the module
    docstring); ``start(schema)`` opens it, ``aclose()`` closes it."""

    def __init__(self, path: str, clock: Clock = time.time, busy_timeout_s: float = 5.0) -> None:
        self.path, self.clock, self.busy_timeout_s = path, clock, busy_timeout_s
        self._pool: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None  # the thread's: waits for the write lock
        self._inline: sqlite3.Connection | None = None  # the event loop's: never waits (busy: the thread's)
        self._since_checkpoint = 0
        self._threaded = 0  # transactions on the thread, begun or queued
        self._thread_idle = asyncio.Event()  # set while there are none
        self._thread_idle.set()
        self._checkpointing = False  # the thread holds, or is about to take, the write lock to reset the WAL
        self._wal_bytes = 0  # the WAL's frames in use at the last checkpoint (set on the thread)
        self._frame_bytes = 4096 + 24  # a page and its frame header; the file's page size once open

    async def start(self, schema: str) -> None:
        """Open the file (made if missing, owner-only) and run the idempotent ``schema`` script."""
        if self._inline is not None:
            return
        if self.path == ":memory:":  # a private database: no other writer, no disk, so no thread either
            inline = _connect(self.path, wait_s=0.0)
            inline.executescript(schema)
            self._inline = inline
            return
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="switchyard-state")
        await self._call(lambda: self._open(schema))
        inline = _connect(self.path, wait_s=0.0)
        inline.execute("PRAGMA wal_autocheckpoint = 0")  # the thread checkpoints (CHECKPOINT_EVERY)
        self._inline = inline

    def _open(self, schema: str) -> None:
        file = Path(self.path)
        file.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(file, os.O_CREAT | os.O_RDWR, 0o600))  # hashes only, but still not world-readable
        conn = _connect(self.path, wait_s=self.busy_timeout_s)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.executescript(schema)  # idempotent statements: workers starting together may all run them
        self._frame_bytes = int(conn.execute("PRAGMA page_size").fetchone()[0]) + 24
        self._conn = conn

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

    async def run(self, fn: Work[T], *, inline: bool = True) -> T:
        """``fn(connection, now)`` in one ``BEGIN IMMEDIATE`` transaction: on the event loop's own connection
        when the write lock is free (a hop to the thread and back cost ~100 us of CPU), else on the thread.
        ``inline=False``: always on the thread (the background writers' batches and the scans, whose size is
        the caller's)."""
        conn = self._inline if inline or self._pool is None else None
        while conn is not None:
            if self._checkpointing:  # taking the lock now would keep the checkpoint waiting (it is counted)
                await self._thread_idle.wait()
                continue
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
        self._thread_began()
        try:
            return await self._call(lambda: self._locked(fn))
        finally:
            self._thread_ended()

    def _thread_began(self) -> None:
        """A transaction (or a reset) for the thread: the loop's transactions wait for it to end."""
        self._threaded += 1
        self._thread_idle.clear()

    def _thread_ended(self) -> None:
        self._threaded -= 1
        if not self._threaded:
            self._thread_idle.set()

    def _locked(self, fn: Work[T]) -> T:
        """On the thread: ``fn`` in a transaction of the thread's connection."""
        conn = self._conn
        assert conn is not None
        conn.execute("BEGIN IMMEDIATE")
        return self._run(conn, fn)

    def _run(self, conn: sqlite3.Connection, fn: Work[T]) -> T:
        """``fn`` inside the transaction ``conn`` has begun; committed, or rolled back if it raises."""
        try:
            result = fn(conn, self.clock())
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    def _committed(self) -> None:
        """Count an inline commit; every ``CHECKPOINT_EVERY`` the thread checkpoints the WAL into the file.
        A reset (the WAL past ``WAL_RESET_BYTES``) is counted as the thread's transaction, so this process's
        next ones wait for it (or, if they must, run after it on the thread) instead of taking the write lock
        it waits for."""
        self._since_checkpoint += 1
        if self._since_checkpoint < CHECKPOINT_EVERY or self._pool is None or self._checkpointing:
            return
        self._since_checkpoint = 0
        if self._wal_bytes <= WAL_RESET_BYTES:
            self._pool.submit(self._checkpoint, "PASSIVE")
            return
        self._checkpointing = True
        self._thread_began()
        done = asyncio.get_running_loop().run_in_executor(self._pool, self._checkpoint, "RESTART")
        done.add_done_callback(self._checkpointed)

    def _checkpointed(self, _done: object) -> None:
        self._checkpointing = False
        self._thread_ended()

    def _checkpoint(self, mode: str) -> None:
        """On the thread: the WAL's frames into the file; ``RESTART`` also waits (up to ``busy_timeout_s``)
        for other processes' transactions, takes every frame and has the next write start the WAL again."""
        conn = self._conn
        if conn is None:
            return
        with contextlib.suppress(sqlite3.Error):  # busy past the timeout: the next one will do
            busy, frames, _copied = conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
            reset = mode == "RESTART" and not busy  # the next write starts the WAL again
            self._wal_bytes = 0 if reset else max(int(frames), 0) * self._frame_bytes


def _connect(path: str, *, wait_s: float) -> sqlite3.Connection:
    """A connection that waits up to ``wait_s`` for another writer's lock (0: fails at once, busy); used only
    by the thread that made it."""
    conn = sqlite3.connect(path, timeout=wait_s, isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout = {int(wait_s * 1000)}")
    if path != ":memory:":
        conn.execute("PRAGMA synchronous = NORMAL")  # WAL: a commit is a write, the sync is the checkpoint's
        conn.execute(f"PRAGMA journal_size_limit = {WAL_RESET_BYTES}")  # applied by the write that restarts it
    return conn
