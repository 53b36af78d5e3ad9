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


def _layers(app: FastAPI) -> list[str]:
    names, node = [], app.build_middleware_stack()
    while node is not None and len(names) < 30:
        names.append(type(node).__name__)
        node = getattr(node, "app", None)
    return names


def test_the_framework_layers_that_do_nothing_here_are_left_out() -> None:
    from app.main import create_app
    from app.settings.settings import Settings

    lean = _layers(create_app(Settings(otel_telemetry=False)))
    assert lean[:3] == ["ServerErrorMiddleware", "ObservabilityMiddleware", "HostGuardMiddleware"], lean
    assert "AppBodyLimitMiddleware" not in lean and "ExceptionTelemetryMiddleware" not in lean
    with_otel = _layers(create_app(Settings(otel_telemetry=True)))
    if HAS_TELEMETRY:  # with FastAPI's telemetry on, its exception layer records what it is for
        assert with_otel[1] == "ExceptionTelemetryMiddleware", with_otel
    assert with_otel[-4:] == lean[-4:]  # the app's own layers and FastAPI's inner ones are all there


def test_a_fastapi_body_limit_keeps_its_layer() -> None:
    from app.api.fastapi_options import LeanFastAPI

    if "max_body_size" not in inspect.signature(FastAPI.__init__).parameters:
        pytest.skip("this FastAPI has no max_body_size")
    app = LeanFastAPI(max_body_size=1024)
    assert "AppBodyLimitMiddleware" in _layers(app)
