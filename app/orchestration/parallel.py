"""Several models at once. ``race``: the first *successful* answer wins and the rest are cancelled."""

from __future__ import annotations

import asyncio

from app.domain import ChatRequest, Completion
from app.errors import AllModelsFailedError, Failure, UpstreamError
from app.orchestration.result import Outcome
from app.providers.registry import ProviderRegistry


async def race(registry: ProviderRegistry, models: tuple[str, ...], request: ChatRequest) -> Outcome:
    """First successful completion wins; the others are cancelled and awaited; 502 if all fail."""
    failures: list[Failure] = []
    tasks: dict[asyncio.Task[Completion], str] = {}
    for name in models:
        entry = registry.entry(name)
        if entry.provider is not None:
            tasks[asyncio.create_task(entry.provider.complete(request, entry.target), name=name)] = name
    pending = set(tasks)
    try:
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                error = task.exception()
                if error is None:
                    return Outcome(task.result(), tuple(failures))
                if not isinstance(error, UpstreamError):
                    raise error
                entry = registry.entry(tasks[task])
                failures.append(Failure.from_error(entry.target.name, entry.target.provider, error))
        raise AllModelsFailedError("every model in the race failed", failures)
    finally:
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
