"""Hedged requests: call the primary model; if it has not answered after a delay, call the next model
too; the first success wins and the other call is cancelled (and awaited).

The delay is the request's, else the primary's observed p95 latency (once enough calls were seen, if
``hedge_use_p95``), else ``hedge_delay_s``. A failure before the delay moves on at once, like a fallback;
after the hedge, later models are only started when every running call has failed.
"""

from __future__ import annotations

from collections.abc import Sequence

from app.domain import ChatRequest, Completion
from app.orchestration.attempt import ModelCaller
from app.orchestration.deadline import Deadline
from app.orchestration.latency import LatencyTracker
from app.orchestration.options import HedgeOptions
from app.orchestration.parallel import all_failed
from app.orchestration.race import race
from app.orchestration.result import Ledger
from app.records import record
from app.settings.orchestration import OrchestrationConfig


@record(slots=True)
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
    a report: ``{"primary", "delay_s", "delay_source", "hedged", "hedge_model", "winner"}``."""
    result = await race(
        models,
        lambda name: caller.complete(name, request, deadline, ledger),
        start=1,
        hedge_after=delay.seconds,
        stop_on_fatal=True,
    )
    report: dict[str, object] = {
        "primary": models[0],
        "delay_s": round(delay.seconds, 4),
        "delay_source": delay.source,
        "hedged": result.hedged,
        "hedge_model": result.hedge_model,
    }
    if result.result is not None:
        report["winner"] = result.result.model
        return result.result, report
    if result.fatal is not None:
        raise result.fatal
    raise all_failed(ledger.failures, result.errors, "hedged")
