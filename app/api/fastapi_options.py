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
    """Extra ``FastAPI(...)`` keyword arguments (none on FastAPI versions without native telemetry)."""
    if otel_telemetry or "telemetry" not in inspect.signature(FastAPI.__init__).parameters:
        return {}
    return {"telemetry": dict(TELEMETRY_OFF)}
