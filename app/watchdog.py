"""One timer for a task's many waits: ``Watchdog`` bounds every wait of a sequence (a stream's reads of its
upstream, its chunks) by an idle limit, an absolute deadline, or both.

The semantics are ``asyncio.timeout``'s: a wait that runs out is cancelled, and that cancellation leaves it
as ``TimeoutError`` (a cancellation that someone else asked for meanwhile stays a cancellation). The cost is
not: ``asyncio.timeout`` makes and cancels a timer per wait (about 7 us here, and a stream paid two per read
of its upstream, so a 1,000-token stream armed some 2,000 of them). The watchdog arms one timer and, when
it fires early (the wait it was armed for ended), moves it to the current wait's end instead; between
waits (the consumer is busy) it is dropped and the next wait arms it again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

T = TypeVar("T")
CLOCK_SLACK_S = 0.001  # a loop's timer may fire up to its clock's resolution (uvloop: 1 ms) early


class Watchdog:
    """Bounds each ``wait`` by ``idle_s`` from its own start and by ``deadline`` (the running loop's clock,
    ``loop.time()``); either may be None. Waits of one task at a time, one after another."""

    __slots__ = ("_cancelling", "_deadline", "_fired", "_handle", "_idle_s", "_loop", "_since", "_task", "expired")

    def __init__(self, *, idle_s: float | None = None, deadline: float | None = None) -> None:
        self._idle_s, self._deadline = idle_s, deadline
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[Any] | None = None
        self._since: float | None = None  # loop time the current wait began; None between waits
        self._cancelling = 0
        self._fired = False
        self.expired = False  # a wait ended (or was refused) because its bound passed

    def _due(self, since: float) -> float:
        idle, deadline = self._idle_s, self._deadline
        if idle is None:
            assert deadline is not None
            return deadline
        return since + idle if deadline is None else min(since + idle, deadline)

    async def wait(self, awaitable: Awaitable[T]) -> T:
        """``await awaitable``; ``TimeoutError`` when its bound passes first (at once, if it already has)."""
        if self._idle_s is None and self._deadline is None:
            return await awaitable
        loop = self._loop or asyncio.get_running_loop()
        self._loop = loop
        now = loop.time()
        due = self._due(now)
        if due <= now:
            _discard(awaitable)
            self.expired = True
            raise TimeoutError
        task = asyncio.current_task()
        assert task is not None, "Watchdog.wait runs in a task"
        self._task, self._since, self._cancelling = task, now, task.cancelling()
        if self._handle is None:
            self._handle = loop.call_at(due, self._check)
        try:
            result = await awaitable
        except asyncio.CancelledError as exc:
            if self._settle(task):
                self.expired = True
                raise TimeoutError from exc
            raise
        finally:
            self._since = None
        self._settle(task)  # fired as the wait ended, and the cancellation was not delivered: take it back
        return result

    def _settle(self, task: asyncio.Task[Any]) -> bool:
        """After a wait: whether our timer's cancellation is the only one outstanding (asyncio.timeout's
        rule: then it is ours to turn into ``TimeoutError``)."""
        if not self._fired:
            return False
        self._fired = False
        return task.uncancel() <= self._cancelling

    def _check(self) -> None:
        """The timer: end the current wait if its bound passed, else move on to that bound; between waits,
        stand down (the next wait arms again)."""
        since, loop = self._since, self._loop
        self._handle = None
        if since is None or loop is None or self._task is None:
            return
        due = self._due(since)
        if loop.time() >= due - CLOCK_SLACK_S:
            self._fired = True
            self._task.cancel()
        else:
            self._handle = loop.call_at(due, self._check)

    def close(self) -> None:
        """Cancel the timer (the sequence ended); idempotent."""
        handle, self._handle = self._handle, None
        if handle is not None:
            handle.cancel()
        self._task = None


def _discard(awaitable: Awaitable[Any]) -> None:
    """Close a coroutine that will not be awaited (no 'never awaited' warning)."""
    close = getattr(awaitable, "close", None)
    if close is not None:
        close()
