"""FastAPI constructor options chosen for the hot path (measured with ``bench/``, see bench/results/PROFILE.md).

FastAPI 0.13x+ ships native OpenTelemetry request telemetry that is on by default: even with no OTel
provider configured it looks up the tracer, meter and logger providers on every request (environment
reads), about 6% of Switchyard's CPU per request. Switchyard's own observability is Prometheus metrics
and JSON request logs, so it is off unless ``SWITCHYARD_OTEL_TELEMETRY=true``. ``LeanFastAPI`` then leaves
out of the middleware stack the framework layers that do nothing in that configuration.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from fastapi import FastAPI

TELEMETRY_OFF = {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}


def fastapi_options(otel_telemetry: bool) -> dict[str, Any]:
    """Extra ``FastAPI(...)`` keyword arguments for the options this FastAPI version has.

    ``strict_content_type=False``: a body sent without a ``content-type`` header is read as JSON on every
    route, as the chat and messages routes (which parse the raw body) always did; FastAPI's default would
    hand such a body to validation as bytes. A body with a non-JSON content type is answered 400 saying so
    (app/api/errors.py)."""
    parameters = inspect.signature(FastAPI.__init__).parameters
    options: dict[str, Any] = {"strict_content_type": False} if "strict_content_type" in parameters else {}
    if not otel_telemetry and "telemetry" in parameters:
        options["telemetry"] = dict(TELEMETRY_OFF)
    return options


def _framework_layers(names: tuple[str, ...]) -> tuple[type, ...]:
    """The classes of FastAPI's own middleware called ``names`` that this FastAPI version has (older ones
    have neither)."""
    found: list[type] = []
    for module_name in ("fastapi._body_limit", "fastapi.telemetry._asgi"):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        found += [cls for cls in (getattr(module, name, None) for name in names) if isinstance(cls, type)]
    return tuple(found)


class LeanFastAPI(FastAPI):
    """FastAPI whose middleware stack leaves out two framework layers that do nothing in this app's
    configuration, each a coroutine resumed at every wake-up of every request (``bench/results/PROFILE.md``):

    - ``ExceptionTelemetryMiddleware`` records exceptions on the request's OpenTelemetry record, which only
      exists with FastAPI's telemetry on (``otel_telemetry``; then it stays);
    - ``AppBodyLimitMiddleware`` enforces FastAPI's ``max_body_size``, which this app does not set (its own
      ``BodyLimitMiddleware`` limits bodies, with the gateway's error shape).

    Starlette's ``ServerErrorMiddleware`` stays: the last resort for an error outside the request guard."""

    def __init__(self, *args: Any, otel_telemetry: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        names = (
            ("AppBodyLimitMiddleware",)
            if otel_telemetry
            else ("AppBodyLimitMiddleware", "ExceptionTelemetryMiddleware")
        )
        self._idle_layers = _framework_layers(names)

    def build_middleware_stack(self) -> Any:
        stack = super().build_middleware_stack()
        if getattr(self, "max_body_size", None) is not None:
            return stack
        node: Any = stack  # ServerErrorMiddleware, then (in this FastAPI) the two layers, then ours
        for _ in range(4):
            inner = getattr(node, "app", None)
            while isinstance(inner, self._idle_layers) and hasattr(inner, "app"):
                inner = inner.app
                node.app = inner
            if inner is None:
                break
            node = inner
        return stack
