"""Calling one model: circuit breaker, per-call timeout and retries with backoff. Reusable by every
strategy (and by streaming for the phase before the first chunk) through ``ModelCaller.attempt``.

With a ``CallMeter`` (``app.governance``, when keys are on), every call is metered: a model the request's key
may not use is refused (403), and each call (each retry too) reserves its worst-case cost before it starts
and is settled after it: to the completion's exact cost, to the estimated input of a cut-off call, to 0 for
a failure. A stream's reservation is handed over (``keep``) and settled when the stream ends."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Protocol, TypeVar

from app.domain import ChatRequest, Choice, Completion, Usage
from app.errors import (
    CapacityError,
    Failure,
    PermissionDeniedError,
    UpstreamError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from app.observability.context import annotate
from app.observability.metrics import record_retry, record_upstream_error
from app.orchestration.breaker import BreakerBoard, CircuitOpenError, counts_as_failure
from app.orchestration.deadline import Deadline
from app.orchestration.latency import LatencyTracker
from app.orchestration.result import Charge, Ledger
from app.orchestration.retry import RetryPolicy, Uniform, retry_delay
from app.providers.base import ModelTarget
from app.providers.registry import ModelEntry, ProviderRegistry
from app.providers.transport import CALL_BOUND
from app.tokens import estimate_prompt_tokens
from app.watchdog import Watchdog

log = logging.getLogger(__name__)

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]
Operation = Callable[[ModelEntry], Awaitable[T]]


class CallHold(Protocol):
    """One call's budget reservation."""

    async def settle(self, cost: float | None, usage: Usage | None = None) -> None: ...


class CallMeter(Protocol):
    """Model permissions and budget reservations of the current request (``app.governance.Governance``)."""

    def permits(self, model: str) -> bool: ...

    async def reserve(self, target: ModelTarget, request: ChatRequest | None, input_tokens: int) -> CallHold | None: ...


Keep = Callable[[T, CallHold], None]  # takes over a successful call's reservation (streams settle at their end)


async def settle(hold: CallHold | None, cost: float | None = 0.0, usage: Usage | None = None) -> None:
    if hold is not None:
        await hold.settle(cost, usage)


class ModelUnavailableError(UpstreamUnavailableError):
    """The model has no usable provider (no key, missing runtime)."""

    error_type = "model_unavailable"
    retryable = False


class ModelBusyError(UpstreamUnavailableError):
    """A local model's bounded queue is full; another model may take the request. Keeps the
    ``CapacityError``'s Retry-After for the client."""

    error_type = "capacity_exceeded"
    retryable = False

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        if self.retry_after is None:
            return {}
        return {"Retry-After": str(max(1, round(self.retry_after)))}


class ModelCaller:
    """Makes one model's call with the breaker, its ``timeout_s`` and retries, recording into a ledger."""

    def __init__(
        self,
        registry: ProviderRegistry,
        policy: RetryPolicy,
        breakers: BreakerBoard,
        latencies: LatencyTracker | None = None,
        *,
        uniform: Uniform = random.uniform,
        sleep: Sleep = asyncio.sleep,
        meter: CallMeter | None = None,
    ) -> None:
        self.registry, self.policy, self.breakers = registry, policy, breakers
        self.latencies = latencies or LatencyTracker()
        self.uniform, self.sleep = uniform, sleep
        self.meter = meter

    def permits(self, model: str) -> bool:
        """Whether the current request's key may use ``model``."""
        return self.meter is None or self.meter.permits(model)

    async def complete(self, name: str, request: ChatRequest, deadline: Deadline | None, ledger: Ledger) -> Completion:
        """One model's completion, added to ``ledger``; on failure the model's last error is recorded
        in ``ledger.failures`` and raised."""

        def call(entry: ModelEntry) -> Awaitable[Completion]:  # the awaitable itself: one coroutine less
            assert entry.provider is not None
            if request.n > 1 and not entry.provider.capabilities(entry.target).native_n:
                return fan_out(entry, request)
            return entry.provider.complete(request, entry.target)

        tokens = estimate_prompt_tokens(request)
        completion = await self.attempt(name, call, deadline, ledger, input_tokens=tokens, request=request)
        ledger.completions.append(completion)
        self.latencies.observe(name, completion.latency_ms / 1000.0)
        return completion

    async def attempt(
        self,
        name: str,
        operation: Operation[T],
        deadline: Deadline | None,
        ledger: Ledger,
        *,
        input_tokens: int = 0,
        request: ChatRequest | None = None,
        keep: Keep[T] | None = None,
    ) -> T:
        """Run ``operation(entry)`` for model ``name`` under its breaker and ``timeout_s``, retrying
        retryable errors with jittered backoff while the deadline allows. Raises the last
        ``UpstreamError`` (recorded as this model's ``Failure``); a cancelled or timed-out call is
        recorded as a ``Charge`` of ``input_tokens`` estimated input tokens. Metered (see the module
        docstring): a successful call's reservation is settled to its ``Completion``'s cost, or handed to
        ``keep``."""
        entry = self.registry.entry(name)
        target = entry.target
        if not self.permits(name):
            raise PermissionDeniedError(f"model {name} is not allowed for this key", model=name, param="model")
        try:
            if entry.provider is None:
                raise ModelUnavailableError(
                    f"model {name} is unavailable: {entry.unavailable_reason}",
                    provider=target.provider,
                    model=name,
                )
            return await self._attempts(entry, operation, deadline, ledger, input_tokens, request, keep)
        except UpstreamError as exc:
            ledger.failures.append(Failure.from_error(name, target.provider, exc))
            raise

    async def _attempts(
        self,
        entry: ModelEntry,
        operation: Operation[T],
        deadline: Deadline | None,
        ledger: Ledger,
        tokens: int,
        request: ChatRequest | None = None,
        keep: Keep[T] | None = None,
    ) -> T:
        target = entry.target
        breaker = self.breakers.get(target.name)
        last_error: UpstreamError | None = None
        retry = 0
        while True:
            if not breaker.allow():
                if last_error is not None:
                    raise last_error  # the circuit opened while we were retrying
                raise CircuitOpenError(
                    f"circuit open for model {target.name}; retry in {breaker.retry_in:.1f}s",
                    provider=target.provider,
                    model=target.name,
                )
            try:  # the call's worst case against the key's budget (402 when it is spent)
                hold = None if self.meter is None else await self.meter.reserve(target, request, tokens)
            except BaseException:
                breaker.release()
                raise
            ledger.attempted(target.name)
            try:
                ends = asyncio.get_running_loop().time() + target.timeout_s
                watch = Watchdog(deadline=ends)
                # the transport needs no timers of its own that would fire after this one
                bound = CALL_BOUND.set((asyncio.current_task(), ends))
                try:
                    result = await watch.wait(operation(entry))
                except TimeoutError:  # ours, or one a provider let through: the model did not answer in time
                    raise UpstreamTimeoutError(
                        f"{target.provider} did not answer within {target.timeout_s:g}s",
                        provider=target.provider,
                        model=target.name,
                    ) from None
                except CapacityError as exc:
                    raise ModelBusyError(
                        exc.message, retry_after=exc.retry_after, provider=target.provider, model=target.name
                    ) from exc
                finally:
                    CALL_BOUND.reset(bound)
                    watch.close()
            except asyncio.CancelledError:
                breaker.release()
                charge = self._charge(ledger, entry, tokens, "cancelled")
                # the request's record: what it spent so far (an outcome, if one comes, replaces it)
                annotate(
                    input_tokens=ledger.total_usage.input_tokens,
                    output_tokens=ledger.total_usage.output_tokens,
                    cost=ledger.total_cost,
                    estimated=True,
                )
                await settle(hold, charge.cost, charge.usage)
                raise
            except UpstreamError as exc:
                record_upstream_error(target.name, target.provider, exc.error_type)
                if counts_as_failure(exc):
                    breaker.record_failure()
                else:
                    breaker.release()
                if isinstance(exc, UpstreamTimeoutError):
                    charge = self._charge(ledger, entry, tokens, "timeout")
                    await settle(hold, charge.cost, charge.usage)
                else:
                    await settle(hold)  # an error answer is not billed
                last_error = exc
                remaining = deadline.remaining() if deadline is not None else None
                delay = retry_delay(exc, retry, self.policy, remaining, self.uniform)
                if delay is None:
                    raise
                log.info("retrying %s in %.2fs after %s", target.name, delay, exc.error_type)
                record_retry(target.name, target.provider)
                ledger.retries += 1
                retry += 1
                await self.sleep(delay)
                continue
            except BaseException:
                await settle(hold)
                raise
            breaker.record_success()
            if hold is not None and keep is not None:
                keep(result, hold)
            elif isinstance(result, Completion):
                await settle(hold, result.cost, result.usage)
            else:
                await settle(hold)
            return result

    @staticmethod
    def _charge(ledger: Ledger, entry: ModelEntry, tokens: int, reason: str) -> Charge:
        target = entry.target
        usage = Usage(tokens, 0, estimated=True)
        cost = target.price.usage_cost(usage)
        charge = Charge(target.name, target.provider, usage, cost, reason)
        ledger.charges.append(charge)
        return charge


async def fan_out(entry: ModelEntry, request: ChatRequest) -> Completion:
    """``n > 1`` for a provider without native support: ``n`` concurrent calls of one answer each, merged
    into one completion whose choices are the answers and whose usage and cost are their sums."""
    assert entry.provider is not None
    single = replace(request, n=1, source=None)  # the client's body asks for n: it cannot pass through
    tasks = [asyncio.ensure_future(entry.provider.complete(single, entry.target)) for _ in range(request.n)]
    try:
        answers = await asyncio.gather(*tasks)
    except BaseException:  # one failed (or we were cancelled): the others are cancelled and awaited
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    first = answers[0]
    usage = sum((a.usage for a in answers[1:]), first.usage)
    costs = [a.cost for a in answers]
    choices = tuple(
        Choice(i, a.content, a.finish_reason, a.tool_calls, a.reasoning, a.refusal, a.logprobs)
        for i, a in enumerate(answers[1:], start=1)
    )
    return replace(
        first,
        usage=usage,
        cost=None if any(c is None for c in costs) else sum(c for c in costs if c is not None),
        latency_ms=max(a.latency_ms for a in answers),
        more_choices=choices,
    )
