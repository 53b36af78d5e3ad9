"""``GET /v1/models`` and ``GET /v1/models/{id}``: the catalogue in OpenAI's shape (``id``, ``object``,
``created``, ``owned_by``) plus Switchyard's fields (prices and where they come from, availability).

``created`` is the time this process started (OpenAI clients only need an integer); ids may contain
slashes (``org/model``). Anthropic clients get Anthropic's shape (see below). A virtual key sees only the
models it may use (another one is 403)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from app.api.deps import GatewayDep
from app.api.errors import anthropic_error_body, anthropic_status
from app.errors import GatewayError, InvalidRequestError, ModelNotFoundError, PermissionDeniedError
from app.gateway import Gateway
from app.governance.context import current_principal
from app.providers.registry import ModelEntry

router = APIRouter()

STARTED = int(time.time())


def model_dict(gateway: Gateway, entry: ModelEntry) -> dict[str, Any]:
    target = entry.target
    price = target.price
    breakers = gateway.executor.breakers
    return {
        "id": target.name,
        "object": "model",
        "created": STARTED,
        "owned_by": target.provider,
        "provider": target.provider,
        "upstream_model": target.upstream_model,
        "cost_per_1k_input": price.input_per_1k,
        "cost_per_1k_output": price.output_per_1k,
        "price_known": price.known,
        "price_source": price.source,
        "tier": target.config.tier,
        "kind": target.config.kind,  # "chat", or "embedding" (served by /v1/embeddings)
        "available": entry.available and not breakers.is_open(target.name),
        "unavailable_reason": entry.unavailable_reason or breakers.unavailable_reason(target.name),
        "circuit": breakers.snapshot(target.name),
    }


# --- Anthropic's shape ------------------------------------------------------------------------------------
# A request with the ``anthropic-version`` header (every Anthropic SDK and Claude Code send it), or with
# Anthropic's paging parameters, gets the listing in Anthropic's shape: ``{"data": [{"type": "model", "id",
# "display_name", "created_at"}], "has_more", "first_id", "last_id"}``, paged by ``limit`` (1-1000, default
# 20), ``after_id`` and ``before_id``; errors then come in Anthropic's shape too.

ANTHROPIC_PAGING = ("limit", "after_id", "before_id")
CREATED_AT = datetime.fromtimestamp(STARTED, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def visible_entries(gateway: Gateway) -> list[ModelEntry]:
    """The catalogue entries the request's key may use (all of them for the master key or without keys)."""
    principal = current_principal()
    entries = gateway.registry.entries()
    return [e for e in entries if principal is None or principal.permits(e.target.name)]


def wants_anthropic(request: Request) -> bool:
    return "anthropic-version" in request.headers or any(p in request.query_params for p in ANTHROPIC_PAGING)


def anthropic_model(name: str) -> dict[str, Any]:
    return {"type": "model", "id": name, "display_name": name, "created_at": CREATED_AT}


def anthropic_page(names: list[str], query: Mapping[str, str]) -> dict[str, Any]:
    """One page of ``names`` as Anthropic pages its model list."""
    raw_limit = query.get("limit", "20")
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 1000:
        raise InvalidRequestError("limit: expected an integer from 1 to 1000", param="limit")
    limit = int(raw_limit)
    after, before = query.get("after_id"), query.get("before_id")
    for cursor in (after, before):
        if cursor is not None and cursor not in names:
            raise InvalidRequestError(f"no model with id {cursor!r} to page from", param="after_id")
    if before is not None:
        end = names.index(before)
        page, has_more = names[max(0, end - limit) : end], end - limit > 0
    else:
        start = names.index(after) + 1 if after is not None else 0
        page, has_more = names[start : start + limit], start + limit < len(names)
    return {
        "data": [anthropic_model(n) for n in page],
        "has_more": has_more,
        "first_id": page[0] if page else None,
        "last_id": page[-1] if page else None,
    }


def _anthropic_error(exc: GatewayError) -> JSONResponse:
    return JSONResponse(anthropic_error_body(exc), status_code=anthropic_status(exc))


@router.get("/v1/models", response_model=None)
async def list_models(request: Request, gateway: GatewayDep) -> dict[str, Any] | JSONResponse:
    entries = visible_entries(gateway)
    if wants_anthropic(request):
        try:
            return anthropic_page([entry.target.name for entry in entries], request.query_params)
        except GatewayError as exc:
            return _anthropic_error(exc)
    models = [model_dict(gateway, entry) for entry in entries]
    return {"object": "list", "models": models, "data": models}


@router.get("/v1/models/{model_id:path}", response_model=None)
async def get_model(model_id: str, request: Request, gateway: GatewayDep) -> dict[str, Any] | JSONResponse:
    if model_id not in gateway.registry:
        error = ModelNotFoundError(
            f"The model '{model_id}' does not exist in this gateway's catalogue", model=model_id, param="model"
        )
        if wants_anthropic(request):
            return _anthropic_error(error)
        raise error
    principal = current_principal()
    if principal is not None and not principal.permits(model_id):
        denied = PermissionDeniedError(f"model {model_id} is not allowed for this key", model=model_id, param="model")
        if wants_anthropic(request):
            return _anthropic_error(denied)
        raise denied
    if wants_anthropic(request):
        return anthropic_model(model_id)
    return model_dict(gateway, gateway.registry.entry(model_id))
