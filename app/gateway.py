"""The gateway's long-lived parts, built once by the lifespan and reached through ``api/deps.py``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from app.domain import ChatRequest
from app.orchestration.breaker_sync import BreakerSync
from app.orchestration.executor import Executor
from app.orchestration.options import RunOptions
from app.orchestration.result import Outcome
from app.providers.registry import ProviderRegistry
from app.routing.base import CatalogueView, ModelInfo, RouteDecision, RouteInput
from app.routing.router import route
from app.routing.rules import EMPTY_REGISTRY, ConditionRegistry, Rule, compile_rules
from app.settings.catalogue import GatewayConfig, load_config
from app.settings.settings import Settings


@dataclass
class Gateway:
    """Settings, catalogue, provider clients and the orchestrator of one process."""

    settings: Settings
    config: GatewayConfig
    registry: ProviderRegistry
    executor: Executor
    conditions: ConditionRegistry = EMPTY_REGISTRY  # rule conditions registered from Python
    breaker_sync: BreakerSync | None = None  # breaker transitions shared through Redis (SWITCHYARD_REDIS_URL)
    rules: tuple[Rule, ...] = ()  # the routing rules, compiled once

    @classmethod
    def build(
        cls, settings: Settings, env: Mapping[str, str] | None = None, conditions: ConditionRegistry = EMPTY_REGISTRY
    ) -> Gateway:
        config = load_config(settings.config)
        rules = compile_rules(config.routing, conditions, config.source)  # an unknown custom condition fails here
        registry = ProviderRegistry.build(config, env)
        executor = Executor(registry, config.orchestration)
        sync = BreakerSync(settings.redis_url, executor.breakers, registry.names()) if settings.redis_url else None
        return cls(settings, config, registry, executor, conditions, sync, rules)

    async def start(self) -> None:
        """Start background work (breaker sharing through Redis, when configured)."""
        if self.breaker_sync is not None:
            await self.breaker_sync.start()

    def catalogue(self) -> CatalogueView:
        """What routing may know of each model, availability included."""
        view: dict[str, ModelInfo] = {}
        for entry in self.registry.entries():
            target = entry.target
            view[target.name] = ModelInfo(
                name=target.name,
                provider=target.provider,
                tier=target.config.tier,
                cost_per_1k_input=target.price.input_per_1k,
                cost_per_1k_output=target.price.output_per_1k,
                fallbacks=target.config.fallbacks,
                unavailable_reason=entry.unavailable_reason or self.executor.breakers.unavailable_reason(target.name),
            )
        return view

    def plan(self, inp: RouteInput) -> RouteDecision:
        return route(inp, self.catalogue(), self.config.routing, self.conditions, self.rules)

    async def run(
        self, decision: RouteDecision, request: ChatRequest, options: RunOptions | None = None
    ) -> Outcome:
        """Execute a plan: fallbacks/hedging or a parallel strategy, within the request's deadline."""
        return await self.executor.execute(decision, request, options)

    async def aclose(self) -> None:
        if self.breaker_sync is not None:
            await self.breaker_sync.aclose()
        await self.registry.aclose()
