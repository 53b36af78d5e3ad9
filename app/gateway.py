"""The gateway's long-lived parts, built once by the lifespan and reached through ``api/deps.py``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Container, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.domain import ChatRequest
from app.errors import InvalidRequestError, NoModelAvailableError, PermissionDeniedError
from app.governance.context import current_principal
from app.governance.service import Governance
from app.observability.context import current_request_id
from app.orchestration.breaker_sync import BreakerSync
from app.orchestration.executor import Executor
from app.orchestration.options import RunOptions
from app.orchestration.result import Outcome
from app.orchestration.streaming import StreamOpener, StreamSession
from app.providers.registry import ProviderRegistry
from app.routing.base import CatalogueView, ModelInfo, RouteDecision, RouteInput
from app.routing.context import NO_MODELS, RoutingModels, load_routing_models
from app.routing.feedback import FeedbackLog, decision_record
from app.routing.router import resolve_mode, route
from app.routing.rules import EMPTY_REGISTRY, ConditionRegistry, Rule, compile_rules
from app.settings.catalogue import GatewayConfig, load_config
from app.settings.settings import Settings
from app.state import StateStore, open_store
from app.tokens import estimate_tokens


class LazyCatalogue(Mapping[str, ModelInfo]):
    """A ``CatalogueView`` whose entries are worked out when routing first reads them: a request naming its
    model reads that model and its fallbacks, not the whole catalogue (availability checks every parameter
    of the request). Iterating reads them all, in catalogue order."""

    def __init__(self, names: Sequence[str], known: Container[str], info: Callable[[str], ModelInfo]) -> None:
        self._names, self._known, self._info = names, known, info
        self._seen: dict[str, ModelInfo] = {}

    def __getitem__(self, name: str) -> ModelInfo:
        found = self._seen.get(name)
        if found is None:
            if name not in self._known:
                raise KeyError(name)
            found = self._seen[name] = self._info(name)
        return found

    def get(self, name: str, default: Any = None) -> Any:  # Mapping.get's try/except, without the raise
        return self[name] if name in self._known else default

    def __contains__(self, name: object) -> bool:
        return name in self._known

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


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
    governance: Governance | None = None  # keys, limits and budgets (when a master key is configured)
    state: StateStore | None = None  # the shared state store (keys, stored responses, feedback); see state_store
    _state_lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)
    routing_models: RoutingModels = NO_MODELS  # embedding, semantic tasks, learned router (loaded at startup)
    feedback_log: FeedbackLog | None = None  # routing decisions kept for POST /v1/feedback (when enabled)

    @classmethod
    def build(
        cls, settings: Settings, env: Mapping[str, str] | None = None, conditions: ConditionRegistry = EMPTY_REGISTRY
    ) -> Gateway:
        config = load_config(settings.config)
        rules = compile_rules(config.routing, conditions, config.source)  # an unknown custom condition fails here
        registry = ProviderRegistry.build(config, env)
        state = open_store(settings)
        governance = Governance.from_settings(settings, config.orchestration, registry.names(), state)
        executor = Executor(registry, config.orchestration, meter=governance)
        sync = BreakerSync(settings.redis_url, executor.breakers, registry.names()) if settings.redis_url else None
        models = load_routing_models(config.routing, config.source)  # a bad router file fails here
        gateway = cls(
            settings, config, registry, executor, conditions, sync, rules, governance, state, routing_models=models
        )
        if config.routing.feedback.enabled:
            gateway.feedback_log = FeedbackLog(gateway.state_store, config.routing.feedback)
        return gateway

    async def start(self) -> None:
        """Start background work (breaker sharing through Redis, when configured) and the key store."""
        if self.governance is not None:
            await self.governance.start()
        if self.breaker_sync is not None:
            await self.breaker_sync.start()

    async def state_store(self) -> StateStore:
        """The shared state store (embedded SQLite, or Redis when configured), started on first use: without
        access control nothing opens it until something (stored responses, feedback) needs it."""
        if self.state is None:
            self.state = open_store(self.settings)
        async with self._state_lock:
            await self.state.start()  # idempotent
        return self.state

    def cannot_serve(self, name: str, request: ChatRequest, *, stream: bool = False) -> tuple[str, ...]:
        """The parameters of ``request`` that model ``name`` cannot honour."""
        return self.registry.cannot_serve(name, request, stream=stream)

    def catalogue(
        self,
        request: ChatRequest | None = None,
        *,
        stream: bool = False,
        for_key: bool = True,
        serves: Container[str] = (),
    ) -> CatalogueView:
        """What routing may know of each model, availability included: a model that cannot honour a
        parameter of ``request`` is unavailable for it, and the reason names the parameter; so is a model
        outside the ``models`` of the request's key (unless ``for_key`` is false). ``serves``: models already
        found to honour every parameter of ``request`` (not asked again)."""
        principal = current_principal() if for_key else None

        def info(name: str) -> ModelInfo:
            entry = self.registry.entry(name)
            target = entry.target
            reason = entry.unavailable_reason or self.executor.breakers.unavailable_reason(target.name)
            if reason is None and principal is not None and not principal.permits(target.name):
                reason = "not allowed for this key"
            if reason is None and request is not None and name not in serves:
                missing = self.cannot_serve(target.name, request, stream=stream)
                if missing:
                    reason = f"cannot serve {', '.join(missing)} ({target.provider})"
            return ModelInfo(
                name=target.name,
                provider=target.provider,
                tier=target.config.tier,
                cost_per_1k_input=target.price.input_per_1k,
                cost_per_1k_output=target.price.output_per_1k,
                fallbacks=target.config.fallbacks,
                router_name=target.config.router_name,
                unavailable_reason=reason,
            )

        return LazyCatalogue(self.registry.name_order, self.registry, info)

    def plan(self, inp: RouteInput) -> RouteDecision:
        """Route ``inp``. A model the client named that cannot honour one of its parameters is a 400
        naming the parameter and the provider, before any call; under routing such models are skipped.
        Models outside the request's key's ``models`` are skipped too; one the client named is a 403, and
        so is a plan that only such models could serve."""
        principal = current_principal()
        named = self._named_models(inp)
        for name in named:
            if principal is not None and not principal.permits(name):
                raise PermissionDeniedError(f"model {name} is not allowed for this key", model=name, param="model")
            missing = self.cannot_serve(name, inp.request, stream=inp.stream)
            if missing:
                provider = self.registry.entry(name).target.provider
                raise InvalidRequestError(
                    f"model {name} (provider {provider}) does not support {', '.join(missing)}",
                    param=missing[0],
                    unsupported=list(missing),
                    model=name,
                )
        catalogue = self.catalogue(inp.request, stream=inp.stream, serves=named)
        try:
            return route(inp, catalogue, self.config.routing, self.conditions, self.rules, self.routing_models)
        except NoModelAvailableError:
            if principal is None or not principal.restricted:
                raise
            unrestricted = self.catalogue(inp.request, stream=inp.stream, for_key=False)
            try:
                route(inp, unrestricted, self.config.routing, self.conditions, self.rules, self.routing_models)
            except NoModelAvailableError:
                raise  # nothing could serve it, with or without the key's restriction
            raise PermissionDeniedError("no model this key may use can serve this request") from None

    def _named_models(self, inp: RouteInput) -> tuple[str, ...]:
        if resolve_mode(inp) == "specific" and inp.model and inp.model in self.registry:
            return (inp.model,)
        return tuple(n for n in inp.models if n in self.registry)

    async def run(self, decision: RouteDecision, request: ChatRequest, options: RunOptions | None = None) -> Outcome:
        """Execute a plan: fallbacks/hedging or a parallel strategy, within the request's deadline."""
        outcome = await self.executor.execute(decision, request, options)
        self._record(decision, request, outcome.completion.model)
        return outcome

    async def stream(
        self, decision: RouteDecision, request: ChatRequest, timeout_s: float | None = None
    ) -> StreamSession:
        """Open a streamed plan: the same breakers, retries and fallbacks as ``run`` until a model has said
        something, within the request's deadline (which also bounds the rest of the stream)."""
        session = await StreamOpener(self.executor).open(decision, request, timeout_s)
        self._record(decision, request, session.model)
        return session

    def _record(self, decision: RouteDecision, request: ChatRequest, model: str) -> None:
        """Keep the decision and the answering model for ``POST /v1/feedback`` (written in the background)."""
        if self.feedback_log is None or (request_id := current_request_id()) is None:
            return
        prompt = request.prompt_text if self.config.routing.feedback.keep_prompts else None
        self.feedback_log.record(
            request_id, decision_record(decision, model, estimate_tokens(request.prompt_text), prompt)
        )

    async def aclose(self) -> None:
        if self.feedback_log is not None:
            await self.feedback_log.drain()
        if self.breaker_sync is not None:
            await self.breaker_sync.aclose()
        if self.governance is not None:
            await self.governance.aclose()
        if self.state is not None:
            await self.state.aclose()  # idempotent (the governance may have closed it)
        await self.registry.aclose()
