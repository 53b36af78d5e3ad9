"""The one place where errors become HTTP answers, in OpenAI's shape:
``{"error": {"message", "type", "param", "code", ...details}}`` (JSON, or an SSE error event), never a trace.

``type`` is Switchyard's stable error type (``invalid_request_error``, ``model_not_found``,
``rate_limited``...), ``code`` a finer code where one is known (the validation codes OpenAI uses:
``missing_required_parameter``, ``invalid_type``, ``invalid_value``, ``unknown_parameter``...; else the type
again) and ``param`` the dotted field the error is about (``messages.0.content``), or null.
Validation failures are 400 ``invalid_request_error``, as OpenAI answers them (not FastAPI's 422).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.errors import GatewayError, InvalidRequestError

log = logging.getLogger("switchyard.errors")

# --- the error object -------------------------------------------------------------------------------------


def error_object(exc: GatewayError) -> dict[str, Any]:
    """``{"message", "type", "param", "code", ...details}`` of one error."""
    details = dict(exc.details)
    param = details.pop("param", None)
    code = details.pop("code", None) or exc.error_type
    return {"message": exc.message, "type": exc.error_type, "param": param, "code": code, **details}


def error_body(exc: GatewayError) -> dict[str, Any]:
    return {"error": error_object(exc)}


def openai_error_event(exc: GatewayError) -> bytes:
    """``data: {"error": {...}}``: how an OpenAI stream reports a failure (the openai SDKs raise it as
    ``APIError``); a stream that ends with it never ends with ``data: [DONE]``."""
    return b"data: " + orjson.dumps(error_body(exc)) + b"\n\n"


def error_response(exc: GatewayError) -> JSONResponse:
    return JSONResponse(error_body(exc), status_code=exc.status_code, headers=exc.headers or None)


# --- validation failures -> 400 -----------------------------------------------------------------------------

_PRIMITIVE_TAGS = frozenset({"str", "int", "float", "bool", "list", "dict", "none", "bytes", "any"})
_LOCATIONS = frozenset({"body", "query", "path", "header", "cookie"})
_INSTANCE_OF = re.compile(r" or instance of \w+")


def _is_union_tag(segment: str) -> bool:
    """A loc segment pydantic adds for a union member (``str``, ``list[str]``, ``ToolChoiceIn``,
    ``literal['auto','none']``, ``function-after[...]``), not a field name."""
    if "[" in segment or segment in _PRIMITIVE_TAGS:
        return True
    return segment[:1].isupper() and segment.isidentifier()


def param_of(loc: Iterable[Any]) -> str | None:
    """``("body", "messages", 0, "content", "str")`` -> ``"messages.0.content"``; None for the whole body."""
    parts: list[str] = []
    for segment in loc:
        if isinstance(segment, int):
            parts.append(str(segment))
        elif not parts and segment in _LOCATIONS:
            continue
        elif not _is_union_tag(str(segment)):
            parts.append(str(segment))
    return ".".join(parts) or None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_CODES = {
    "missing": "missing_required_parameter",
    "extra_forbidden": "unknown_parameter",
    "string_too_long": "string_above_max_length",
    "json_invalid": "invalid_json",
}
KNOWN_CODES = frozenset(
    {"invalid_value", "invalid_type", "unsupported_value", "unsupported_parameter", *_CODES.values()}
)


def code_of(error: Mapping[str, Any]) -> str:
    """OpenAI's error code for one pydantic error."""
    kind = str(error.get("type", ""))
    value = error.get("input")
    if kind in KNOWN_CODES:
        return kind
    if kind in _CODES:
        return _CODES[kind]
    if kind in ("less_than", "less_than_equal", "greater_than", "greater_than_equal"):
        limits = [v for v in (error.get("ctx") or {}).values() if isinstance(v, int | float)]
        number = "integer" if _is_int(value) and all(_is_int(v) for v in limits) else "decimal"
        return f"{number}_{'above_max' if kind.startswith('less') else 'below_min'}_value"
    if kind == "too_short":
        return "empty_array" if value in ([], {}) else "array_below_min_length"
    if kind == "too_long":
        return "array_above_max_length"
    if kind == "string_too_short":
        return "empty_string" if value == "" else "string_below_min_length"
    if kind.endswith(("_type", "_parsing")) or kind in ("int_from_float", "union_tag_invalid"):
        return "invalid_type"
    return "invalid_value"


def invalid_request(errors: Sequence[Mapping[str, Any]], prefix: tuple[Any, ...] = ()) -> InvalidRequestError:
    """One 400 ``invalid_request_error`` for pydantic ``errors``: the headline is the most specific error
    (the deepest field; a union's members report the same value once per member), every error is listed
    under ``errors`` as ``{"field", "message"}``."""
    listed: list[dict[str, str]] = []
    best: tuple[int, str | None, str, str] | None = None
    for error in errors:
        if error.get("type") == "json_invalid":
            return InvalidRequestError(
                f"malformed JSON body: {error.get('msg')}",
                param=None,
                code="invalid_json",
                errors=[{"field": "body", "message": str(error.get("msg"))}],
            )
        loc = (*prefix, *error.get("loc", ()))
        param = param_of(loc)
        message = _INSTANCE_OF.sub("", str(error.get("msg", "invalid value")).removeprefix("Value error, "))
        listed.append({"field": param or "body", "message": message})
        depth = len(param.split(".")) if param else 0
        if best is None or depth > best[0]:
            best = (depth, param, message, code_of(error))
    if best is None:
        return InvalidRequestError("invalid request", code="invalid_value")
    _, param, message, code = best
    if code == "missing_required_parameter":
        headline = f"Missing required parameter: '{param}'."
    else:
        headline = f"{param}: {message}" if param else message
    return InvalidRequestError(headline, param=param, code=code, errors=listed)


# --- handlers ---------------------------------------------------------------------------------------------


def speaks_anthropic(scope: Mapping[str, Any]) -> bool:
    """Whether the caller speaks Anthropic's protocol: a ``/v1/messages`` path, or any request with an
    ``anthropic-version`` header (the anthropic SDK listing models, say)."""
    path: str = scope.get("path", "")
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    if path == "/v1/messages" or path.startswith("/v1/messages/"):
        return True
    return any(name == b"anthropic-version" for name, _ in scope.get("headers", ()))


def protocol_error_response(scope: Mapping[str, Any], exc: GatewayError) -> JSONResponse:
    """``exc`` as a JSON answer in the caller's protocol (Anthropic's shape and statuses, else OpenAI's)."""
    return anthropic_error_response(exc) if speaks_anthropic(scope) else error_response(exc)


def asgi_error(
    scope: Mapping[str, Any], exc: GatewayError, extra_headers: Sequence[tuple[bytes, bytes]] = ()
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``exc`` in the caller's protocol as the two ASGI messages of a complete answer (for pure-ASGI guards
    that answer before the app runs)."""
    if speaks_anthropic(scope):
        status, body = anthropic_status(exc), orjson.dumps(anthropic_error_body(exc))
    else:
        status, body = exc.status_code, orjson.dumps(error_body(exc))
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in exc.headers.items()]
    headers += extra_headers
    start = {"type": "http.response.start", "status": status, "headers": headers}
    return start, {"type": "http.response.body", "body": body, "more_body": False}


async def _gateway_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, GatewayError)
    return protocol_error_response(request.scope, exc)


def not_json_body(content_type: str | None, errors: Sequence[Mapping[str, Any]]) -> InvalidRequestError | None:
    """The 400 for a body that failed as a whole because its ``content-type`` is not JSON (``curl -d`` sends
    ``application/x-www-form-urlencoded``), saying so; None for any other validation failure. A body
    without a ``content-type`` is read as JSON (see app/api/fastapi_options.py)."""
    if not content_type:
        return None
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == "application/json" or media_type.endswith("+json"):
        return None
    if not any(tuple(e.get("loc", ())) == ("body",) and isinstance(e.get("input"), bytes) for e in errors):
        return None
    shown = media_type if len(media_type) <= 100 else media_type[:100] + "..."
    return InvalidRequestError(
        f"the request body must be JSON sent with 'content-type: application/json'; this request's content "
        f"type is {shown!r}",
        param=None,
        code="unsupported_content_type",
    )


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    error = not_json_body(request.headers.get("content-type"), errors) or invalid_request(errors)
    return protocol_error_response(request.scope, error)


HTTP_ERROR_TYPES = {404: "not_found", 405: "method_not_allowed", 408: "request_timeout", 413: "payload_too_large"}


class _HTTPError(GatewayError):
    def __init__(self, status: int, error_type: str, message: str, headers: Mapping[str, str] | None) -> None:
        super().__init__(message)
        self.status_code, self.error_type, self._headers = status, error_type, dict(headers or {})

    @property
    def headers(self) -> dict[str, str]:
        return self._headers


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    kind = HTTP_ERROR_TYPES.get(exc.status_code, "http_error")
    error = _HTTPError(exc.status_code, kind, str(exc.detail), getattr(exc, "headers", None))
    return protocol_error_response(request.scope, error)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error on %s %s: %s", request.method, request.url.path, type(exc).__name__, exc_info=exc)
    return protocol_error_response(request.scope, GatewayError("internal error"))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(GatewayError, _gateway_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)


# --- the Anthropic Messages API's error shape ---------------------------------------------------------------
# ``{"type": "error", "error": {"type", "message"}}`` with Anthropic's statuses and error types, for the
# ``/v1/messages`` front-end (its routes convert every error through ``anthropic_error_response``).
# ``switchyard`` beside it carries Switchyard's own type and details (ignored by Anthropic's clients).

ANTHROPIC_ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def anthropic_status(exc: GatewayError) -> int:
    """Anthropic's status for an error: 503 (overloaded, unavailable, no model, capacity) is 529; other
    5xx but 504 are 500 ``api_error``; 4xx Anthropic does not use (405, 422) are 400."""
    status = exc.status_code
    if status == 503:
        return 529
    if status >= 500:
        return 504 if status == 504 else 500
    if status in ANTHROPIC_ERROR_TYPES or status == 405:
        return status
    return 400


def anthropic_error_body(exc: GatewayError) -> dict[str, Any]:
    status = anthropic_status(exc)
    details = dict(exc.details)
    return {
        "type": "error",
        "error": {"type": ANTHROPIC_ERROR_TYPES.get(status, "invalid_request_error"), "message": exc.message},
        "switchyard": {"type": exc.error_type, **details},
    }


def anthropic_error_response(exc: GatewayError) -> JSONResponse:
    return JSONResponse(anthropic_error_body(exc), status_code=anthropic_status(exc), headers=exc.headers or None)


def anthropic_error_event(exc: GatewayError) -> bytes:
    """``event: error``: how a Messages stream reports a failure after it started (the anthropic SDKs
    raise it); a stream that ends with it never ends with ``message_stop``."""
    body = anthropic_error_body(exc)
    return b"event: error\ndata: " + orjson.dumps({"type": "error", "error": body["error"]}) + b"\n\n"


def as_gateway_error(exc: Exception) -> GatewayError:
    """Any exception a route raised as a ``GatewayError`` (validation failures 400, HTTP errors by their
    status, anything else a logged 500)."""
    if isinstance(exc, GatewayError):
        return exc
    if isinstance(exc, RequestValidationError):
        return invalid_request(exc.errors())
    if isinstance(exc, StarletteHTTPException):
        kind = HTTP_ERROR_TYPES.get(exc.status_code, "http_error")
        return _HTTPError(exc.status_code, kind, str(exc.detail), getattr(exc, "headers", None))
    log.error("unhandled error: %s", type(exc).__name__, exc_info=exc)
    return GatewayError("internal error")
