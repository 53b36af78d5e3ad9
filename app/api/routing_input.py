"""How a front-end's ``model`` field is routed, shared by every protocol front-end (OpenAI chat, Anthropic
messages): a catalogue model by name (with its configured fallbacks), else a routing alias from
``MODEL_ALIASES``; and the ``x-switchyard-*`` headers every answer carries."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

from app.domain import ChatRequest, Completion
from app.errors import InvalidRequestError, ModelNotFoundError
from app.gateway import Gateway
from app.orchestration.result import Outcome
from app.routing.base import RouteDecision, RouteInput, Skipped

# The one table of routing aliases usable as ``model`` (a catalogue model of the same name wins).
MODEL_ALIASES: dict[str, str] = {
    "auto": "auto",  # the configured rules, then the configured default strategy (complexity)
    "complexity": "complexity",  # complexity routing
    "rules": "rules",  # the configured routing rules only
    "task": "task",  # task-type routing (detected from the prompt)
    "cheapest": "cost",  # cost router: cheapest model expected to be good enough
    "cost": "cost",
    "learned": "learned",  # the trained quality-cost router (routing.learned.path)
    "race": "parallel",  # every available model at once; the first answer (first chunk) wins
    "parallel": "parallel",
}


def model_route_input(model: str, request: ChatRequest, gateway: Gateway, *, stream: bool) -> RouteInput:
    """How ``model`` is routed: a catalogue model by name, else an alias; 404 ``model_not_found`` else."""
    if model in gateway.registry:
        return RouteInput(request=request, mode="specific", model=model, stream=stream)
    mode = MODEL_ALIASES.get(model)
    if mode is None:
        raise ModelNotFoundError(
            f"model {model!r} is neither a catalogue model nor a routing alias ({', '.join(sorted(MODEL_ALIASES))})",
            model=model,
            param="model",
        )
    return RouteInput(request=request, mode=mode, stream=stream)


def keep_passthrough(
    fields: Sequence[str], request: ChatRequest, decision: RouteDecision, gateway: Gateway, upstream: str
) -> RouteDecision:
    """``fields`` only ``upstream`` (a same-protocol upstream, which takes the client's body as it is)
    honours: the other models are skipped from the plan (``skipped`` says why); a 400 names the field when
    the requested model itself, or every planned one, cannot."""
    if not fields:
        return decision
    field = fields[0]

    def honours(name: str) -> bool:
        passes = getattr(gateway.registry.entry(name).provider, "passes_through", None)
        return passes is not None and bool(passes(request))

    keep = tuple(name for name in decision.models if honours(name))
    first = decision.model
    if first is not None and (not keep or (decision.strategy == "specific" and first not in keep)):
        raise InvalidRequestError(
            f"{field} is honoured only by {upstream}; model {first!r} "
            f"(provider {gateway.registry.entry(first).target.provider}) cannot honour it",
            param=field,
            code="unsupported_parameter",
            model=first,
        )
    reason = f"cannot honour {field} (not {upstream})"
    skipped = tuple(Skipped(name, reason) for name in decision.models if name not in keep)
    return replace(decision, models=keep, skipped=decision.skipped + skipped)


def switchyard_headers(
    strategy: str, model: str, provider: str, dropped: Iterable[str], ignored: Iterable[str]
) -> dict[str, str]:
    """``x-switchyard-route``, ``x-switchyard-provider``, and when non-empty ``x-switchyard-dropped-params``
    (options the target does not take, not sent) and ``x-switchyard-ignored-params`` (fields a translated
    target ignored)."""
    headers = {"x-switchyard-route": f"{strategy}; model={model}", "x-switchyard-provider": provider}
    if dropped := ",".join(dropped):
        headers["x-switchyard-dropped-params"] = dropped
    if ignored := ",".join(ignored):
        headers["x-switchyard-ignored-params"] = ignored
    return headers


def route_extra(decision: RouteDecision) -> dict[str, Any]:
    """The plan as the answer's ``switchyard.route`` object."""
    return {
        "strategy": decision.strategy,
        "reason": decision.reason,
        "candidates": list(decision.models),
        "skipped": [{"model": s.model, "reason": s.reason} for s in decision.skipped],
    }


def answer_headers(decision: RouteDecision, completion: Completion, ignored: Iterable[str]) -> dict[str, str]:
    """The ``switchyard_headers`` of a non-streamed answer; ``ignored`` (fields a translation ignores) only
    when the answer was translated, not passed through."""
    shown = ignored if completion.passthrough is None else ()
    c = completion
    return switchyard_headers(decision.strategy, c.model, c.provider, c.dropped_params, shown)


def answer_extra(decision: RouteDecision, outcome: Outcome) -> dict[str, Any]:
    """The ``switchyard`` object of a translated answer: provider, cost, latency, plan, failures, usage notes."""
    completion = outcome.completion
    return {
        "provider": completion.provider,
        "cost": completion.cost,
        "latency_ms": round(completion.latency_ms, 3),
        "route": route_extra(decision),
        "failures": [f.to_dict() for f in outcome.failures],
        "usage": {"cache_write_tokens": completion.usage.cache_write_tokens, "estimated": completion.usage.estimated},
    }
