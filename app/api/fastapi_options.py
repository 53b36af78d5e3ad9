"""FastAPI constructor options chosen for the hot path (measured with ``bench/``, see bench/results/PROFILE.md).

FastAPI 0.13x+ ships native OpenTelemetry request telemetry that is on by default: even with no OTel
provider configured it looks up the tracer, meter and logger providers on every request (environment
reads), about 6% of Switchyard's CPU per request. Switchyard's own observability is Prometheus metrics
and JSON request logs, so it is off unless ``SWITCHYARD_OTEL_TELEMETRY=true``.
"""

from __future__ import annotations

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
