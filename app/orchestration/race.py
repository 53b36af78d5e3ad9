"""The one race primitive: several attempts, the first success wins, the others are cancelled and awaited.

It serves the three patterns that start more than one call for one answer:

- ``race`` (and the streamed race): every candidate at once (``start=len(names)``);
- hedging: the first candidate, then the next one if no call has finished after ``hedge_after`` seconds
  (once), and after that further candidates only when every running call has failed (as fallbacks);
- the loser's cleanup: a result that arrives after the winner (a stream that started just before it could be
  cancelled) is handed to ``discard`` (streams close their upstream response).

Failures are kept as values, so one failure never cancels the others. A failure that no other model can
fix (``fallback_ok`` false, e.g. an invalid request) ends the race at once when ``stop_on_fatal``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from app.errors import NoModelAvailableError, UpstreamError
from app.observability.metrics import record_fallback

T = TypeVar("T")


@dataclass
class RaceReport(Generic[T]):
    """What happened: the winner's name and result, the errors, and whether a hedge was sent."""

    winner: str | None = None
    result: T | None = None
    errors: list[UpstreamError] = field(default_factory=list)
    fatal: UpstreamError | None = None
    hedged: bool = False
    hedge_model: str | None = None


async def race(
    names: Sequence[str],
    attempt: Callable[[str], Coroutine[Any, Any, T]],
    *,
    start: int | None = None,
    hedge_after: float | None = None,
    stop_on_fatal: bool = False,
    discard: Callable[[T], Awaitable[None]] | None = None,
) -> RaceReport[T]:
    """Run ``attempt(name)`` for ``names`` (``start`` at once, default all) until one succeeds; see the
    module docstring. Never raises an ``UpstreamError``: the report says what failed."""
    if not names:
        raise NoModelAvailableError("no model to call")
    queue = list(names)
    report: RaceReport[T] = RaceReport()
    running: dict[asyncio.Task[T], str] = {}
    last_started: str | None = None

    def launch() -> str:
        nonlocal last_started
        name = queue.pop(0)
        running[asyncio.create_task(attempt(name), name=f"race:{name}")] = name
        last_started = name
        return name

    for _ in range(min(start or len(queue), len(queue))):
        launch()
    try:
        while running:
            can_hedge = hedge_after is not None and not report.hedged and bool(queue)
            done, _ = await asyncio.wait(
                running, timeout=hedge_after if can_hedge else None, return_when=asyncio.FIRST_COMPLETED
            )
            if not done:  # the hedge delay passed with no answer: send the hedge
                report.hedged = True
                report.hedge_model = launch()
                continue
            for task in done:
                name = running.pop(task)
                error = task.exception()
                if error is None:
                    if report.winner is None:
                        report.winner, report.result = name, task.result()
                    elif discard is not None:
                        await discard(task.result())
                elif isinstance(error, UpstreamError):
                    report.errors.append(error)
                    if stop_on_fatal and not error.fallback_ok and report.fatal is None:
                        report.fatal = error
                else:
                    raise error
            if report.winner is not None or report.fatal is not None:
                break
            if not running and queue:  # every running call failed: the next candidate, as a fallback
                failed = last_started
                nxt = launch()
                if failed is not None:
                    record_fallback(failed, nxt)
    finally:
        await _cancel(running, discard)
    return report


async def _cancel(running: dict[asyncio.Task[T], str], discard: Callable[[T], Awaitable[None]] | None) -> None:
    """Cancel and await the losers; a loser that finished before it could be cancelled is discarded."""
    for task in running:
        task.cancel()
    if not running:
        return
    await asyncio.gather(*running, return_exceptions=True)
    if discard is None:
        return
    for task in running:
        if not task.cancelled() and task.exception() is None:
            await discard(task.result())
