"""Startup and shutdown: build the gateway (clients, registry, router) and close it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app.gateway import Gateway
from app.gc_tuning import freeze_startup_heap
from app.routing.rules import EMPTY_REGISTRY, ConditionRegistry
from app.settings.settings import Settings

log = logging.getLogger("switchyard")
FINISH_TIMEOUT_S = 3.0  # for cancelled requests to finish their answers
CLOSE_TIMEOUT_S = 5.0  # for the gateway's clients to close


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
            # the requests the server just cancelled (drain period over) send their last event and log line
            in_flight = getattr(app.state, "in_flight", None)
            if in_flight is not None and not await in_flight.wait_idle(FINISH_TIMEOUT_S):
                log.warning("%d requests still in flight at shutdown", in_flight.count)
            # bounded, so that a stuck close (a hung upstream, Redis) never keeps the process from exiting
            try:
                async with asyncio.timeout(CLOSE_TIMEOUT_S):
                    await gateway.aclose()
            except TimeoutError:
                log.warning("closing the gateway took longer than %gs; exiting anyway", CLOSE_TIMEOUT_S)

    return lifespan
