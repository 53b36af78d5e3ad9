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
    usable = gateway.registry.available_names()
    body = {
        "status": "ready" if usable else "unavailable",
        "models": len(gateway.registry.names()),
        "available_models": usable,
    }
    return JSONResponse(body, status_code=200 if usable else 503)
