"""``POST /v1/responses`` and the stored responses (``GET``/``DELETE /v1/responses/{id}``,
``GET /v1/responses/{id}/input_items``): OpenAI's Responses API in front of every provider, streamed or not
(what the Codex CLI, the OpenAI Agents SDK and ``client.responses`` speak).

``model`` is routed as in the other front-ends (a catalogue model with its fallbacks, or a routing alias;
``app.api.routing_input``), planned with ``Gateway.plan`` and run with ``Gateway.run`` / ``Gateway.stream``.
A provider of kind ``openai`` gets the client's body at its own ``/responses`` (only ``model`` replaced) and
its answer comes back byte for byte, events included; any other target gets the canonical translation and
its answer is encoded here (``app.schemas.responses_response``, ``app.schemas.responses_stream``). What
only OpenAI can serve (built-in tools, foreign item types) keeps the request on OpenAI upstreams, or is a
400 naming the field.

With ``store`` (the default) the response is kept (``app.responses.store``) with the conversation in item
form, so ``previous_response_id`` continues it on any provider: the earlier items are put before the new
input (also for an OpenAI upstream, which need not know the id). It is saved before ``response.completed``
is sent, so a client may continue at once. Errors are in OpenAI's shape; a stream that breaks after it
started ends with ``response.failed``, never ``response.completed``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import replace
from typing import Any, Literal

import orjson
from fastapi import APIRouter, Query, Request, Response

from app.api.deps import GatewayDep
from app.api.routing_input import answer_extra, answer_headers, model_route_input, switchyard_headers
from app.api.session_events import annotate_stream_end, guarded
from app.api.sse import EventStream, EventStreamResponse, sse_event
from app.domain import Completion
from app.errors import GatewayError, InvalidRequestError
from app.gateway import Gateway
from app.observability.context import annotate, annotate_outcome
from app.orchestration.result import Outcome
from app.orchestration.streaming import StreamSession
from app.responses.store import ResponseStore, StoredResponse, current_owner
from app.routing.base import RouteDecision, Skipped
from app.schemas.openai_content import bad
from app.schemas.openai_request import parse_json_object
from app.schemas.responses_request import DecodedResponses, decode_responses
from app.schemas.responses_response import error_object, new_id, output_items, response_body, status_of
from app.schemas.responses_stream import ResponseEventEncoder

log = logging.getLogger("switchyard.responses")
router = APIRouter()
OPENAI = "openai"
OPENAI_UPSTREAM = "an OpenAI upstream (provider openai)"


def response_store(gateway: Gateway) -> ResponseStore:
    return ResponseStore(gateway.state_store, gateway.settings.responses_ttl_s)


# --- planning ---------------------------------------------------------------------------------------------


def keep_openai(decoded: DecodedResponses, decision: RouteDecision, gateway: Gateway) -> RouteDecision:
    """What only OpenAI's own Responses API honours keeps the plan on provider ``openai`` models (the others
    are skipped, and named in ``skipped``); a 400 names the field when the requested model, or every
    planned one, is not one."""
    fields = decoded.passthrough_only
    if not fields:
        return decision

    def kind(name: str) -> str:
        return gateway.registry.entry(name).target.provider

    keep = tuple(name for name in decision.models if kind(name) == OPENAI)
    first = decision.model
    if first is not None and (not keep or (decision.strategy == "specific" and first not in keep)):
        raise InvalidRequestError(
            f"{fields[0]} is honoured only by {OPENAI_UPSTREAM}; model {first!r} (provider {kind(first)}) "
            "cannot honour it",
            param=fields[0].split(" ")[0],
            code="unsupported_parameter",
            model=first,
        )
    reason = f"cannot honour {fields[0]} (not {OPENAI_UPSTREAM})"
    skipped = tuple(Skipped(name, reason) for name in decision.models if name not in keep)
    return replace(decision, models=keep, skipped=decision.skipped + skipped)


async def continued(decoded: DecodedResponses, store: ResponseStore) -> tuple[DecodedResponses, list[Any]]:
    """The request with the stored conversation of ``previous_response_id`` before it, and that history."""
    previous = decoded.body.previous_response_id
    if previous is None:
        return decoded, []
    stored = await store.get(previous, param="previous_response_id")
    return decoded.with_history(stored.history), stored.history


def input_items_with_ids(items: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
    """This turn's input items as ``input_items`` lists them: each with an id."""
    out = []
    for item in items:
        if "id" not in item:
            prefix = {"function_call_output": "fco", "function_call": "fc"}.get(str(item.get("type")), "msg")
            item = {"id": new_id(prefix), **({"type": "message"} if "type" not in item else {}), **item}
        out.append(item)
    return out


async def save(
    store: ResponseStore,
    decoded: DecodedResponses,
    history: list[Any],
    response: dict[str, Any],
    output: list[Any],
) -> None:
    """Keep the response (``store`` not false); a store that cannot be reached is logged, never fatal."""
    if not decoded.store or not isinstance(response.get("id"), str):
        return
    items = input_items_with_ids(decoded.items)
    record = StoredResponse(response, items, [*history, *decoded.items, *output], current_owner())
    try:
        await store.save(response["id"], record)
    except GatewayError as exc:
        log.warning("response %s not stored: %s", response["id"], exc.error_type)


def gateway_items(output: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A translated answer's items for the stored conversation, without the ids the gateway made up (an OpenAI
    upstream that gets the conversation later must not look them up)."""
    return [{k: v for k, v in item.items() if k != "id"} for item in output]


def sse_data(raw: bytes) -> dict[str, Any] | None:
    """The JSON object of one SSE event's data lines (None when it has none)."""
    lines = [line[5:].strip() for line in raw.splitlines() if line.startswith(b"data:")]
    try:
        data = orjson.loads(b"\n".join(lines)) if lines else None
    except orjson.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


# --- POST /v1/responses -----------------------------------------------------------------------------------


@router.post("/v1/responses")
async def create_response(request: Request, gateway: GatewayDep) -> Response:
    store = response_store(gateway)
    raw = await request.body()
    decoded, history = await continued(decode_responses(parse_json_object(raw), raw), store)
    inp = model_route_input(decoded.model, decoded.request, gateway, stream=decoded.stream)
    decision = keep_openai(decoded, gateway.plan(inp), gateway)
    annotate(route=decision.strategy, stream=decoded.stream)
    if decoded.stream:
        return EventStreamResponse(lambda: _open(gateway, decision, decoded, store, history))
    outcome = await gateway.run(decision, decoded.request)
    annotate_outcome(outcome, decoded.request)
    completion = outcome.completion
    headers = answer_headers(decision, completion, decoded.ignored)
    if (passthrough := completion.passthrough) is not None:
        data = sse_data(b"data: " + passthrough.body) or {}
        await save(store, decoded, history, data, list(data.get("output") or ()))
        return Response(content=passthrough.body, media_type=passthrough.content_type, headers=headers)
    body, output = translated(decoded, completion, decision, outcome)
    await save(store, decoded, history, body, gateway_items(output))
    return Response(content=orjson.dumps(body), media_type="application/json", headers=headers)


def translated(
    decoded: DecodedResponses, completion: Completion, decision: RouteDecision, outcome: Outcome
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The response object of a translated answer, and its full output (encrypted reasoning included)."""
    output = output_items(completion, encrypted=True, namespaces=decoded.namespaces)
    public = output if decoded.encrypted_reasoning else [_public(i) for i in output]
    status, incomplete = status_of(completion.finish_reason)
    extra = answer_extra(decision, outcome)
    body = response_body(
        decoded,
        ident=new_id("resp"),
        created_at=int(time.time()),
        model=completion.model,
        status=status,
        output=public,
        usage=completion.usage,
        incomplete=incomplete,
        extra=extra,
    )
    return body, output


def _public(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k != "encrypted_content"}


# --- streams ----------------------------------------------------------------------------------------------


async def _open(
    gateway: Gateway, decision: RouteDecision, decoded: DecodedResponses, store: ResponseStore, history: list[Any]
) -> EventStream:
    session = await gateway.stream(decision, decoded.request)
    annotate(model=session.model, provider=session.provider, fallbacks=len(session.failures))
    passthrough = (session.preamble[0] if session.preamble else session.first).raw is not None
    headers = switchyard_headers(
        decision.strategy,
        session.model,
        session.provider,
        session.dropped_params,
        () if passthrough else decoded.ignored,
    )
    if passthrough:
        relay = Relay(decoded, store, history)
        return EventStream(relay.events(session), headers, relay.failed)
    encoder = ResponseEventEncoder(decoded, new_id("resp"), session.model, session.provider)

    def failed(exc: GatewayError) -> bytes:
        name, data = encoder.failed(exc)
        return sse_event(data, name)

    return EventStream(translated_events(session, decoded, encoder, failed, store, history), headers, failed)


async def translated_events(
    session: StreamSession,
    decoded: DecodedResponses,
    encoder: ResponseEventEncoder,
    failed: Any,
    store: ResponseStore,
    history: list[Any],
) -> AsyncIterator[bytes]:
    """The Responses events of a translated stream; ``response.failed`` if it breaks."""
    for name, data in encoder.start():
        yield sse_event(data, name)
    async with aclosing(guarded(session, failed)) as chunks:
        async for chunk in chunks:
            if isinstance(chunk, bytes):
                yield chunk
                return
            events = encoder.encode(chunk)
            if chunk.finish_reason is not None:
                annotate_stream_end(session)
                response = events[-1][1]["response"]
                await save(store, decoded, history, response, gateway_items(encoder.output))
            for name, data in events:
                yield sse_event(data, name)


class Relay:
    """An OpenAI upstream's own events, as it sent them; the final one's response is stored first."""

    def __init__(self, decoded: DecodedResponses, store: ResponseStore, history: list[Any]) -> None:
        self.decoded, self.store, self.history = decoded, store, history
        self.sent = 0  # OpenAI numbers its events from 0: the next sequence_number
        self.response: dict[str, Any] = {}

    async def events(self, session: StreamSession) -> AsyncIterator[bytes]:
        async with aclosing(guarded(session, self.failed)) as chunks:
            async for chunk in chunks:
                if isinstance(chunk, bytes):
                    yield chunk
                    return
                if chunk.raw is None:
                    continue
                if not self.response:
                    data = sse_data(chunk.raw)
                    if data is not None and isinstance(data.get("response"), dict):
                        self.response = data["response"]
                if chunk.finish_reason is not None:
                    annotate_stream_end(session)
                    data = sse_data(chunk.raw) or {}
                    final: dict[str, Any] = data["response"] if isinstance(data.get("response"), dict) else {}
                    await save(self.store, self.decoded, self.history, final, list(final.get("output") or ()))
                yield chunk.raw
                self.sent += 1

    def failed(self, exc: GatewayError) -> bytes:
        response = {**self.response, "status": "failed", "error": error_object(exc)}
        data = {"type": "response.failed", "sequence_number": self.sent, "response": response}
        return sse_event(data, "response.failed")


# --- stored responses -------------------------------------------------------------------------------------


@router.get("/v1/responses/{response_id}")
async def get_response(response_id: str, gateway: GatewayDep) -> Response:
    stored = await response_store(gateway).get(response_id)
    return Response(orjson.dumps(stored.response), media_type="application/json")


@router.delete("/v1/responses/{response_id}")
async def delete_response(response_id: str, gateway: GatewayDep) -> Response:
    await response_store(gateway).delete(response_id)
    body = {"id": response_id, "object": "response", "deleted": True}
    return Response(orjson.dumps(body), media_type="application/json")


@router.get("/v1/responses/{response_id}/input_items")
async def list_input_items(
    response_id: str,
    gateway: GatewayDep,
    order: Literal["asc", "desc"] = "desc",
    limit: int = Query(default=20, ge=1, le=100),
    after: str | None = None,
) -> Response:
    """This response's input items (newest first unless ``order=asc``), ``limit`` at a time after ``after``."""
    stored = await response_store(gateway).get(response_id)
    items = stored.input_items if order == "asc" else list(reversed(stored.input_items))
    if after is not None:
        ids = [item.get("id") for item in items]
        if after not in ids:
            raise bad(f"after: no input item {after!r} in response {response_id!r}", "after")
        items = items[ids.index(after) + 1 :]
    page = items[:limit]
    body = {
        "object": "list",
        "data": page,
        "first_id": page[0].get("id") if page else None,
        "last_id": page[-1].get("id") if page else None,
        "has_more": len(items) > limit,
    }
    return Response(orjson.dumps(body), media_type="application/json")
