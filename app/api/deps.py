"""Annotated dependencies: routes receive the lifespan-built parts, never globals."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.gateway import Gateway


async def get_gateway(request: Request) -> Gateway:
    """``async`` on purpose: FastAPI runs a sync dependency in a worker thread, a thread hop per request."""
    return request.app.state.gateway


GatewayDep = Annotated[Gateway, Depends(get_gateway)]
