"""The routing entry point: resolve the strategy, run it, then skip unavailable models.

``routing`` values: ``specific`` (the named model and its fallbacks), ``parallel``, ``task``, ``cost``,
``complexity``, ``rules``, ``learned`` and ``auto``. ``auto`` resolves, in order: a ``model`` means specific;
a ``task_type`` means task (as in the original service); a ``max_cost`` means cost; then the first matching
rule; else ``routing.auto`` (complexity unless configured).

``models`` (``app.routing.context``, loaded at startup) holds the embedding model, the semantic task index
and the trained learned router. The request's embedding is computed at most once, and only when a strategy
needs it (task detection without ``task_type``, learned routing); explicit-model requests never embed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from app.errors import InvalidRequestError, ModelNotFoundError, NoModelAvailableError
from app.routing.base import CatalogueView, ModelInfo, RouteDecision, RouteInput, Skipped
from app.routing.complexity import classify_complexity
from app.routing.context import NO_MODELS, RoutingModels
from app.routing.cost import cost_route
from app.routing.embedding import LazyEmbedding
from app.routing.features import Features, extract_features
from app.routing.learned import head
from app.routing.learned_route import learned_route
from app.routing.rules import EMPTY_REGISTRY, ConditionRegistry, Rule, compile_rules, first_match
from app.routing.task import detect_task, keyword_table
from app.settings.routing import RoutingConfig


def _alternatives(primary: str, catalogue: CatalogueView, config: RoutingConfig) -> list[str]:
    """Next best models after ``primary``: its fallbacks, the configured preference, then by closeness of
    tier and by price."""
    info = catalogue.get(primary)
    order: list[str] = list(info.fallbacks) if info else []
    order += list(config.preference)
    tier = info.tier if info else 3
    rest = sorted(catalogue.values(), key=lambda m: (abs(m.tier - tier), -m.tier, m.blended_price, m.name))
    order += [m.name for m in rest]
    seen: dict[str, None] = {}
    for name in order:
        if name != primary and name in catalogue:
            seen.setdefault(name, None)
    return list(seen)


def _unavailable_reason(name: str, catalogue: CatalogueView) -> str | None:
    info: ModelInfo | None = catalogue.get(name)
    if info is None:
        return "not configured"
    return info.unavailable_reason


def with_availability(
    strategy: str,
    primary: str,
    reason: str,
    catalogue: CatalogueView,
    config: RoutingConfig,
    details: dict[str, object] | None = None,
    preferred: Sequence[str] = (),
) -> RouteDecision:
    """An ordered plan starting at ``primary`` (then ``preferred``), skipping unavailable models and saying so."""
    skipped: list[Skipped] = []
    models: list[str] = []
    for name in dict.fromkeys([primary, *preferred, *_alternatives(primary, catalogue, config)]):
        why = _unavailable_reason(name, catalogue)
        if why is None:
            models.append(name)
        elif not models:
            skipped.append(Skipped(name, why))
    if not models:
        raise NoModelAvailableError(
            "no configured model is available (set a provider key or enable the local model)",
            skipped=[{"model": s.model, "reason": s.reason} for s in skipped],
        )
    if skipped:
        reason = f"{reason}; {primary} skipped ({skipped[0].reason}), using {models[0]}"
    return RouteDecision(strategy, tuple(models), reason, tuple(skipped), details or {})


def _specific(inp: RouteInput, catalogue: CatalogueView) -> RouteDecision:
    if not inp.model:
        raise InvalidRequestError("routing 'specific' needs a model", field="model")
    info = catalogue.get(inp.model)
    if info is None:
        raise ModelNotFoundError(f"model {inp.model!r} is not in the catalogue", model=inp.model)
    fallbacks = tuple(f for f in info.fallbacks if _unavailable_reason(f, catalogue) is None)
    if info.available:
        return RouteDecision("specific", (inp.model, *fallbacks), f"model {inp.model} requested")
    if not fallbacks:
        raise NoModelAvailableError(f"model {inp.model!r} is unavailable: {info.unavailable_reason}", model=inp.model)
    # An unusable model (no key, open circuit) "fails" at once: its configured fallbacks answer, and we say so.
    reason = f"model {inp.model} requested; skipped ({info.unavailable_reason}), using fallback {fallbacks[0]}"
    return RouteDecision("specific", fallbacks, reason, (Skipped(inp.model, info.unavailable_reason or ""),))


def _parallel(inp: RouteInput, catalogue: CatalogueView) -> RouteDecision:
    models = inp.models or tuple(n for n, m in catalogue.items() if m.available)
    for name in models:
        if name not in catalogue:
            raise ModelNotFoundError(f"model {name!r} is not in the catalogue", model=name)
    usable = tuple(n for n in models if catalogue[n].available)
    skipped = tuple(Skipped(n, catalogue[n].unavailable_reason or "unavailable") for n in models if n not in usable)
    if not usable:
        named = "; ".join(f"{s.model}: {s.reason}" for s in skipped) or "the catalogue has no usable model"
        raise NoModelAvailableError(
            f"none of the requested models is available ({named})",
            skipped=[{"model": s.model, "reason": s.reason} for s in skipped],
        )
    return RouteDecision("parallel", usable, f"{len(usable)} models in parallel", skipped)


def _complexity(features: Features, catalogue: CatalogueView, config: RoutingConfig) -> RouteDecision:
    verdict = classify_complexity(features, config.complexity)
    target = config.complexity.target(verdict.level)
    details: dict[str, object] = {"level": verdict.level, "score": round(verdict.score, 3)}
    reason = f"{verdict.level}: {verdict.reason}"
    return with_availability("complexity", target, reason, catalogue, config, details)


def detect(
    features: Features,
    config: RoutingConfig,
    models: RoutingModels,
    embedding: LazyEmbedding | None,
    explain: bool = False,
) -> tuple[str, str, dict[str, object]]:
    """The task of a prompt and why. Without an embedding model: keywords alone. With one (``combine:
    keywords_first``): the keywords when any fires, the examples when none does; a task defined only by
    examples (no keyword list) wins when it is the nearest, so configured tasks stay reachable. The
    embedding is computed only when the examples are consulted, or with ``explain`` (a dry run): then the
    examples' scores and nearest prompts are shown under ``semantic`` even when the keywords decided."""
    verdict = detect_task(features, config.task_keywords)
    if models.semantic is None or embedding is None:
        extra: dict[str, object] = {"detector": "keywords", "note": models.note} if models.note else {}
        return verdict.task, verdict.reason, extra
    semantic_config = config.semantic
    table = keyword_table(config.task_keywords)
    own = {t for t in models.semantic.task_names if t not in table and t != "conversation"}
    keywords_first = semantic_config.combine == "keywords_first"
    by_keywords: dict[str, object] = {"detector": "keywords", "scores": dict(verdict.scores)}
    if keywords_first and verdict.scores and not own and not explain:
        return verdict.task, verdict.reason, by_keywords
    hints = {} if keywords_first else detect_task(head(features), config.task_keywords).scores
    semantic = models.semantic.classify(embedding.get(), hints, semantic_config.keyword_weight)
    nearest = [{"task": n.task, "example": n.example, "score": n.score} for n in semantic.nearest]
    scores = dict(sorted(semantic.scores.items(), key=lambda kv: -kv[1]))
    examples = {"scores": scores, "nearest": nearest, "embedding": models.semantic.embedder_name}
    if keywords_first and verdict.scores and semantic.task not in own:
        return verdict.task, verdict.reason, {**by_keywords, "semantic": {"task": semantic.task, **examples}}
    return semantic.task, semantic.reason, {"detector": "semantic", **examples}


def _task(
    inp: RouteInput,
    features: Features,
    catalogue: CatalogueView,
    config: RoutingConfig,
    models: RoutingModels = NO_MODELS,
    embedding: LazyEmbedding | None = None,
) -> RouteDecision:
    known = set(keyword_table(config.task_keywords)) | set(config.tasks) | {"conversation"}
    if inp.task_type:
        task, why = inp.task_type.strip().lower(), "task_type given"
        if task not in known:
            raise InvalidRequestError(
                f"unknown task_type {inp.task_type!r}; known: {', '.join(sorted(known))}",
                field="task_type",
            )
        extra: dict[str, object] = {}
    else:
        task, why, extra = detect(features, config, models, embedding, inp.explain)
    details: dict[str, object] = {"task": task, **extra}
    target = config.tasks.get(task)
    if target is None:
        level = classify_complexity(features, config.complexity)
        target = config.complexity.target(level.level)
        details["level"] = level.level
        reason = f"task {task} ({why}) not in the task table; {level.level}: {level.reason}"
    else:
        reason = f"task {task} ({why})"
    return with_availability("task", target, reason, catalogue, config, details)


def _rules(
    features: Features,
    catalogue: CatalogueView,
    config: RoutingConfig,
    rules: Sequence[Rule],
    fall_through: bool,
) -> RouteDecision | None:
    """The first matching rule's plan; with no match, None when ``fall_through`` else the default."""
    rule = first_match(rules, features)
    if rule is not None:
        reason = f"rule {rule.name} (priority {rule.priority})"
        return with_availability("rules", rule.target, reason, catalogue, config, {"rule": rule.name})
    if fall_through:
        return None
    default = config.default_model or config.complexity.simple
    return with_availability("rules", default, "no rule matched: default model", catalogue, config)


def resolve_mode(inp: RouteInput) -> str:
    """The strategy a request asks for; ``auto`` stays auto unless the request implies one."""
    if inp.mode != "auto":
        return inp.mode
    if inp.model:
        return "specific"
    if inp.task_type:
        return "task"  # as in the original service: task_type alone means task routing
    if inp.max_cost is not None:
        return "cost"
    return "auto"


def route(
    inp: RouteInput,
    catalogue: CatalogueView,
    config: RoutingConfig,
    conditions: ConditionRegistry = EMPTY_REGISTRY,
    rules: Sequence[Rule] | None = None,
    models: RoutingModels = NO_MODELS,
) -> RouteDecision:
    """Plan a request. Pure: no I/O, no clock. ``rules`` are ``config``'s rules already compiled (the
    gateway compiles them once at startup); without them they are compiled from ``config`` here. ``models``
    are the embedding and learned models loaded at startup."""
    mode = resolve_mode(inp)
    if mode == "specific":
        return _specific(inp, catalogue)
    if mode == "parallel":
        return _parallel(inp, catalogue)
    features = extract_features(inp.request)
    embedding = models.embedding_for(features.text)  # lazy: nothing is computed unless a strategy asks
    if mode in ("auto", "rules") and rules is None:
        rules = compile_rules(config, conditions)
    if mode == "auto":
        matched = _rules(features, catalogue, config, rules or (), fall_through=True)
        if matched is not None:
            return matched
        mode = config.auto
    if mode == "rules":
        decision = _rules(features, catalogue, config, rules or (), fall_through=False)
        assert decision is not None
        return decision
    if mode == "task":
        return _task(inp, features, catalogue, config, models, embedding)
    if mode == "learned":

        def fallback(why: str) -> RouteDecision:
            decision = _complexity(features, catalogue, config)
            return replace(decision, reason=f"{why}; {decision.reason}", details={**decision.details, "note": why})

        def plan(primary: str, reason: str, details: dict[str, object], preferred: tuple[str, ...]) -> RouteDecision:
            return with_availability("learned", primary, reason, catalogue, config, details, preferred)

        return learned_route(inp, features, catalogue, config, models.learned, embedding, fallback, plan)
    if mode == "cost":
        verdict = classify_complexity(features, config.complexity)
        return cost_route(features, verdict, catalogue, config.cost, inp.max_cost)
    if mode == "complexity":
        return _complexity(features, catalogue, config)
    raise InvalidRequestError(f"unknown routing {inp.mode!r}", field="routing")
