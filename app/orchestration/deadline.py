"""The request's overall deadline: a point on a monotonic clock, and the 504 when it passes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from app.errors import DeadlineExceededError, UnprocessableError
from app.records import record
from app.settings.orchestration import OrchestrationConfig
from app.watchdog import Watchdog

T = TypeVar("T")
Clock = Callable[[], float]


@record(slots=True)
class Deadline:
    """``at`` on ``clock`` (seconds); ``timeout_s`` is the budget it was made from."""

    at: float
    timeout_s: float
    clock: Clock = time.monotonic

    @classmethod
    def after(cls, timeout_s: float, clock: Clock = time.monotonic) -> Deadline:
        return cls(clock() + timeout_s, timeout_s, clock)

    def remaining(self) -> float:
        return max(0.0, self.at - self.clock())

    @property
    def expired(self) -> bool:
        return self.clock() >= self.at


def request_timeout(requested: float | None, config: OrchestrationConfig) -> float:
    """The deadline budget of one request: the config default, or the request's own within the maximum."""
    if requested is None:
        return config.request_timeout_s
    if requested <= 0:
        raise UnprocessableError("timeout_s must be positive", field="timeout_s")
    if requested > config.max_request_timeout_s:
        raise UnprocessableError(
            f"timeout_s {requested:g} exceeds the maximum of {config.max_request_timeout_s:g} seconds",
            field="timeout_s",
            maximum=config.max_request_timeout_s,
        )
    return requested


def deadline_watch(deadline: Deadline) -> Watchdog:
    """A watchdog that ends any wait when ``deadline`` passes (on the running loop's clock)."""
    return Watchdog(deadline=asyncio.get_running_loop().time() + deadline.remaining())


async def within(deadline: Deadline, work: Callable[[], Awaitable[T]], watch: Watchdog | None = None) -> T:
    """Run ``work()``; when the deadline passes, cancel everything it started (and await it) and raise
    ``DeadlineExceededError`` (504) at once. ``watch`` (from ``deadline_watch``) is the caller's to go on
    using (a stream bounds its chunks with the same timer); without it, one is made and closed here."""
    own = watch is None
    bound = deadline_watch(deadline) if watch is None else watch
    try:
        return await bound.wait(work())
    except TimeoutError:
        if bound.expired:
            raise DeadlineExceededError(
                f"the request's deadline of {deadline.timeout_s:g}s passed", timeout_s=deadline.timeout_s
            ) from None
        raise
    finally:
        if own:
            bound.close()
