"""``POST /v1/chat/completions``: the OpenAI protocol in front of every provider, streamed or not.

``model`` is a catalogue model (with its configured fallbacks) or a routing alias from ``MODEL_ALIASES``.
A stream falls back transparently until its first chunk; after that a failure ends it with an error
event (``data: {"error": {...}}``, which the openai SDK raises as ``APIError``) and never with
``data: [DONE]``, so a cut answer is never mistaken for a complete one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Response

from app.api.deps import GatewayDep
from app.api.sse import EventStream, EventStreamResponse, sse_event
from app.domain import ChatRequest
from app.errors import GatewayError, ModelNotFoundError
from app.gateway import Gateway
from app.observability.context import annotate, annotate_outcome
from app.orchestration.streaming import StreamOpener, StreamSession
from app.routing.base import RouteDecision, RouteInput
from app.schemas.openai import (
    ChatCompletionRequest,
    ChatCompletionResponse,
    chunk_dict,
    completion_id,
    completion_response,
    to_chat_request,
    tool_delta_dict,
)

log = logging.getLogger("switchyard.chat")
router = APIRouter()

# The one table of routing aliases usable as ``model`` (a catalogue model of the same name wins).
MODEL_ALIASES: dict[str, str] = {
    "auto": "auto",  # the configured rules, then the configured default strategy (complexity)
    "complexity": "complexity",  # complexity routing
    "rules": "rules",  # the configured routing rules only
    "task": "task",  # task-type routing (detected from the prompt)
    "cheapest": "cost",  # cost router: cheapest model expected to be good enough
    "cost": "cost",
    "race": "parallel",  # every available model at once; the first answer (first chunk) wins
    "parallel": "parallel",
}

DONE = b"data: [DONE]\n\n"


def route_input(body: ChatCompletionRequest, request: ChatRequest, gateway: Gateway) -> RouteInput:
    """How ``body.model`` is routed: a catalogue model by name, else an alias."""
    if body.model in gateway.registry:
        return RouteInput(request=request, mode="specific", model=body.model)
    mode = MODEL_ALIASES.get(body.model)
    if mode is None:
        raise ModelNotFoundError(
            f"model {body.model!r} is neither a catalogue model nor a routing alias "
            f"({', '.join(sorted(MODEL_ALIASES))})",
            model=body.model,
            param="model",
        )
    return RouteInput(request=request, mode=mode)


def _route_extra(decision: RouteDecision) -> dict[str, Any]:
    return {"strategy": decision.strategy, "reason": decision.reason, "candidates": list(decision.models)}


@router.post("/v1/chat/completions", response_model=ChatCompletionResponse)
async def chat_completions(body: ChatCompletionRequest, gateway: GatewayDep, response: Response) -> Any:
    request = to_chat_request(body)
    decision = gateway.plan(route_input(body, request, gateway))
    annotate(route=decision.strategy, stream=bool(body.stream))
    if body.stream:
        return EventStreamResponse(lambda: _open(gateway, decision, request, body.include_usage))
    outcome = await gateway.run(decision, request)
    annotate_outcome(outcome, request)
    completion = outcome.completion
    response.headers["x-switchyard-route"] = f"{decision.strategy}; model={completion.model}"
    response.headers["x-switchyard-provider"] = completion.provider
    extra = {
        "provider": completion.provider,
        "cost": completion.cost,
        "latency_ms": round(completion.latency_ms, 3),
        "route": _route_extra(decision),
        "failures": [f.to_dict() for f in outcome.failures],
    }
    return completion_response(completion, extra)


async def _open(gateway: Gateway, decision: RouteDecision, request: ChatRequest, usage: bool) -> EventStream:
    session = await StreamOpener(gateway.executor).open(decision, request)
    annotate(model=session.model, provider=session.provider, fallbacks=len(session.failures))
    headers = {
        "x-switchyard-route": f"{decision.strategy}; model={session.model}",
        "x-switchyard-provider": session.provider,
    }
    return EventStream(chat_events(session, include_usage=usage), headers)


async def chat_events(session: StreamSession, *, include_usage: bool) -> AsyncIterator[bytes]:
    """``chat.completion.chunk`` events, the usage chunk if asked, then ``[DONE]``; or an error event."""
    ident, created, model = completion_id(), int(time.time()), session.model

    def chunk(delta: dict[str, Any] | None, finish: str | None = None, **usage: Any) -> bytes:
        return sse_event(chunk_dict(ident, created, model, delta, finish, include_usage=include_usage, **usage))

    yield chunk({"role": "assistant", "content": ""})
    try:
        async for piece in session.chunks():
            if piece.delta or piece.tool_calls:
                delta: dict[str, Any] = {}
                if piece.delta:
                    delta["content"] = piece.delta
                if piece.tool_calls:
                    delta["tool_calls"] = [tool_delta_dict(d) for d in piece.tool_calls]
                yield chunk(delta)
            if piece.finish_reason is not None:
                annotate_stream_end(session)
                yield chunk({}, piece.finish_reason)
                if include_usage:
                    yield chunk(None, usage=piece.usage)
    except GatewayError as exc:
        log.warning("stream from %s broke after content was sent: %s", model, exc.error_type)
        annotate(error_type=exc.error_type)
        yield error_event(exc)
        return
    except Exception as exc:
        log.error("stream from %s failed: %s", model, type(exc).__name__, exc_info=exc)
        annotate(error_type="internal_error")
        yield error_event(GatewayError("internal error while streaming"))
        return
    if session.finished:
        yield DONE
    else:  # defensive: chunks() raises rather than ending early, but never claim completion
        yield error_event(GatewayError("the stream ended before the model finished"))


def annotate_stream_end(session: StreamSession) -> None:
    """Record the finished stream's usage and cost on the request's observability record."""
    usage = session.usage
    if usage is not None:
        annotate(input_tokens=usage.input_tokens, output_tokens=usage.output_tokens, cost=session.cost)


def error_event(exc: GatewayError) -> bytes:
    """``data: {"error": {...}}``: the openai SDK raises it as ``openai.APIError``."""
    error = exc.to_body()["error"]
    return sse_event({"error": {**error, "code": exc.error_type, "param": None}})
