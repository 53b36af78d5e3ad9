"""``POST /v1/route``: the routing decision of a ``/v1/complete`` body, without calling any model."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class RouteResponse(BaseModel):
    strategy: str = Field(description="specific, parallel, task, cost, complexity, rules or learned.")
    model: str | None = Field(description="The model that would be called first.")
    reason: str
    candidates: list[str] = Field(description="Every model that would be tried, in order.")
    skipped: list[dict[str, str]] = Field(default_factory=list, description="Unavailable models passed over.")
    details: dict[str, Any] = Field(
        default_factory=dict,
        description="Strategy facts: level, task (with the semantic scores and nearest examples), rule, required "
        "tier, token and cost estimates, max_cost, the learned router's predicted quality per candidate.",
    )


class FeedbackRequest(BaseModel):
    """``POST /v1/feedback``: a score for the answer of one earlier request (its ``x-request-id``)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    request_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")
    score: float = Field(ge=0, le=1, description="0 (bad) .. 1 (good).")
    comment: str | None = Field(default=None, max_length=4000)


class FeedbackResponse(BaseModel):
    request_id: str
    recorded: bool = True
    model: str | None = Field(description="The model that answered the request.")
    strategy: str | None = Field(description="The routing strategy that chose it.")
