"""The routing entry point: dispatch on the requested mode, then skip unavailable models."""

from __future__ import annotations

from app.errors import InvalidRequestError, ModelNotFoundError, NoModelAvailableError
from app.routing.base import CatalogueView, ModelInfo, RouteDecision, RouteInput, Skipped
from app.routing.complexity import classify_complexity, complexity_target
from app.routing.task import detect_task
from app.settings.catalogue import RoutingConfig


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
        if name != primary:
            seen.setdefault(name, None)
    return list(seen)


def _unavailable_reason(name: str, catalogue: CatalogueView) -> str | None:
    info: ModelInfo | None = catalogue.get(name)
    if info is None:
        return "not configured"
    return info.unavailable_reason


def with_availability(
    strategy: str, primary: str, reason: str, catalogue: CatalogueView, config: RoutingConfig
) -> RouteDecision:
    """An ordered plan starting at ``primary``, skipping unavailable models and saying so."""
    skipped: list[Skipped] = []
    models: list[str] = []
    for name in [primary, *_alternatives(primary, catalogue, config)]:
        why = _unavailable_reason(name, catalogue)
        if why is None:
            models.append(name)
        elif name == primary or not models:
            skipped.append(Skipped(name, why))
    if not models:
        raise NoModelAvailableError(
            "no configured model is available (set a provider key or enable the local model)",
            skipped=[{"model": s.model, "reason": s.reason} for s in skipped],
        )
    if skipped:
        reason = f"{reason}; {primary} skipped ({skipped[0].reason}), using {models[0]}"
    return RouteDecision(strategy, tuple(models), reason, tuple(skipped))


def route(inp: RouteInput, catalogue: CatalogueView, config: RoutingConfig) -> RouteDecision:
    """Plan a request. Pure: no I/O, no clock."""
    text = inp.request.prompt_text
    mode = inp.mode
    if mode == "auto" and inp.task_type and not inp.model:
        mode = "task"  # as in the original service: task_type alone means task routing
    if mode == "specific" or (mode == "auto" and inp.model):
        if not inp.model:
            raise InvalidRequestError("routing 'specific' needs a model", field="model")
        info = catalogue.get(inp.model)
        if info is None:
            raise ModelNotFoundError(f"model {inp.model!r} is not in the catalogue", model=inp.model)
        if not info.available:
            raise NoModelAvailableError(
                f"model {inp.model!r} is unavailable: {info.unavailable_reason}", model=inp.model
            )
        fallbacks = tuple(f for f in info.fallbacks if _unavailable_reason(f, catalogue) is None)
        return RouteDecision("specific", (inp.model, *fallbacks), f"model {inp.model} requested")
    if mode == "task":
        if inp.task_type:
            task, why = inp.task_type, "task_type given"
        else:
            task, why = detect_task(text)
        target = config.tasks.get(task) or config.tasks.get("conversation") or config.complexity.simple
        return with_availability("task", target, f"task {task} ({why})", catalogue, config)
    if mode == "parallel":
        models = inp.models or tuple(n for n, m in catalogue.items() if m.available)
        for name in models:
            if name not in catalogue:
                raise ModelNotFoundError(f"model {name!r} is not in the catalogue", model=name)
        usable = tuple(n for n in models if catalogue[n].available)
        if not usable:
            raise NoModelAvailableError("none of the requested models is available")
        skipped = tuple(Skipped(n, catalogue[n].unavailable_reason or "") for n in models if n not in usable)
        return RouteDecision("parallel", usable, f"{len(usable)} models in parallel", skipped)
    verdict = classify_complexity(text)
    target = complexity_target(verdict, config.complexity)
    return with_availability("complexity", target, f"{verdict.level}: {verdict.reason}", catalogue, config)
