"""The single-answer path: call the planned models in order, falling back on errors where that helps."""

from __future__ import annotations

import logging

from app.domain import ChatRequest
from app.errors import AllModelsFailedError, Failure, GatewayError, UpstreamError
from app.orchestration.result import Outcome
from app.providers.registry import ProviderRegistry
from app.routing.base import RouteDecision

log = logging.getLogger(__name__)


class Executor:
    """Runs a ``RouteDecision`` against the provider registry."""

    def __init__(self, registry: ProviderRegistry) -> None:
        self.registry = registry

    async def run(self, decision: RouteDecision, request: ChatRequest) -> Outcome:
        """First model that answers wins; a non-fallback error (an invalid request) is raised at once."""
        failures: list[Failure] = []
        last_error: GatewayError | None = None
        for name in decision.models:
            entry = self.registry.entry(name)
            if entry.provider is None:
                continue
            try:
                completion = await entry.provider.complete(request, entry.target)
            except UpstreamError as exc:
                failures.append(Failure.from_error(name, entry.target.provider, exc))
                last_error = exc
                if not exc.fallback_ok:
                    raise
                log.info("model %s failed (%s); trying the next", name, exc.error_type)
                continue
            return Outcome(completion, tuple(failures))
        if len(failures) == 1 and last_error is not None:
            raise last_error
        raise AllModelsFailedError("every candidate model failed", failures)
