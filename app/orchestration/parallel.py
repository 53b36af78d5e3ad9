"""Several models at once, under structured concurrency (``asyncio.TaskGroup``).

``race``: the first *successful* answer wins; the other calls are cancelled and awaited (a failed call does
not end the race). ``gather``: every model answers or fails; all answers and failures are kept.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TypeVar

from app.domain import ChatRequest, Completion
from app.errors import AllModelsFailedError, Failure, GatewayError, NoModelAvailableError, UpstreamError
from app.observability.metrics import record_fallback
from app.orchestration.attempt import ModelCaller
from app.orchestration.deadline import Deadline
from app.orchestration.race import race as race_first
from app.orchestration.result import Ledger

log = logging.getLogger(__name__)
T = TypeVar("T")


def all_failed(failures: Sequence[Failure], errors: Sequence[UpstreamError], what: str) -> UpstreamError:
    """The error for "every model failed": a lone error as is; a bad request every model rejected as that
    400; otherwise ``AllModelsFailedError`` (502, or the common 429/503/504) listing each failure."""
    if len(errors) == 1:
        return errors[0]
    if errors and all(not e.fallback_ok for e in errors):
        return errors[0]
    return AllModelsFailedError(f"every model {what} failed", list(failures))


async def first_success(
    models: Sequence[str],
    attempt: Callable[[str], Awaitable[T]],
    ledger_failures: Sequence[Failure],
    what: str,
) -> T:
    """Try ``models`` in order with ``attempt`` (which does its own retries); the first result wins. An error
    another model cannot help with (an invalid request) is raised at once; each move to the next model is
    counted as a fallback."""
    errors: list[UpstreamError] = []
    previous: str | None = None
    for name in models:
        if previous is not None:
            record_fallback(previous, name)
        try:
            return await attempt(name)
        except UpstreamError as exc:
            errors.append(exc)
            if not exc.fallback_ok:
                raise
            log.info("model %s failed (%s); trying the next", name, exc.error_type)
            previous = name
    if not errors:
        raise NoModelAvailableError("no model to call")
    raise all_failed(ledger_failures, errors, what)


def _first_gateway_error(group: BaseExceptionGroup) -> GatewayError | None:
    for exc in group.exceptions:
        if isinstance(exc, GatewayError):
            return exc
        if isinstance(exc, BaseExceptionGroup) and (inner := _first_gateway_error(exc)) is not None:
            return inner
    return None


@asynccontextmanager
async def task_group() -> AsyncIterator[asyncio.TaskGroup]:
    """An ``asyncio.TaskGroup`` whose failure surfaces as its first ``GatewayError`` (a clean HTTP answer)
    rather than an ``ExceptionGroup``; the other tasks are cancelled and awaited either way."""
    try:
        async with asyncio.TaskGroup() as group:
            yield group
    except BaseExceptionGroup as exc:
        first = _first_gateway_error(exc)
        if first is None:
            raise
        raise first from exc


async def race(
    caller: ModelCaller, models: Sequence[str], request: ChatRequest, deadline: Deadline | None, ledger: Ledger
) -> Completion:
    """The first successful completion; the rest are cancelled and awaited; raises if all fail."""
    report = await race_first(models, lambda name: caller.complete(name, request, deadline, ledger))
    if report.result is None:
        raise all_failed(ledger.failures, report.errors, "in the race")
    return report.result


async def gather(
    caller: ModelCaller, models: Sequence[str], request: ChatRequest, deadline: Deadline | None, ledger: Ledger
) -> list[Completion]:
    """Every model's completion, in the order of ``models``; failures land in ``ledger.failures``.
    Raises only when no model answered."""
    results: dict[str, Completion] = {}
    errors: list[UpstreamError] = []

    async def run(name: str) -> None:
        try:
            results[name] = await caller.complete(name, request, deadline, ledger)
        except UpstreamError as exc:
            errors.append(exc)

    async with task_group() as group:
        for name in models:
            group.create_task(run(name), name=f"all:{name}")
    if not results:
        raise all_failed(ledger.failures, errors, "asked")
    return [results[name] for name in models if name in results]
