"""Shared by the orchestration integration tests: an ``Executor`` over the fake upstream, with recorded
(and skipped) backoff sleeps, a deterministic random source and an optional injected clock."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from app.domain import ChatRequest, Message
from app.orchestration.executor import Executor
from app.providers.registry import ProviderRegistry
from app.routing.base import RouteDecision
from app.settings.catalogue import parse_config
from tests.fakes.server import FakeUpstream
from tests.support import TEST_KEYS, fake_models

REQUEST = ChatRequest(messages=(Message("user", "what is the answer"),))
MINI, SONNET, GEMINI, LLAMA = "gpt-4o-mini", "claude-3-5-sonnet-20241022", "gemini-2.0-flash", "compat-llama"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Harness:
    """An executor over the fake upstream, with recorded (and skipped) backoff sleeps."""

    def __init__(self, upstream: FakeUpstream) -> None:
        self.upstream = upstream
        self.sleeps: list[float] = []
        self.registry: ProviderRegistry | None = None
        self.executor: Executor | None = None

    def build(
        self, orchestration: dict[str, Any] | None = None, clock: Callable[[], float] = time.monotonic, **models: Any
    ) -> Executor:
        config = parse_config(
            {"models": fake_models(self.upstream.base_url, **models), "orchestration": orchestration or {}}
        )
        self.registry = ProviderRegistry.build(config, env=TEST_KEYS)

        async def sleep(seconds: float) -> None:
            self.sleeps.append(seconds)

        self.executor = Executor(self.registry, config.orchestration, clock=clock, uniform=lambda a, b: b, sleep=sleep)
        return self.executor

    def requests_for(self, upstream_model: str) -> int:
        return sum(1 for r in self.upstream.requests if r.model == upstream_model)


def plan(*models: str, strategy: str = "specific") -> RouteDecision:
    return RouteDecision(strategy, models, "test plan")
