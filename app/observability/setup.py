"""One call that wires observability into an app: JSON logging and the request middleware."""

from __future__ import annotations

from fastapi import FastAPI

from app.observability.logging import configure_logging
from app.observability.middleware import ObservabilityMiddleware
from app.settings.settings import Settings


def install_observability(app: FastAPI, settings: Settings) -> None:
    """Add the request middleware (outermost of those added so far) and send ``switchyard`` logs as JSON.

    ``GET /metrics`` is a normal route (``app.api.routes.metrics``), included with the others.
    """
    configure_logging(settings.log_level)
    app.add_middleware(ObservabilityMiddleware, log_prompts=settings.log_prompts)
