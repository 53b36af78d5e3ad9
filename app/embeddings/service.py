"""Plan, call, split and reassemble an embeddings request, with the orchestrator's guards.

Each upstream call goes through ``ModelCaller.attempt`` (the model's circuit breaker, its ``timeout_s``,
retries with backoff, the key's model permissions and a budget hold per call, settled to the call's exact
cost), all within the request's deadline (``orchestration.request_timeout_s``, 504 when it passes). A batch
larger than the vendor's limit is split into parts sent at most ``concurrency`` at a time and reassembled
in input order, usage and cost summed. If a model fails (after its retries) the next model of the plan
embeds the *whole* request again: vectors of two models are never mixed in one answer. The calls reach the
vendor through the transport the registry built for the model (its pooled session and auth header).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

from app.domain import Usage
from app.embeddings.codec import EmbeddingCodec, embedding_codec, error, inputs_per_call
from app.embeddings.plan import Candidate, plan_embeddings
from app.embeddings.types import EmbeddedBatch, EmbeddingRequest, Embeddings, input_tokens
from app.errors import Failure, GatewayError, UpstreamServerError
from app.gateway import Gateway
from app.governance.context import current_principal
from app.observability.metrics import record_upstream_call
from app.orchestration.attempt import CallHold
from app.orchestration.deadline import Deadline, request_timeout
from app.orchestration.parallel import first_success, task_group
from app.orchestration.result import Ledger, sum_cost
from app.providers.base import ModelTarget
from app.providers.registry import ModelEntry
from app.providers.transport import Transport, Who
from app.records import record
from app.routing.base import RouteDecision

log = logging.getLogger(__name__)

DEFAULT_CONCURRENCY = 4  # parts of one split batch in flight at once


def estimate_input_tokens(request: EmbeddingRequest) -> int:
    """The input tokens of ``request`` when the vendor reports none (``types.input_tokens`` per input)."""
    return sum(input_tokens(item) for item in request.inputs)


@record(slots=True)
class Part:
    """One upstream call's answer, with its usage (estimated when the vendor sent none) and exact cost."""

    batch: EmbeddedBatch
    usage: Usage
    cost: float | None


@record(slots=True)
class EmbeddingOutcome:
    """The answer, the failed models, and what the request consumed over every call (failed models'
    finished parts and cut-off calls included)."""

    result: Embeddings
    failures: tuple[Failure, ...]
    usage: Usage
    cost: float | None


def _transport(entry: ModelEntry) -> Transport | None:
    transport = getattr(entry.provider, "transport", None)
    return transport if isinstance(transport, Transport) else None


class EmbeddingService:
    """Embeddings over the gateway's registry, breakers, retry policy and key meter."""

    def __init__(self, gateway: Gateway, concurrency: int = DEFAULT_CONCURRENCY) -> None:
        self.gateway = gateway
        self.concurrency = concurrency

    # -- planning

    def candidates(self) -> dict[str, Candidate]:
        """Every catalogue model as planning sees it (availability: key, transport, circuit, the key's rights)."""
        principal = current_principal()
        breakers = self.gateway.executor.breakers
        view: dict[str, Candidate] = {}
        for entry in self.gateway.registry.entries():
            target = entry.target
            unavailable = entry.unavailable_reason or breakers.unavailable_reason(target.name)
            if unavailable is None and _transport(entry) is None:
                unavailable = f"provider {target.provider} is not reached over HTTP"
            view[target.name] = Candidate(
                name=target.name,
                provider=target.provider,
                embeds=target.config.embeds,
                fallbacks=target.config.fallbacks,
                unavailable=unavailable,
                permitted=principal is None or principal.permits(target.name),
            )
        return view

    def plan(
        self, model: str, request: EmbeddingRequest, is_alias: Callable[[str], bool] = lambda _: False
    ) -> RouteDecision:
        """The plan for ``model`` (``is_alias``: whether a name is one of the front-end's routing aliases)."""
        return plan_embeddings(model, request, self.candidates(), is_alias)

    # -- execution

    async def embed(self, decision: RouteDecision, request: EmbeddingRequest) -> EmbeddingOutcome:
        """Run the plan within the request's deadline: the first model that embeds every input wins."""
        executor = self.gateway.executor
        deadline = Deadline.after(request_timeout(None, executor.config), executor.clock)
        ledger = Ledger()
        spent: list[Part] = []  # every answered call, of failed models too
        models = tuple(dict.fromkeys(decision.models))

        async def work() -> Embeddings:
            return await first_success(
                models, lambda name: self._embed_with(name, request, deadline, ledger, spent), ledger.failures, "tried"
            )

        result = await executor.guarded(deadline, ledger, work)
        usage = sum((p.usage for p in spent), Usage())
        usage = sum((c.usage for c in ledger.charges), usage)
        cost = sum_cost([p.cost for p in spent] + [c.cost for c in ledger.charges])
        return EmbeddingOutcome(result, tuple(ledger.failures), usage, cost)

    async def _embed_with(
        self, name: str, request: EmbeddingRequest, deadline: Deadline, ledger: Ledger, spent: list[Part]
    ) -> Embeddings:
        entry = self.gateway.registry.entry(name)
        codec = embedding_codec(entry.target.provider)
        assert codec is not None  # planning kept only models with an embeddings codec
        batches = request.batches(inputs_per_call(codec, request, entry.target.config.dimensions), codec.max_tokens)
        whole = len(batches) == 1
        started = time.perf_counter()
        limit = asyncio.Semaphore(self.concurrency)

        async def one(batch: EmbeddingRequest) -> Part:
            async with limit:
                part = await self._call(entry, codec, batch, whole, deadline, ledger)
            spent.append(part)
            return part

        if whole:
            parts: Sequence[Part] = [await one(batches[0])]
        else:
            async with task_group() as group:
                tasks = [group.create_task(one(b)) for b in batches]
            parts = [t.result() for t in tasks]
        target = entry.target
        return Embeddings(
            model=target.name,
            provider=target.provider,
            vectors=tuple(v for p in parts for v in p.batch.vectors),
            usage=sum((p.usage for p in parts), Usage()),
            cost=sum_cost([p.cost for p in parts]),
            latency_ms=(time.perf_counter() - started) * 1000.0,
            calls=len(parts),
            body=parts[0].batch.body if whole else None,
        )

    async def _call(
        self,
        entry: ModelEntry,
        codec: EmbeddingCodec,
        batch: EmbeddingRequest,
        whole: bool,
        deadline: Deadline,
        ledger: Ledger,
    ) -> Part:
        """One upstream call under the model's breaker, timeout and retries; its budget hold is settled to
        the exact cost of the answer."""
        tokens = estimate_input_tokens(batch)
        holds: list[CallHold] = []

        async def operation(entry: ModelEntry) -> Part:
            return await self._send(entry, codec, batch, whole, tokens)

        caller = self.gateway.executor.caller
        part = await caller.attempt(
            entry.target.name,
            operation,
            deadline,
            ledger,
            input_tokens=tokens,
            keep=lambda _, hold: holds.append(hold),
        )
        for hold in holds:
            await hold.settle(part.cost, part.usage)
        return part

    @staticmethod
    async def _send(
        entry: ModelEntry, codec: EmbeddingCodec, batch: EmbeddingRequest, whole: bool, tokens: int
    ) -> Part:
        target: ModelTarget = entry.target
        transport = _transport(entry)
        assert transport is not None  # planning kept only models reached over HTTP
        who = Who(target.provider, target.name)
        started = time.perf_counter()
        call = codec.encode(batch, target, whole=whole)
        answer = await transport.request(call, who, target.timeout_s, target.idle_timeout_s)
        if not 200 <= answer.status < 300:
            raise error(answer, target)
        try:
            decoded = codec.decode(answer, batch, target, whole=whole)
        except GatewayError:
            raise
        except Exception as exc:  # a payload no test foresaw: still a typed error, never a raw one
            log.warning("the %s embeddings codec could not read an answer of %s: %s", who.provider, who.model, exc)
            raise UpstreamServerError(
                f"{who.provider} sent an answer the gateway could not read", provider=who.provider, model=who.model
            ) from exc
        usage = decoded.usage or Usage(tokens, 0, estimated=True)
        cost = target.price.usage_cost(usage)
        record_upstream_call(target.name, target.provider, time.perf_counter() - started, usage.input_tokens, 0, cost)
        return Part(decoded, usage, cost)
