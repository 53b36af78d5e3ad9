"""``POST /v1/route``: a dry run. Takes a ``/v1/complete`` body and answers the routing decision without
calling any model (the same 4xx errors as ``/v1/complete``, e.g. 422 ``budget_exceeded``). The details
explain semantic task detection (task scores, nearest examples) and learned routing (predicted quality per
candidate, the tolerance, the eligible models and their estimated cost)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from app.api.deps import GatewayDep
from app.routing.base import RouteInput
from app.schemas.complete import CompleteRequest
from app.schemas.route import RouteResponse

router = APIRouter()


@router.post("/v1/route", response_model=RouteResponse)
async def dry_run(body: CompleteRequest, gateway: GatewayDep, response: Response) -> RouteResponse:
    decision = gateway.plan(
        RouteInput(
            request=body.to_chat_request(),
            mode=body.routing,
            model=body.model,
            task_type=body.task_type,
            models=tuple(body.models or ()),
            max_cost=body.max_cost,
            quality_tolerance=body.quality_tolerance,
            explain=True,
        )
    )
    response.headers["x-switchyard-route"] = f"{decision.strategy}; model={decision.model}"
    return RouteResponse(
        strategy=decision.strategy,
        model=decision.model,
        reason=decision.reason,
        candidates=list(decision.models),
        skipped=[{"model": s.model, "reason": s.reason} for s in decision.skipped],
        details=dict(decision.details),
    )
