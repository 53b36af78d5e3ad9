"""The Server-Sent Events answer of ``POST /v1/complete`` with ``"stream": true``.

Each event has an ``event:`` name and a JSON ``data:`` line whose ``type`` repeats the name:

``start``  once, when the first chunk arrived:
           ``{"type": "start", "model", "provider", "route": {...}, "failures": [...]}``
           (``failures``: models that failed before streaming and were fallen back from)
``delta``  text as it arrives: ``{"type": "delta", "content": "..."}``
``done``   last event of a complete answer: ``{"type": "done", "model", "provider", "finish_reason",
           "tokens": {"input", "output"}, "latency_ms", "ttft_ms", "cost", "price_known", "route", "failures"}``
``error``  instead of ``done`` when the stream broke after it started (content already sent is
           incomplete): ``{"type": "error", "error": {"type", "message", "provider", "model", ...}}``

A stream ends with exactly one ``done`` or one ``error``. A failure before the first chunk is not an
event: it is the ordinary JSON error answer with its HTTP status (after every fallback was tried).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from pydantic import BaseModel

from app.api.errors import error_object
from app.api.sse import EventStream, sse_event
from app.domain import ChatRequest
from app.errors import GatewayError, UpstreamStreamError
from app.gateway import Gateway
from app.observability.context import annotate
from app.orchestration.streaming import StreamSession
from app.routing.base import RouteDecision

log = logging.getLogger("switchyard.complete")

RouteFor = Callable[[RouteDecision, str], BaseModel]  # (plan, answering model) -> route info


async def open_complete_stream(
    gateway: Gateway, decision: RouteDecision, request: ChatRequest, timeout_s: float | None, route_for: RouteFor
) -> EventStream:
    """Open the stream (fallbacks until a first chunk) and encode it as ``/v1/complete`` events."""
    session = await gateway.stream(decision, request, timeout_s)
    annotate(model=session.model, provider=session.provider, fallbacks=len(session.failures))
    headers = {
        "x-switchyard-route": f"{decision.strategy}; model={session.model}",
        "x-switchyard-provider": session.provider,
    }
    events = complete_events(session, route_for(decision, session.model).model_dump())
    return EventStream(events, headers, error_event=error_event)


def _event(kind: str, **fields: Any) -> bytes:
    return sse_event({"type": kind, **fields}, event=kind)


def error_event(exc: GatewayError) -> bytes:
    """The ``error`` event that ends a broken stream."""
    return _event("error", error=error_object(exc))


async def complete_events(session: StreamSession, route: dict[str, Any]) -> AsyncIterator[bytes]:
    """``start``, ``delta``..., then ``done``; or ``error`` if the stream breaks."""
    failures = [f.to_dict() for f in session.failures]
    yield _event("start", model=session.model, provider=session.provider, route=route, failures=failures)
    try:
        async for chunk in session.chunks():
            if chunk.delta:
                yield _event("delta", content=chunk.delta)
    except GatewayError as exc:
        log.debug("stream from %s broke after content was sent: %s", session.model, exc.error_type)
        annotate(error_type=exc.error_type, error_message=exc.message)  # logged once, with the request
        yield _event("error", error=error_object(exc))
        return
    except Exception as exc:
        log.error("stream from %s failed: %s", session.model, type(exc).__name__, exc_info=exc)
        annotate(error_type="internal_error")
        yield _event("error", error=error_object(GatewayError("internal error while streaming")))
        return
    usage = session.usage
    if not session.finished or usage is None:  # defensive: chunks() raises rather than ending early
        early = UpstreamStreamError("the stream ended early", provider=session.provider, model=session.model)
        yield _event("error", error=error_object(early))
        return
    cost = session.cost
    annotate(input_tokens=usage.input_tokens, output_tokens=usage.output_tokens, cost=cost)
    yield _event(
        "done",
        model=session.model,
        provider=session.provider,
        finish_reason=session.finish_reason,
        tokens={"input": usage.input_tokens, "output": usage.output_tokens},
        latency_ms=round(session.latency_ms, 3),
        ttft_ms=round(session.ttft_ms, 3),
        cost=cost,
        price_known=cost is not None,
        route=route,
        failures=failures,
    )
