"""``POST /v1/feedback``: score the answer of an earlier request (by its ``x-request-id``). The score is
kept with that request's routing decision and answering model in the shared state store, for
``switchyard router train --from-feedback`` (see ``app.routing.feedback``)."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.deps import GatewayDep
from app.errors import GatewayError, StateUnavailableError
from app.schemas.route import FeedbackRequest, FeedbackResponse
from app.state.base import StoreUnavailableError

router = APIRouter()


class FeedbackUnavailableError(GatewayError):
    status_code = 404
    error_type = "feedback_disabled"


class RequestNotFoundError(GatewayError):
    status_code = 404
    error_type = "request_not_found"


@router.post("/v1/feedback", response_model=FeedbackResponse)
async def feedback(body: FeedbackRequest, gateway: GatewayDep) -> FeedbackResponse:
    log = gateway.feedback_log
    if log is None:
        raise FeedbackUnavailableError("feedback is off: set routing.feedback.enabled: true in the configuration")
    try:
        row = await log.add(body.request_id, body.score, body.comment)
    except StoreUnavailableError:
        raise StateUnavailableError("the state store is unreachable; try again shortly") from None
    if row is None:
        raise RequestNotFoundError(
            f"no routing decision is recorded for request {body.request_id!r} (unknown, or older than "
            "routing.feedback.ttl_s)"
        )
    return FeedbackResponse(request_id=body.request_id, model=row.get("model"), strategy=row.get("strategy"))
