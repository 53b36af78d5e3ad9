"""``POST /v1/chat/completions``: the OpenAI protocol in front of every provider, streamed or not.

The body is parsed from the client's bytes (any content type) and decoded into the canonical request,
which carries the body itself for the same-protocol pass-through. ``model`` is a catalogue model (with its
configured fallbacks) or a routing alias from ``app.api.routing_input.MODEL_ALIASES``.

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
from collections.abc import AsyncIterator
from contextlib import aclosing

import orjson
from fastapi import APIRouter, Request, Response

from app.api.deps import GatewayDep
from app.api.errors import openai_error_event
from app.api.routing_input import answer_extra, answer_headers, keep_passthrough, model_route_input, switchyard_headers
from app.api.session_events import annotate_stream_end, guarded
from app.api.sse import EventStream, EventStreamResponse, sse_event
from app.gateway import Gateway
from app.observability.context import annotate, annotate_outcome
from app.orchestration.streaming import StreamSession
from app.routing.base import RouteDecision, RouteInput
from app.schemas.openai_request import DecodedChat, decode_chat, parse_json_object
from app.schemas.openai_response import ChunkEncoder, completion_body, completion_id

log = logging.getLogger("switchyard.chat")
router = APIRouter()

DONE = b"data: [DONE]\n\n"


def route_input(chat: DecodedChat, gateway: Gateway) -> RouteInput:
    """How ``model`` is routed: a catalogue model by name, else an alias."""
    return model_route_input(chat.model, chat.request, gateway, stream=chat.stream)


def require_passthrough(chat: DecodedChat, decision: RouteDecision, gateway: Gateway) -> RouteDecision:
    """Fields only an OpenAI-protocol upstream honours (``web_search_options``, legacy ``functions``) need
    a model that takes the client's body as it is (see ``app.api.routing_input.keep_passthrough``)."""
    return keep_passthrough(chat.passthrough_only, chat.request, decision, gateway, "an OpenAI-protocol upstream")


@router.post("/v1/chat/completions")
async def chat_completions(request: Request, gateway: GatewayDep) -> Response:
    raw = await request.body()
    chat = decode_chat(parse_json_object(raw), raw)
    decision = gateway.plan(route_input(chat, gateway))
    decision = require_passthrough(chat, decision, gateway)
    annotate(route=decision.strategy, stream=chat.stream)
    if chat.stream:
        return EventStreamResponse(lambda: _open(gateway, decision, chat))
    outcome = await gateway.run(decision, chat.request)
    annotate_outcome(outcome, chat.request)
    completion = outcome.completion
    headers = answer_headers(decision, completion, chat.ignored)
    if (passthrough := completion.passthrough) is not None:
        return Response(content=passthrough.body, media_type=passthrough.content_type, headers=headers)
    extra = answer_extra(decision, outcome)
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
    async with aclosing(guarded(session, openai_error_event)) as events:
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
    gateway asked for is forwarded only when the client asked for it too. A break: an error event. Chunks
    without the upstream's bytes (an upstream that answered one JSON body to the stream request) are encoded
    here, and then the stream ends with ``[DONE]`` of its own."""
    encoder: ChunkEncoder | None = None
    async with aclosing(guarded(session, openai_error_event)) as events:
        async for event in events:
            if isinstance(event, bytes):
                yield event
                return
            if event.raw is not None:
                if include_usage or not event.raw_usage_only:
                    yield event.raw
            elif event.has_output or event.finish_reason is not None:
                if encoder is None:
                    encoder = ChunkEncoder(
                        completion_id(), int(time.time()), session.model, include_usage=include_usage
                    )
                    yield sse_event(encoder.role())
                for body in encoder.encode(event):
                    yield sse_event(body)
            if event.finish_reason is not None:
                annotate_stream_end(session)
    if encoder is not None:
        yield DONE
