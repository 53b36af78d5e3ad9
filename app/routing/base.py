"""Routing types. A router is a pure function: ``RouteInput`` and ``CatalogueView`` in, a decision out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field
from typing import Literal

from app.domain import ChatRequest
from app.records import record

RoutingMode = Literal["auto", "specific", "parallel", "task", "cost", "complexity", "rules", "learned"]


@record(slots=True)
class RouteInput:
    """What the client asked for: the request plus its routing choice."""

    request: ChatRequest
    mode: str = "auto"  # one of RoutingMode
    model: str | None = None
    task_type: str | None = None
    models: tuple[str, ...] = ()
    max_cost: float | None = None  # USD budget for the cost router
    stream: bool = False  # the answer is streamed (some features need native support then)
    quality_tolerance: float | None = None  # the learned router's tolerance (else routing.learned's)
    explain: bool = False  # a dry run (/v1/route): also show what a detector that did not decide would say


@record(slots=True)
class ModelInfo:
    """What routing may know of a catalogue model: no clients, no I/O."""

    name: str
    provider: str
    tier: int
    cost_per_1k_input: float | None
    cost_per_1k_output: float | None
    fallbacks: tuple[str, ...] = ()
    unavailable_reason: str | None = None
    router_name: str | None = None  # the model's name in the learned router's data (default: ``name``)

    @property
    def available(self) -> bool:
        return self.unavailable_reason is None

    @property
    def blended_price(self) -> float:
        """Price of 1k input plus 1k output tokens; unknown prices sort last."""
        if self.cost_per_1k_input is None or self.cost_per_1k_output is None:
            return float("inf")
        return self.cost_per_1k_input + self.cost_per_1k_output


CatalogueView = Mapping[str, ModelInfo]


@record(slots=True)
class Skipped:
    model: str
    reason: str


@record(slots=True)
class RouteDecision:
    """An ordered plan: try ``models`` in order; ``reason`` says why the first was chosen."""

    strategy: str
    models: tuple[str, ...]
    reason: str
    skipped: tuple[Skipped, ...] = ()
    details: Mapping[str, object] = field(default_factory=dict)

    @property
    def model(self) -> str | None:
        return self.models[0] if self.models else None
