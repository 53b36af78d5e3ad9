"""``GET /health`` (liveness) and ``GET /ready`` (catalogue loaded and a model usable)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app.api.deps import GatewayDep

router = APIRouter()


@router.get("/health")
async def health() -> dict[str, Any]:
    return {"status": "healthy"}


@router.get("/ready")
async def ready(gateway: GatewayDep) -> JSONResponse:
    breakers = gateway.executor.breakers
    configured = gateway.registry.available_names()
    usable = [name for name in configured if not breakers.is_open(name)]
    body = {
        "status": "ready" if usable else "unavailable",
        "models": len(gateway.registry.names()),
        "available_models": usable,
        "circuits": {name: breakers.state(name) for name in configured},
        "open_circuits": [name for name in configured if breakers.is_open(name)],
    }
    return JSONResponse(body, status_code=200 if usable else 503)
