"""``POST /v1/messages`` and ``POST /v1/messages/count_tokens``: the Anthropic Messages API in front of
every provider, streamed or not (what the ``anthropic`` SDKs and Claude Code speak).

``model`` is routed as in the OpenAI front-end (a catalogue model with its fallbacks, or a routing alias;
``app.api.routing_input``). An Anthropic upstream gets the client's body as sent (only ``model`` replaced,
the ``anthropic-beta`` header along) and its answer comes back byte for byte, stream events included. Any
other target gets the canonical translation, and its answer is encoded here in Anthropic's shape
(``app.schemas.anthropic_response``); fields it cannot honour but that change nothing essential are dropped
and named in ``x-switchyard-ignored-params``, the others (server tools, MCP servers, Anthropic-only blocks)
keep the request on Anthropic upstreams or are refused with a 400.

A request routed by alias that continues a tool-use turn (its last user turn carries ``tool_result``)
stays on the model that made the calls, then follows the alias' plan if that model fails: the ``tool_use``
ids the gateway hands out name the model (``app.schemas.anthropic_ids``; an Anthropic upstream's ids are
tagged in its answer too when the client routed by alias), so no state is kept and any replica routes it
alike. A client that names a catalogue model gets that model (and its fallbacks), as always.

Every error, validation failures included, is in Anthropic's shape (``AnthropicRoute``); a failure after a
stream started is an ``event: error``, never a clean ``message_stop``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import aclosing
from dataclasses import replace
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute
from starlette.types import Send

from app.api.deps import GatewayDep
from app.api.errors import anthropic_error_body, anthropic_error_event, anthropic_status, as_gateway_error
from app.api.routing_input import answer_extra, answer_headers, keep_passthrough, model_route_input, switchyard_headers
from app.api.session_events import annotate_stream_end, guarded
from app.api.sse import EventStream, EventStreamResponse, sse_event
from app.domain import ChatRequest
from app.errors import GatewayError, UpstreamBadRequestError, UpstreamError
from app.gateway import Gateway
from app.observability.context import annotate, annotate_outcome
from app.orchestration.streaming import StreamSession
from app.providers.transport import Who
from app.routing.base import RouteDecision, RouteInput
from app.schemas.anthropic_ids import model_of_tool_id, tag_event_ids, tag_message_ids
from app.schemas.anthropic_request import DecodedMessages, decode_messages_request
from app.schemas.anthropic_response import EventEncoder, message_body, message_id
from app.schemas.openai_request import parse_json_object
from app.tokens import estimate_prompt_tokens, estimate_tokens

log = logging.getLogger("switchyard.messages")
ANTHROPIC_UPSTREAM = "an Anthropic upstream"


class AnthropicRoute(APIRoute):
    """A route whose every error (validation, routing, upstream, unexpected) answers in Anthropic's shape."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:
                error = as_gateway_error(exc)
                status = anthropic_status(error)
                return Response(
                    orjson.dumps(anthropic_error_body(error)),
                    status_code=status,
                    media_type="application/json",
                    headers=error.headers or None,
                )

        return handle


router = APIRouter(route_class=AnthropicRoute)


class AnthropicEventStreamResponse(EventStreamResponse):
    """An event stream whose opening failure (before any event) is an Anthropic-shaped JSON error."""

    async def _serve(self, send: Send) -> None:
        opener = self.open_stream
        try:
            stream = await opener()
        except Exception as exc:
            error = as_gateway_error(exc)
            data = orjson.dumps(anthropic_error_body(error))
            raw = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
            raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in error.headers.items()]
            await send({"type": "http.response.start", "status": anthropic_status(error), "headers": raw})
            await send({"type": "http.response.body", "body": data, "more_body": False})
            return

        async def ready() -> EventStream:
            return stream

        self.open_stream = ready
        await super()._serve(send)


# --- planning ---------------------------------------------------------------------------------------------


def continued_model(request: ChatRequest) -> str | None:
    """The catalogue model that made the tool calls whose results end the conversation (None when the last
    user turn carries no tool result, or its ids are not the gateway's)."""
    for message in reversed(request.messages):
        if message.role == "assistant":
            return None
        if message.role == "tool" and message.tool_call_id:
            model = model_of_tool_id(message.tool_call_id)
            if model is not None:
                return model
    return None


# Capabilities whose absence changes nothing essential for an Anthropic client: the request goes without them
# (named in ``x-switchyard-ignored-params``) to a model the client named that lacks them.
HARMLESS: dict[str, tuple[str, Callable[[ChatRequest], ChatRequest]]] = {
    "reasoning_effort": ("thinking", lambda r: replace(r, reasoning=None)),
    "top_k": ("top_k", lambda r: replace(r, top_k=None)),
}


def relax(decoded: DecodedMessages, gateway: Gateway) -> DecodedMessages:
    """``decoded`` without the harmless features the model the client named cannot honour."""
    if decoded.model not in gateway.registry:
        return decoded
    request, ignored = decoded.request, list(decoded.ignored)
    missing = gateway.cannot_serve(decoded.model, request, stream=decoded.stream)
    for param, (name, clear) in HARMLESS.items():
        if param in missing:
            request = clear(request)
            ignored.append(name)
    return replace(decoded, request=request, ignored=tuple(ignored))


def plan(decoded: DecodedMessages, gateway: Gateway) -> RouteDecision:
    """Route the request: a continued tool-use turn first goes to the model that started it (when the
    client routes by alias), then to the alias' plan; Anthropic-only features keep Anthropic upstreams."""
    request, stream = decoded.request, decoded.stream
    inp = model_route_input(decoded.model, request, gateway, stream=stream)
    decision = gateway.plan(inp)
    pinned_model = continued_model(request) if inp.mode != "specific" else None
    if pinned_model is not None and pinned_model in gateway.registry:
        try:
            pinned = gateway.plan(RouteInput(request=request, mode="specific", model=pinned_model, stream=stream))
        except GatewayError:
            pinned = None  # it cannot serve this request (or this key may not use it): the alias' plan alone
        if pinned is not None and pinned.model == pinned_model:
            models = tuple(dict.fromkeys(pinned.models + decision.models))
            reason = f"continues the tool-use turn of {pinned_model}; then: {decision.reason}"
            # a race would not keep the model: the continuation tries it first, then the others in turn
            strategy = pinned.strategy if decision.strategy == "parallel" else decision.strategy
            skipped = pinned.skipped + decision.skipped
            decision = replace(decision, strategy=strategy, models=models, reason=reason, skipped=skipped)
    return keep_passthrough(decoded.anthropic_only, request, decision, gateway, ANTHROPIC_UPSTREAM)


def _decode(raw: bytes, request: Request, *, count_only: bool = False) -> DecodedMessages:
    headers = {k.lower(): v for k, v in request.headers.items()}
    return decode_messages_request(parse_json_object(raw), headers, count_only=count_only, raw=raw)


# --- POST /v1/messages ------------------------------------------------------------------------------------


@router.post("/v1/messages")
async def create_message(request: Request, gateway: GatewayDep) -> Response:
    decoded = relax(_decode(await request.body(), request), gateway)
    decision = plan(decoded, gateway)
    annotate(route=decision.strategy, stream=decoded.stream)
    if decoded.stream:
        return AnthropicEventStreamResponse(lambda: _open(gateway, decision, decoded))
    outcome = await gateway.run(decision, decoded.request)
    annotate_outcome(outcome, decoded.request)
    completion = outcome.completion
    headers = answer_headers(decision, completion, decoded.ignored)
    if (passthrough := completion.passthrough) is not None:
        sent = passthrough.body
        content = tag_message_ids(sent, completion.model) if aliased(decoded, gateway) else sent
        return Response(content=content, media_type=passthrough.content_type, headers=headers)
    body = message_body(completion, ident=message_id(), extra=answer_extra(decision, outcome))
    return Response(content=orjson.dumps(body), media_type="application/json", headers=headers)


async def _open(gateway: Gateway, decision: RouteDecision, decoded: DecodedMessages) -> EventStream:
    session = await gateway.stream(decision, decoded.request)
    annotate(model=session.model, provider=session.provider, fallbacks=len(session.failures))
    headers = switchyard_headers(
        decision.strategy,
        session.model,
        session.provider,
        session.dropped_params,
        () if session.passthrough else decoded.ignored,
    )
    if session.passthrough:
        events = passthrough_events(session, tag_ids=aliased(decoded, gateway))
        return EventStream(events, headers, anthropic_error_event)
    return EventStream(message_events(session, estimate_prompt_tokens(decoded.request)), headers, anthropic_error_event)


def aliased(decoded: DecodedMessages, gateway: Gateway) -> bool:
    """Whether the client routes by alias (then a pass-through answer's tool ids are tagged with the model
    that made them, to keep the loop on it)."""
    return decoded.model not in gateway.registry


async def message_events(session: StreamSession, input_tokens: int) -> AsyncIterator[bytes]:
    """Anthropic's events for a translated stream; an ``event: error`` if it breaks."""
    encoder = EventEncoder(message_id(), session.model, input_tokens, provider=session.provider)
    for name, data in encoder.start():
        yield sse_event(data, name)
    async with aclosing(guarded(session, anthropic_error_event)) as events:
        async for event in events:
            if isinstance(event, bytes):
                yield event
                return
            for name, data in encoder.encode(event):
                yield sse_event(data, name)
            if event.finish_reason is not None:
                annotate_stream_end(session)


async def passthrough_events(session: StreamSession, *, tag_ids: bool = False) -> AsyncIterator[bytes]:
    """The Anthropic upstream's own events as it sent them (``tag_ids``: but for the ``tool_use`` ids, tagged
    with the model); an ``event: error`` if it breaks."""
    async with aclosing(guarded(session, anthropic_error_event)) as events:
        async for event in events:
            if isinstance(event, bytes):
                yield event
                return
            if event.raw is not None:
                yield tag_event_ids(event.raw, session.model) if tag_ids else event.raw
            if event.finish_reason is not None:
                annotate_stream_end(session)


# --- POST /v1/messages/count_tokens ------------------------------------------------------------------------

TOKEN_COUNT_HEADER = "x-switchyard-token-count"


def estimate_input_tokens(decoded: DecodedMessages) -> int:
    """The gateway's estimate (``app.tokens``): the messages, plus the tools' definitions."""
    tools = orjson.dumps(decoded.body.tools).decode() if decoded.body.tools else ""
    return estimate_prompt_tokens(decoded.request) + estimate_tokens(tools)


@router.post("/v1/messages/count_tokens")
async def count_tokens(request: Request, gateway: GatewayDep) -> Response:
    """Exact from an Anthropic upstream (its own ``count_tokens``), else the gateway's estimate;
    ``x-switchyard-token-count`` says which (``exact`` or ``estimated``), as does ``switchyard.estimated``.
    An Anthropic upstream that cannot count (unavailable, a proxy without the endpoint) gets the estimate
    too, with ``switchyard.exact_failed`` naming the error's type; one that refuses the request (a 400) is
    that error."""
    decoded = relax(_decode(await request.body(), request, count_only=True), gateway)
    decision = plan(decoded, gateway)
    name = decision.model
    extra: dict[str, Any] = {"model": name, "estimated": True}
    if name is not None:
        entry = gateway.registry.entry(name)
        codec, transport = getattr(entry.provider, "codec", None), getattr(entry.provider, "transport", None)
        if hasattr(codec, "encode_count_tokens") and transport is not None:
            target = entry.target
            call = codec.encode_count_tokens(decoded.request, target)  # type: ignore[union-attr]
            try:
                answer = await transport.request(call, Who(target.provider, name), target.timeout_s)
                count = codec.decode_count_tokens(answer, target)  # type: ignore[union-attr]
            except UpstreamBadRequestError:
                raise  # the upstream refuses this request: so would /v1/messages
            except UpstreamError as exc:
                log.warning("count_tokens of %s failed (%s): the gateway's estimate instead", name, exc.error_type)
                extra["exact_failed"] = exc.error_type
            else:
                body = {"input_tokens": count, "switchyard": {**extra, "estimated": False}}
                headers = {TOKEN_COUNT_HEADER: "exact"}
                return Response(orjson.dumps(body), media_type="application/json", headers=headers)
    body = {"input_tokens": estimate_input_tokens(decoded), "switchyard": extra}
    return Response(orjson.dumps(body), media_type="application/json", headers={TOKEN_COUNT_HEADER: "estimated"})
