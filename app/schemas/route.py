"""``POST /v1/route``: the routing decision of a ``/v1/complete`` body, without calling any model."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class RouteResponse(BaseModel):
    strategy: str = Field(description="specific, parallel, task, cost, complexity or rules.")
    model: str | None = Field(description="The model that would be called first.")
    reason: str
    candidates: list[str] = Field(description="Every model that would be tried, in order.")
    skipped: list[dict[str, str]] = Field(default_factory=list, description="Unavailable models passed over.")
    details: dict[str, Any] = Field(
        default_factory=dict,
        description="Strategy facts: level, task, rule, required tier, token and cost estimates, max_cost.",
    )
