"""Hedged requests: call the primary model; if it has not answered after a delay, call the next model
too; the first success wins and the other call is cancelled (and awaited).

The delay is the request's, else the primary's observed p95 latency (once enough calls were seen, if
``hedge_use_p95``), else ``hedge_delay_s``. A failure before the delay moves on at once, like a fallback;
after the hedge, later models are only started when every running call has failed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from app.domain import ChatRequest, Completion
from app.errors import UpstreamError
from app.observability.metrics import record_fallback
from app.orchestration.attempt import ModelCaller
from app.orchestration.deadline import Deadline
from app.orchestration.latency import LatencyTracker
from app.orchestration.options import HedgeOptions
from app.orchestration.parallel import all_failed, task_group
from app.orchestration.result import Ledger
from app.settings.orchestration import OrchestrationConfig


@dataclass(frozen=True, slots=True)
class HedgeDelay:
    seconds: float
    source: str  # request | p95 | config


def hedge_delay(
    primary: str, options: HedgeOptions, config: OrchestrationConfig, latencies: LatencyTracker
) -> HedgeDelay:
    """When to send the hedge for ``primary``."""
    if options.delay_s is not None:
        return HedgeDelay(options.delay_s, "request")
    if config.hedge_use_p95:
        p95 = latencies.p95(primary, config.hedge_min_samples)
        if p95 is not None:
            return HedgeDelay(p95, "p95")
    return HedgeDelay(config.hedge_delay_s, "config")


async def hedged(
    caller: ModelCaller,
    models: Sequence[str],
    request: ChatRequest,
    deadline: Deadline | None,
    ledger: Ledger,
    delay: HedgeDelay,
) -> tuple[Completion, dict[str, object]]:
    """The first success among the primary and its hedge (then the remaining models as fallbacks), with
    a report: ``{"primary", "delay_s", "delay_source", "hedged", "hedge_model"}``."""
    queue = list(models)
    running: dict[asyncio.Task[Completion], str] = {}
    errors: list[UpstreamError] = []
    winner: Completion | None = None
    fatal: UpstreamError | None = None
    report: dict[str, object] = {
        "primary": queue[0],
        "delay_s": round(delay.seconds, 4),
        "delay_source": delay.source,
        "hedged": False,
        "hedge_model": None,
    }
    last_started: str | None = None

    async with task_group() as group:

        def launch() -> str:
            nonlocal last_started
            name = queue.pop(0)
            running[group.create_task(_settled(caller, name, request, deadline, ledger), name=f"hedge:{name}")] = name
            last_started = name
            return name

        launch()
        try:
            while running:
                can_hedge = not report["hedged"] and bool(queue)
                done, _ = await asyncio.wait(
                    running, timeout=delay.seconds if can_hedge else None, return_when=asyncio.FIRST_COMPLETED
                )
                if not done:  # the delay passed with no answer: send the hedge
                    report["hedged"] = True
                    report["hedge_model"] = launch()
                    continue
                for task in done:
                    running.pop(task)
                    result = task.result()
                    if isinstance(result, Completion):
                        winner = winner or result
                    else:
                        errors.append(result)
                        if not result.fallback_ok:
                            fatal = fatal or result
                if winner is not None or fatal is not None:
                    break
                if not running and queue:
                    failed = last_started
                    nxt = launch()
                    if failed is not None:
                        record_fallback(failed, nxt)
        finally:
            for task in running:
                task.cancel()
    if winner is not None:
        report["winner"] = winner.model
        return winner, report
    if fatal is not None:
        raise fatal
    raise all_failed(ledger.failures, errors, "hedged")


async def _settled(
    caller: ModelCaller, name: str, request: ChatRequest, deadline: Deadline | None, ledger: Ledger
) -> Completion | UpstreamError:
    """The completion, or the error as a value (so one failure does not cancel the task group)."""
    try:
        return await caller.complete(name, request, deadline, ledger)
    except UpstreamError as exc:
        return exc
