"""``GET /v1/models``: the catalogue, prices (and where they come from) and availability."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.api.deps import GatewayDep

router = APIRouter()


@router.get("/v1/models")
async def list_models(gateway: GatewayDep) -> dict[str, Any]:
    models = []
    for entry in gateway.registry.entries():
        target = entry.target
        price = target.price
        models.append(
            {
                "id": target.name,
                "object": "model",
                "owned_by": target.provider,
                "provider": target.provider,
                "upstream_model": target.upstream_model,
                "cost_per_1k_input": price.input_per_1k,
                "cost_per_1k_output": price.output_per_1k,
                "price_known": price.known,
                "price_source": price.source,
                "tier": target.config.tier,
                "available": entry.available and not gateway.executor.breakers.is_open(target.name),
                "unavailable_reason": entry.unavailable_reason
                or gateway.executor.breakers.unavailable_reason(target.name),
                "circuit": gateway.executor.breakers.snapshot(target.name),
            }
        )
    return {"object": "list", "models": models, "data": models}
