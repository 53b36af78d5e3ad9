"""The ``learned`` strategy: the trained router predicts each candidate's quality; the plan starts at the
cheapest candidate within ``quality_tolerance`` of the best prediction, then the other eligible ones by
cost, then the usual alternatives. Without a trained router (or embedding) it falls back to complexity
routing and says why."""

from __future__ import annotations

from collections.abc import Callable

from app.errors import InvalidRequestError
from app.routing.base import CatalogueView, RouteDecision, RouteInput
from app.routing.cost import estimate_cost, output_tokens
from app.routing.embedding import LazyEmbedding
from app.routing.features import Features
from app.routing.learned import LearnedRouter, choose
from app.settings.routing import RoutingConfig

Fallback = Callable[[str], RouteDecision]  # complexity routing, with the reason it is used


def _candidates(router: LearnedRouter, catalogue: CatalogueView, config: RoutingConfig) -> dict[str, str]:
    """Catalogue name -> data model name, for usable models the file knows (``router_name`` or the name)."""
    names = config.learned.candidates or tuple(catalogue)
    known = set(router.models)
    out: dict[str, str] = {}
    for name in names:
        info = catalogue.get(name)
        if info is None or not info.available:
            continue
        data_name = info.router_name or name
        if data_name in known:
            out[name] = data_name
    return out


def learned_route(
    inp: RouteInput,
    features: Features,
    catalogue: CatalogueView,
    config: RoutingConfig,
    router: LearnedRouter | None,
    embedding: LazyEmbedding | None,
    fallback: Fallback,
    plan: Callable[[str, str, dict[str, object], tuple[str, ...]], RouteDecision],
) -> RouteDecision:
    """``plan(primary, reason, details, preferred)`` builds the ordered plan (availability applied)."""
    if router is None or embedding is None:
        why = "no trained router (routing.learned.path)" if router is None else "no embedding model"
        return fallback(f"learned routing unavailable: {why}")
    tolerance = inp.quality_tolerance if inp.quality_tolerance is not None else config.learned.quality_tolerance
    if not 0 <= tolerance <= 1:
        raise InvalidRequestError("quality_tolerance must be between 0 and 1", field="quality_tolerance")
    candidates = _candidates(router, catalogue, config)
    if not candidates:
        return fallback("learned routing: no usable catalogue model matches the trained router's models")
    quality, familiarity = router.estimate(embedding.get(), features)
    out_tokens = output_tokens(features, config.cost)
    costs: dict[str, float] = {}
    for name, data_name in candidates.items():
        cost = estimate_cost(catalogue[name], features.input_tokens, out_tokens)
        if cost is None:
            cost = router.mean_cost.get(data_name)
        if cost is not None:
            costs[name] = round(cost, 8)
    prediction = choose(quality, candidates, costs, tolerance)
    first = prediction.eligible[0]
    predicted = {name: quality[data] for name, data in candidates.items()}
    reason = (
        f"learned: {first} predicted {predicted[first]:.2f} vs best {prediction.best:.2f} "
        f"(tolerance {tolerance:g}); cheapest of {len(prediction.eligible)} within tolerance"
    )
    details: dict[str, object] = {
        "predicted_quality": predicted,
        "best_quality": prediction.best,
        "quality_tolerance": tolerance,
        "eligible": list(prediction.eligible),
        "estimated_cost": dict(prediction.costs),
        "familiarity": familiarity,  # 1: like the training prompts; 0: unlike them (length prior)
        "tokens": features.tokens,
        "embedding": router.embedding_model,
    }
    return plan(first, reason, details, prediction.eligible)
