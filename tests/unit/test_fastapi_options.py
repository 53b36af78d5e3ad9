"""FastAPI's native OpenTelemetry telemetry is off unless asked for."""

from __future__ import annotations

import inspect

import pytest
from fastapi import FastAPI

from app.api.fastapi_options import fastapi_options

HAS_TELEMETRY = "telemetry" in inspect.signature(FastAPI.__init__).parameters


@pytest.mark.skipif(not HAS_TELEMETRY, reason="this FastAPI has no native telemetry")
def test_off_by_default() -> None:
    options = fastapi_options(otel_telemetry=False)
    assert options["telemetry"]["tracing"] is False
    app = FastAPI(**options)
    assert app._native_telemetry.enabled() is False


def test_on_when_asked() -> None:
    assert "telemetry" not in fastapi_options(otel_telemetry=True)
