"""The one place where errors become HTTP answers: ``{"error": {"type", "message", ...}}``, never a trace."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.errors import GatewayError

log = logging.getLogger("switchyard.errors")


def error_response(
    status: int, error_type: str, message: str, headers: dict[str, str] | None = None, **details: Any
) -> JSONResponse:
    body = {"error": {"type": error_type, "message": message, **details}}
    return JSONResponse(body, status_code=status, headers=headers)


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def validation_errors(exc: RequestValidationError) -> tuple[int, str, list[dict[str, str]]]:
    """Status, headline and per-field errors of a request validation failure."""
    errors = []
    for error in exc.errors():
        if error.get("type") == "json_invalid":
            return 400, "malformed JSON body", [{"field": "body", "message": str(error.get("msg"))}]
        message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
        errors.append({"field": _field(tuple(error.get("loc", ()))), "message": message})
    if not errors:
        return 422, "invalid request", []
    first = errors[0]
    return 422, f"{first['field']}: {first['message']}", errors


async def _gateway_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, GatewayError)
    return JSONResponse(exc.to_body(), status_code=exc.status_code, headers=exc.headers or None)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    status, message, errors = validation_errors(exc)
    return error_response(status, "invalid_request_error", message, errors=errors)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    kind = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(
        exc.status_code, "http_error"
    )
    return error_response(exc.status_code, kind, str(exc.detail), headers=getattr(exc, "headers", None))


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error(
        "unhandled error on %s %s: %s", request.method, request.url.path, type(exc).__name__, exc_info=exc
    )
    return error_response(500, "internal_error", "internal error")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(GatewayError, _gateway_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
