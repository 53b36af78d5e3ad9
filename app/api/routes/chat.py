"""``POST /v1/chat/completions``: the OpenAI protocol in front of every provider, streamed or not.

The body is parsed from the client's bytes (any content type) and decoded into the canonical request,
which carries the body itself for the same-protocol pass-through. ``model`` is a catalogue model (with its
configured fallbacks) or a routing alias from ``MODEL_ALIASES``.

An OpenAI-protocol upstream's answer comes back byte for byte (``Completion.passthrough``; streamed: each
chunk's ``raw`` event); any other answer is encoded here. Every answer has the headers
``x-switchyard-route``, ``x-switchyard-provider``, and when non-empty ``x-switchyard-dropped-params``
(options the target does not take, not sent) and ``x-switchyard-ignored-params`` (fields a translated
target ignored). A stream falls back transparently until its first chunk; after that a failure ends it with
an error event (``data: {"error": {...}}``, which the openai SDK raises as ``APIError``) and never with
``data: [DONE]``, so a cut answer is never mistaken for a complete one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterable
from contextlib import aclosing
from dataclasses import replace
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response

from app.api.deps import GatewayDep
from app.api.errors import openai_error_event
from app.api.sse import EventStream, EventStreamResponse, sse_event
from app.domain import StreamChunk
from app.errors import GatewayError, InvalidRequestError, ModelNotFoundError, UpstreamStreamError
from app.gateway import Gateway
from app.observability.context import annotate, annotate_outcome
from app.orchestration.streaming import StreamSession
from app.routing.base import RouteDecision, RouteInput, Skipped
from app.schemas.openai_request import DecodedChat, decode_chat, parse_json_object
from app.schemas.openai_response import ChunkEncoder, completion_body, completion_id

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


def route_input(chat: DecodedChat, gateway: Gateway) -> RouteInput:
    """How ``model`` is routed: a catalogue model by name, else an alias."""
    request, stream = chat.request, chat.stream
    if chat.model in gateway.registry:
        return RouteInput(request=request, mode="specific", model=chat.model, stream=stream)
    mode = MODEL_ALIASES.get(chat.model)
    if mode is None:
        raise ModelNotFoundError(
            f"model {chat.model!r} is neither a catalogue model nor a routing alias "
            f"({', '.join(sorted(MODEL_ALIASES))})",
            model=chat.model,
            param="model",
        )
    return RouteInput(request=request, mode=mode, stream=stream)


def require_passthrough(chat: DecodedChat, decision: RouteDecision, gateway: Gateway) -> RouteDecision:
    """Fields only an OpenAI-protocol upstream honours (``web_search_options``, legacy ``functions``) need
    a model that takes the client's body as it is: the others are skipped from the plan (``skipped`` says
    why); a 400 names the field when the requested model itself, or every planned one, cannot."""
    if not chat.passthrough_only:
        return decision
    field = chat.passthrough_only[0]

    def honours(name: str) -> bool:
        passes = getattr(gateway.registry.entry(name).provider, "passes_through", None)
        return passes is not None and bool(passes(chat.request))

    keep = tuple(name for name in decision.models if honours(name))
    first = decision.model
    if first is not None and (not keep or (decision.strategy == "specific" and first not in keep)):
        raise InvalidRequestError(
            f"{field} is honoured only by an OpenAI-protocol upstream; model {first!r} "
            f"(provider {gateway.registry.entry(first).target.provider}) cannot honour it",
            param=field,
            code="unsupported_parameter",
            model=first,
        )
    reason = f"cannot honour {field} (not an OpenAI-protocol upstream)"
    skipped = tuple(Skipped(name, reason) for name in decision.models if name not in keep)
    return replace(decision, models=keep, skipped=decision.skipped + skipped)


def switchyard_headers(
    strategy: str, model: str, provider: str, dropped: Iterable[str], ignored: Iterable[str]
) -> dict[str, str]:
    headers = {"x-switchyard-route": f"{strategy}; model={model}", "x-switchyard-provider": provider}
    if dropped := ",".join(dropped):
        headers["x-switchyard-dropped-params"] = dropped
    if ignored := ",".join(ignored):
        headers["x-switchyard-ignored-params"] = ignored
    return headers


def _route_extra(decision: RouteDecision) -> dict[str, Any]:
    return {
        "strategy": decision.strategy,
        "reason": decision.reason,
        "candidates": list(decision.models),
        "skipped": [{"model": s.model, "reason": s.reason} for s in decision.skipped],
    }


@router.post("/v1/chat/completions")
async def chat_completions(request: Request, gateway: GatewayDep) -> Response:
    chat = decode_chat(parse_json_object(await request.body()))
    decision = gateway.plan(route_input(chat, gateway))
    decision = require_passthrough(chat, decision, gateway)
    annotate(route=decision.strategy, stream=chat.stream)
    if chat.stream:
        return EventStreamResponse(lambda: _open(gateway, decision, chat))
    outcome = await gateway.run(decision, chat.request)
    annotate_outcome(outcome, chat.request)
    completion = outcome.completion
    passthrough = completion.passthrough
    ignored = chat.ignored if passthrough is None else ()
    headers = switchyard_headers(
        decision.strategy, completion.model, completion.provider, completion.dropped_params, ignored
    )
    if passthrough is not None:
        return Response(content=passthrough.body, media_type=passthrough.content_type, headers=headers)
    extra = {
        "provider": completion.provider,
        "cost": completion.cost,
        "latency_ms": round(completion.latency_ms, 3),
        "route": _route_extra(decision),
        "failures": [f.to_dict() for f in outcome.failures],
        "usage": {"cache_write_tokens": completion.usage.cache_write_tokens, "estimated": completion.usage.estimated},
    }
    body = completion_body(completion, ident=completion_id(), created=int(time.time()), extra=extra)
    return Response(content=orjson.dumps(body), media_type="application/json", headers=headers)


async def _open(gateway: Gateway, decision: RouteDecision, chat: DecodedChat) -> EventStream:
    session = await gateway.stream(decision, chat.request)
    annotate(model=session.model, provider=session.provider, fallbacks=len(session.failures))
    passthrough = bool(getattr(session, "passthrough", False))
    headers = switchyard_headers(
        decision.strategy,
        session.model,
        session.provider,
        getattr(session, "dropped_params", ()),
        () if passthrough else chat.ignored,
    )
    if passthrough:
        return EventStream(passthrough_events(session, include_usage=chat.include_usage), headers)
    return EventStream(chat_events(session, include_usage=chat.include_usage), headers)


async def chat_events(session: StreamSession, *, include_usage: bool) -> AsyncIterator[bytes]:
    """``chat.completion.chunk`` events, the usage chunk if asked, then ``[DONE]``; or an error event."""
    encoder = ChunkEncoder(completion_id(), int(time.time()), session.model, include_usage=include_usage)
    yield sse_event(encoder.role())
    async with aclosing(_guarded(session)) as events:
        async for event in events:
            if isinstance(event, bytes):
                yield event
                return
            for body in encoder.encode(event):
                yield sse_event(body)
            if event.finish_reason is not None:
                annotate_stream_end(session)
    yield DONE


async def passthrough_events(session: StreamSession, *, include_usage: bool) -> AsyncIterator[bytes]:
    """The upstream's own events as it sent them (its final one carries ``[DONE]``); the usage event the
    gateway asked for is forwarded only when the client asked for it too. A break: an error event."""
    async with aclosing(_guarded(session)) as events:
        async for event in events:
            if isinstance(event, bytes):
                yield event
                return
            if event.raw is not None and (include_usage or not event.raw_usage_only):
                yield event.raw
            if event.finish_reason is not None:
                annotate_stream_end(session)


async def _guarded(session: StreamSession) -> AsyncGenerator[StreamChunk | bytes, None]:
    """The session's chunks; a failure, or an end without the model's finish, is yielded as one final
    error event (bytes) instead."""
    chunks = session.chunks()
    try:
        async for piece in chunks:
            yield piece
    except GatewayError as exc:
        log.warning("stream from %s broke after content was sent: %s", session.model, exc.error_type)
        annotate(error_type=exc.error_type)
        yield openai_error_event(exc)
        return
    except Exception as exc:
        log.error("stream from %s failed: %s", session.model, type(exc).__name__, exc_info=exc)
        annotate(error_type="internal_error")
        yield openai_error_event(GatewayError("internal error while streaming"))
        return
    finally:
        closer = getattr(chunks, "aclose", None)
        if closer is not None:  # at once, also when the client went away mid-stream
            await closer()
    if not session.finished:  # defensive: chunks() raises rather than ending early, but never claim completion
        yield openai_error_event(
            UpstreamStreamError(
                "the stream ended before the model finished", provider=session.provider, model=session.model
            )
        )


def annotate_stream_end(session: StreamSession) -> None:
    """Record the finished stream's usage and cost on the request's observability record."""
    usage = session.usage
    if usage is not None:
        annotate(input_tokens=usage.input_tokens, output_tokens=usage.output_tokens, cost=session.cost)
