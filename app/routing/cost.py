"""Cost-optimised routing that keeps quality.

The request needs a quality tier (``routing.cost.tiers`` of its complexity level). Among the catalogue's
models of at least that tier with a known price, the plan is ordered by estimated cost
(input tokens estimated from the messages, output tokens from ``max_tokens`` or
``routing.cost.expected_output_tokens``). Models over the budget (the request's ``max_cost``, else
``routing.cost.default_max_cost``) are left out; if none fits, ``BudgetExceededError`` (422) names the
cheapest possible cost. There is no silent fallback to an over-budget model.

Availability beats tier, as everywhere in routing: when no model of the needed tier is usable at all (no key,
open circuit), the plan uses the best tier that is, and the reason says so; the budget still holds.
"""

from __future__ import annotations

from app.errors import BudgetExceededError, NoModelAvailableError
from app.records import record
from app.routing.base import CatalogueView, ModelInfo, RouteDecision, Skipped
from app.routing.complexity import ComplexityVerdict
from app.routing.features import Features
from app.settings.routing import CostConfig


@record(slots=True)
class Estimate:
    model: str
    tier: int
    cost: float


def estimate_cost(info: ModelInfo, input_tokens: int, output_tokens: int) -> float | None:
    """USD cost of one call, or None when the model's price is unknown."""
    if info.cost_per_1k_input is None or info.cost_per_1k_output is None:
        return None
    return (input_tokens * info.cost_per_1k_input + output_tokens * info.cost_per_1k_output) / 1000


def output_tokens(features: Features, config: CostConfig) -> int:
    return features.max_tokens or config.expected_output_tokens


def _money(value: float) -> str:
    return f"${value:.6f}".rstrip("0").rstrip(".") if value else "$0"


def cost_route(
    features: Features,
    verdict: ComplexityVerdict,
    catalogue: CatalogueView,
    config: CostConfig,
    max_cost: float | None = None,
) -> RouteDecision:
    """The cheapest sufficient-tier models that fit the budget, cheapest first."""
    required = config.tiers.of(verdict.level)
    out_tokens = output_tokens(features, config)
    in_tokens = features.input_tokens
    budget = max_cost if max_cost is not None else config.default_max_cost
    needed = required
    priced, unpriced = _estimates(catalogue, needed, in_tokens, out_tokens)
    passed_over = [e for e in priced if not catalogue[e.model].available]
    if not _any_usable(priced, unpriced, budget, catalogue):
        usable_tiers = [
            info.tier
            for info in catalogue.values()
            if info.available and info.tier < required and (budget is None or info.cost_per_1k_input is not None)
        ]
        if usable_tiers:
            needed = max(usable_tiers)
            priced, unpriced = _estimates(catalogue, needed, in_tokens, out_tokens)
    available = [e for e in priced if catalogue[e.model].available]
    if not _any_usable(priced, unpriced, budget, catalogue):
        raise NoModelAvailableError(
            f"no available model of tier >= {needed} with a known price",
            required_tier=needed,
            skipped=[{"model": e.model, "reason": catalogue[e.model].unavailable_reason or ""} for e in priced],
        )
    fitting = [e for e in available if budget is None or e.cost <= budget]
    if not fitting and budget is not None:
        cheapest = available[0]
        raise BudgetExceededError(
            f"no model of tier >= {needed} fits max_cost {_money(budget)}: the cheapest possible is "
            f"{cheapest.model} at about {_money(cheapest.cost)} ({in_tokens} input + {out_tokens} output "
            "tokens estimated)",
            max_cost=budget,
            cheapest_cost=round(cheapest.cost, 8),
            cheapest_model=cheapest.model,
            required_tier=needed,
            input_tokens=in_tokens,
            output_tokens=out_tokens,
        )
    skipped: list[Skipped] = []
    if needed < required:  # every model of the needed tier was unusable: name them all
        skipped = [Skipped(e.model, catalogue[e.model].unavailable_reason or "") for e in passed_over]
    else:  # the unusable models that were cheaper than the one chosen
        for estimate in priced:
            if fitting and estimate.model == fitting[0].model:
                break
            reason = catalogue[estimate.model].unavailable_reason
            if reason is not None:
                skipped.append(Skipped(estimate.model, reason))
    models = [e.model for e in fitting]
    if budget is None:
        models += sorted(n for n in unpriced if catalogue[n].available)
    first = fitting[0] if fitting else None
    if first is not None:
        fits = f" <= max_cost {_money(budget)}" if budget is not None else ""
        reason = (
            f"{verdict.level} ({verdict.reason}) needs tier >= {needed}; cheapest: {first.model} "
            f"~{_money(first.cost)} for ~{in_tokens}+{out_tokens} tokens{fits}"
        )
    else:
        reason = f"{verdict.level} needs tier >= {needed}; no price known, using {models[0]}"
    if needed < required:
        reason = f"{verdict.level} needs tier >= {required} but none is available; best available tier {needed}: " + (
            f"{models[0]}" + (f" ~{_money(first.cost)}" if first is not None else "")
        )
    if skipped:
        reason += "; skipped " + ", ".join(f"{s.model} ({s.reason})" for s in skipped)
    details: dict[str, object] = {
        "level": verdict.level,
        "required_tier": required,
        "used_tier": needed,
        "input_tokens": in_tokens,
        "output_tokens": out_tokens,
        "max_cost": budget,
        "estimated_cost": {e.model: round(e.cost, 8) for e in available},
    }
    return RouteDecision("cost", tuple(models), reason, tuple(skipped), details)


def _estimates(
    catalogue: CatalogueView, min_tier: int, in_tokens: int, out_tokens: int
) -> tuple[list[Estimate], list[str]]:
    """Cost estimates (cheapest first) of the models of at least ``min_tier``, and the unpriced ones."""
    priced: list[Estimate] = []
    unpriced: list[str] = []
    for info in catalogue.values():
        if info.tier < min_tier:
            continue
        cost = estimate_cost(info, in_tokens, out_tokens)
        if cost is None:
            unpriced.append(info.name)
        else:
            priced.append(Estimate(info.name, info.tier, cost))
    priced.sort(key=lambda e: (e.cost, -e.tier, e.model))
    return priced, unpriced


def _any_usable(priced: list[Estimate], unpriced: list[str], budget: float | None, catalogue: CatalogueView) -> bool:
    """Whether some model can be planned: a usable priced one, or (with no budget) a usable unpriced one."""
    if any(catalogue[e.model].available for e in priced):
        return True
    return budget is None and any(catalogue[n].available for n in unpriced)
