"""Startup and shutdown: build the gateway (clients, registry, router) and close it."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app.gateway import Gateway
from app.gc_tuning import freeze_startup_heap
from app.routing.rules import EMPTY_REGISTRY, ConditionRegistry
from app.settings.settings import Settings

log = logging.getLogger("switchyard")


def lifespan_for(settings: Settings, conditions: ConditionRegistry = EMPTY_REGISTRY):
    """A lifespan that builds the ``Gateway`` for ``settings`` (with rule ``conditions`` registered from
    Python) and stores it on ``app.state``."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        gateway = Gateway.build(settings, conditions=conditions)
        app.state.gateway = gateway
        await gateway.start()
        if settings.gc_freeze:
            freeze_startup_heap()
        usable = gateway.registry.available_names()
        log.info(
            "switchyard ready: %d models, %d usable (%s)",
            len(gateway.registry.names()),
            len(usable),
            ", ".join(usable) or "none",
        )
        try:
            yield
        finally:
            await gateway.aclose()

    return lifespan
