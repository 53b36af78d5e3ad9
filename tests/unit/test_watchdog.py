"""``Watchdog``: asyncio.timeout's semantics for each of a sequence of waits, with one timer for all of them."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from app.watchdog import Watchdog


def count_timers(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The delays of the timers the running loop arms from now on."""
    loop = asyncio.get_running_loop()
    armed: list[float] = []
    real = loop.call_at

    def call_at(when: float, callback: Any, *args: Any, **kwargs: Any) -> asyncio.TimerHandle:
        armed.append(when - loop.time())
        return real(when, callback, *args, **kwargs)

    monkeypatch.setattr(loop, "call_at", call_at)
    return armed


async def test_waits_shorter_than_the_idle_limit_pass_however_long_the_sequence(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    watch = Watchdog(idle_s=0.1)
    armed = count_timers(monkeypatch)
    started = time.monotonic()
    for _ in range(12):  # 0.36 s in all, each wait 0.03 s
        assert await watch.wait(asyncio.sleep(0.03, result="ok")) == "ok"
    watch.close()
    assert time.monotonic() - started > 0.3
    # asyncio.timeout would have armed 12 (plus sleep's own 12); the watchdog re-arms about once per 0.1 s
    assert len([d for d in armed if d > 0.05]) <= 5, armed


async def test_a_wait_longer_than_the_idle_limit_times_out_at_the_limit() -> None:
    watch = Watchdog(idle_s=0.1)
    await watch.wait(asyncio.sleep(0.05))
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await watch.wait(asyncio.sleep(5))
    elapsed = time.monotonic() - started
    assert 0.09 <= elapsed < 0.5, elapsed
    watch.close()


async def test_time_between_waits_does_not_count_as_idle() -> None:
    """The consumer may be busy (a slow client) longer than the idle limit: only waiting is idle."""
    watch = Watchdog(idle_s=0.05)
    for _ in range(3):
        await watch.wait(asyncio.sleep(0.01))
        await asyncio.sleep(0.12)  # the timer fires meanwhile and stands down
    await watch.wait(asyncio.sleep(0.03))
    watch.close()


async def test_a_deadline_bounds_the_sequence_and_a_late_wait_fails_at_once() -> None:
    loop = asyncio.get_running_loop()
    watch = Watchdog(deadline=loop.time() + 0.2)
    waits = 0
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        while True:
            await watch.wait(asyncio.sleep(0.03))
            waits += 1
    assert 0.19 <= time.monotonic() - started < 0.6
    assert 4 <= waits <= 7, waits

    late = asyncio.sleep(1)
    with pytest.raises(TimeoutError):
        await watch.wait(late)  # closed, never awaited: no "was never awaited" warning
    assert late.cr_frame is None
    watch.close()


async def test_idle_and_deadline_together_end_at_whichever_comes_first() -> None:
    loop = asyncio.get_running_loop()
    watch = Watchdog(idle_s=5, deadline=loop.time() + 0.1)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await watch.wait(asyncio.sleep(5))
    assert time.monotonic() - started < 0.5
    watch = Watchdog(idle_s=0.1, deadline=loop.time() + 5)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await watch.wait(asyncio.sleep(5))
    assert time.monotonic() - started < 0.5


async def test_someone_elses_cancellation_stays_a_cancellation() -> None:
    watch = Watchdog(idle_s=5)

    async def waiter() -> None:
        await watch.wait(asyncio.sleep(5))

    task = asyncio.create_task(waiter())
    await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    watch.close()


async def test_a_cancellation_at_the_moment_the_watchdog_fires_stays_a_cancellation() -> None:
    """Both asked to cancel the task: asyncio.timeout's rule leaves it a cancellation (not ours alone)."""
    watch = Watchdog(idle_s=0.05)
    inside = asyncio.Event()

    async def waiter() -> None:
        async def wait() -> None:
            inside.set()
            await asyncio.sleep(5)

        await watch.wait(wait())

    task = asyncio.create_task(waiter())
    await inside.wait()
    loop = asyncio.get_running_loop()
    loop.call_at(loop.time() + 0.05, task.cancel)  # about when the watchdog fires
    await asyncio.sleep(0.2)
    assert task.done()
    if not task.cancelled():  # the watchdog fired a loop turn before: a timeout, then our cancel found it done
        assert isinstance(task.exception(), TimeoutError)
    watch.close()


async def test_nested_watchdogs_each_end_their_own_wait() -> None:
    outer = Watchdog(idle_s=5)
    inner = Watchdog(idle_s=0.05)

    async def inner_wait() -> str:
        try:
            await inner.wait(asyncio.sleep(5))
        except TimeoutError:
            return "inner timed out"
        return "no"

    assert await outer.wait(inner_wait()) == "inner timed out"
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]
    # the outer one still works afterwards
    assert await outer.wait(asyncio.sleep(0.01, result=1)) == 1
    outer.close()
    inner.close()


async def test_no_bounds_means_a_plain_await() -> None:
    watch = Watchdog()
    assert await watch.wait(asyncio.sleep(0.01, result=3)) == 3
    watch.close()


def test_the_same_under_uvloop_whose_clock_has_millisecond_steps() -> None:
    """uvloop (what ``switchyard serve`` runs) fires a timer up to 1 ms early: no busy re-arming, no early end."""
    import uvloop

    async def scenario() -> None:
        await test_a_wait_longer_than_the_idle_limit_times_out_at_the_limit()
        await test_time_between_waits_does_not_count_as_idle()
        await test_a_deadline_bounds_the_sequence_and_a_late_wait_fails_at_once()
        await test_nested_watchdogs_each_end_their_own_wait()

    uvloop.run(scenario())
