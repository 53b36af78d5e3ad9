"""The orchestrator: deadlines, fallbacks with retries, hedging, and dispatch to the parallel strategies.

``Executor.execute`` is the entry point used by ``Gateway.run``. Every strategy shares one ``ModelCaller``
(breaker, per-call timeout, retries) and records every call in a per-request ``Ledger``, so the response's
totals include losers, failed retries' timeouts and judges.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from app.domain import ChatRequest, Completion
from app.errors import (
    DeadlineExceededError,
    ModelNotFoundError,
    NoModelAvailableError,
    PermissionDeniedError,
)
from app.observability.metrics import set_breaker_state
from app.orchestration.attempt import CallMeter, ModelCaller, Sleep
from app.orchestration.breaker import BreakerBoard
from app.orchestration.deadline import Clock, Deadline, request_timeout, within
from app.orchestration.hedge import hedge_delay, hedged
from app.orchestration.latency import LatencyTracker
from app.orchestration.options import RunOptions
from app.orchestration.parallel import first_success
from app.orchestration.result import Ledger, Outcome
from app.orchestration.retry import RetryPolicy, Uniform
from app.orchestration.strategies import run_all, run_consensus, run_race, run_vote
from app.providers.registry import ProviderRegistry
from app.routing.base import RouteDecision
from app.settings.orchestration import OrchestrationConfig

log = logging.getLogger(__name__)
T = TypeVar("T")


def unique(names: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(names))


class Executor:
    """Runs a ``RouteDecision`` against the provider registry."""

    def __init__(
        self,
        registry: ProviderRegistry,
        config: OrchestrationConfig | None = None,
        *,
        clock: Clock = time.monotonic,
        uniform: Uniform = random.uniform,
        sleep: Sleep = asyncio.sleep,
        breakers: BreakerBoard | None = None,
        meter: CallMeter | None = None,
    ) -> None:
        self.registry = registry
        self.config = config or OrchestrationConfig()
        self.clock = clock
        self.breakers = breakers or BreakerBoard(self.config.breaker, clock, on_change=set_breaker_state)
        if breakers is None:
            for name in registry.names():  # every model's gauge starts at closed
                set_breaker_state(name, "closed")
        self.latencies = LatencyTracker()
        self.caller = ModelCaller(
            registry,
            RetryPolicy.from_config(self.config),
            self.breakers,
            self.latencies,
            uniform=uniform,
            sleep=sleep,
            meter=meter,
        )

    # -- entry points -----------------------------------------------------------------------------------

    def execute(
        self, decision: RouteDecision, request: ChatRequest, options: RunOptions | None = None
    ) -> Awaitable[Outcome]:
        """Run ``decision`` within the request's deadline (504 when it passes, with every call in flight
        cancelled and awaited). A plain function returning the awaitable, as the other pass-throughs on the
        call path (``run_chain``, ``ModelCaller.complete``'s operation): each coroutine between the request
        and the socket is resumed at every wake-up of the call, so a layer that only awaits another costs
        on each one."""
        options = options or RunOptions()
        deadline = Deadline.after(request_timeout(options.timeout_s, self.config), self.clock)
        ledger = Ledger()
        return self.guarded(deadline, ledger, lambda: self._dispatch(decision, request, options, deadline, ledger))

    async def run(self, decision: RouteDecision, request: ChatRequest) -> Outcome:
        """The single-answer path with the default deadline (kept for callers of the first version)."""
        return await self.execute(decision, request)

    async def guarded(self, deadline: Deadline, ledger: Ledger, work: Callable[[], Awaitable[T]]) -> T:
        """``within(deadline, work)``, adding the failures so far to a deadline error."""
        try:
            return await within(deadline, work)
        except DeadlineExceededError as exc:
            exc.details["failures"] = [f.to_dict() for f in ledger.failures]
            exc.details["retries"] = ledger.retries
            raise

    # -- strategies ---------------------------------------------------------------------------------------

    async def _dispatch(
        self,
        decision: RouteDecision,
        request: ChatRequest,
        options: RunOptions,
        deadline: Deadline,
        ledger: Ledger,
    ) -> Outcome:
        models = unique(decision.models)
        if decision.strategy == "parallel":
            strategy = options.strategy or "race"
            if strategy == "race":
                return await run_race(self.caller, models, request, deadline, ledger)
            if strategy == "all":
                return await run_all(self.caller, models, request, deadline, ledger)
            selector = options.selector or self.config.consensus_selector
            if strategy == "consensus":
                return await run_consensus(self.caller, models, request, deadline, ledger, selector)
            judge = self.judge_for(options.judge, models)
            return await run_vote(self.caller, models, request, deadline, ledger, judge, selector)
        chain = self.chain(models, request)
        if options.hedge is not None and len(chain) > 1:
            delay = hedge_delay(chain[0], options.hedge, self.config, self.latencies)
            completion, report = await hedged(self.caller, chain, request, deadline, ledger, delay)
            return ledger.outcome(completion, strategy="hedge", hedge=report)
        completion = await self.run_chain(chain, request, deadline, ledger)
        return ledger.outcome(completion, strategy="fallback")

    def chain(self, models: Sequence[str], request: ChatRequest | None = None, stream: bool = False) -> tuple[str, ...]:
        """The plan's models then the configured ``default_fallbacks``, skipping models that cannot be
        used (no provider, open circuit, a parameter of ``request`` they cannot honour) among the added ones."""
        extra = [
            n
            for n in self.config.default_fallbacks
            if self.registry.is_available(n)
            and not self.breakers.is_open(n)
            and self.caller.permits(n)
            and not (request is not None and self.registry.cannot_serve(n, request, stream=stream))
        ]
        return unique([*models, *extra])

    def judge_for(self, requested: str | None, models: Sequence[str]) -> str:
        """The judge: the request's, else ``orchestration.judge_model`` (unless the key may not use it), else
        the first candidate."""
        configured = self.config.judge_model
        if configured is not None and configured in self.registry and not self.caller.permits(configured):
            configured = None
        judge = requested or configured or models[0]
        if judge not in self.registry:
            raise ModelNotFoundError(f"judge model {judge!r} is not in the catalogue", model=judge)
        if not self.caller.permits(judge):
            raise PermissionDeniedError(f"judge model {judge!r} is not allowed for this key", model=judge)
        if not self.registry.is_available(judge):
            reason = self.registry.entry(judge).unavailable_reason
            raise NoModelAvailableError(f"judge model {judge!r} is unavailable: {reason}", model=judge)
        return judge

    def run_chain(
        self, models: Sequence[str], request: ChatRequest, deadline: Deadline | None, ledger: Ledger
    ) -> Awaitable[Completion]:
        """Try ``models`` in order (each with its retries); the first answer wins. An error that another
        model cannot help with (an invalid request) is raised at once."""
        return first_success(
            models, lambda name: self.caller.complete(name, request, deadline, ledger), ledger.failures, "tried"
        )
