"""``GET /v1/models`` and ``GET /v1/models/{id}``: the catalogue in OpenAI's shape (``id``, ``object``,
``created``, ``owned_by``) plus Switchyard's fields (prices and where they come from, availability).

``created`` is the time this process started (OpenAI clients only need an integer); ids may contain
slashes (``org/model``)."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter

from app.api.deps import GatewayDep
from app.errors import ModelNotFoundError
from app.gateway import Gateway
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
        "available": entry.available and not breakers.is_open(target.name),
        "unavailable_reason": entry.unavailable_reason or breakers.unavailable_reason(target.name),
        "circuit": breakers.snapshot(target.name),
    }


@router.get("/v1/models")
async def list_models(gateway: GatewayDep) -> dict[str, Any]:
    models = [model_dict(gateway, entry) for entry in gateway.registry.entries()]
    return {"object": "list", "models": models, "data": models}


@router.get("/v1/models/{model_id:path}")
async def get_model(model_id: str, gateway: GatewayDep) -> dict[str, Any]:
    if model_id not in gateway.registry:
        raise ModelNotFoundError(
            f"The model '{model_id}' does not exist in this gateway's catalogue", model=model_id, param="model"
        )
    return model_dict(gateway, gateway.registry.entry(model_id))
