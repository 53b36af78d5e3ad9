"""``POST /v1/complete``: plan with routing, execute with orchestration, answer the unified response."""

from __future__ import annotations

from functools import partial

from fastapi import APIRouter, Response

from app.api.complete_stream import open_complete_stream
from app.api.deps import GatewayDep
from app.api.sse import EventStreamResponse
from app.observability.context import annotate, annotate_outcome
from app.orchestration.result import Outcome
from app.routing.base import RouteDecision, RouteInput
from app.schemas.complete import CompleteRequest, CompleteResponse, RouteInfo, Tokens

router = APIRouter()


def route_info(decision: RouteDecision, answered_by: str | None) -> RouteInfo:
    return RouteInfo(
        strategy=decision.strategy,
        model=answered_by or decision.model,
        reason=decision.reason,
        candidates=list(decision.models),
        skipped=[{"model": s.model, "reason": s.reason} for s in decision.skipped],
    )


def to_response(outcome: Outcome, decision: RouteDecision) -> CompleteResponse:
    completion = outcome.completion
    total = outcome.total_usage
    return CompleteResponse(
        content=completion.content,
        model=completion.model,
        provider=completion.provider,
        tokens=Tokens(input=completion.usage.input_tokens, output=completion.usage.output_tokens),
        latency_ms=round(completion.latency_ms, 3),
        cost=completion.cost,
        route=route_info(decision, completion.model),
        finish_reason=completion.finish_reason,
        upstream_model=completion.upstream_model,
        failures=[f.to_dict() for f in outcome.failures],
        total_tokens=Tokens(input=total.input_tokens, output=total.output_tokens),
        total_cost=outcome.total_cost,
        price_known=completion.cost is not None,
        **outcome.response_fields(),
    )


@router.post("/v1/complete", response_model=CompleteResponse)
async def complete(body: CompleteRequest, gateway: GatewayDep, response: Response) -> CompleteResponse:
    request = body.to_chat_request()
    decision = gateway.plan(
        RouteInput(
            request=request,
            mode=body.routing,
            model=body.model,
            task_type=body.task_type,
            models=tuple(body.models or ()),
            max_cost=body.max_cost,
            stream=body.stream,
            quality_tolerance=body.quality_tolerance,
        )
    )
    annotate(route=decision.strategy, stream=body.stream)
    if body.stream:
        opener = partial(open_complete_stream, gateway, decision, request, body.timeout_s, route_info)
        return EventStreamResponse(opener)  # type: ignore[return-value]
    outcome = await gateway.run(decision, request, body.run_options())
    annotate_outcome(outcome, request)
    response.headers["x-switchyard-route"] = f"{decision.strategy}; model={outcome.completion.model}"
    return to_response(outcome, decision)
