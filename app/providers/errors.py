"""Translate each SDK's typed exceptions into the gateway's error tree (never by matching message text).

Every mapper reads the SDK exception's class and its typed attributes (HTTP status, response headers, the
vendor's error code) and returns an ``UpstreamError`` to be raised ``from`` the original.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import aiohttp
import httpx
import openai

if TYPE_CHECKING:
    import anthropic

from app.errors import (
    ContextWindowExceededError,
    UpstreamAuthError,
    UpstreamBadRequestError,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamRateLimitError,
    UpstreamServerError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)

try:  # openai 3.x and anthropic 2.x ship their transport as ``httpx2``
    import httpx2

    _TIMEOUTS: tuple[type[BaseException], ...] = (httpx.TimeoutException, httpx2.TimeoutException)
    _TRANSPORT: tuple[type[BaseException], ...] = (httpx.TransportError, httpx2.TransportError)
except ImportError:  # pragma: no cover - older SDKs use httpx only
    _TIMEOUTS, _TRANSPORT = (httpx.TimeoutException,), (httpx.TransportError,)

_TIMEOUTS += (TimeoutError, asyncio.TimeoutError, aiohttp.ServerTimeoutError)
_TRANSPORT += (aiohttp.ClientError, ConnectionError, OSError)

AUTH_MESSAGE = "upstream rejected the credentials"
_MAX_MESSAGE = 500
_SECRET_PATTERN = re.compile(r"\b(sk-[A-Za-z0-9_\-*]{6,}|AIza[0-9A-Za-z_\-]{20,}|Bearer\s+\S+)")
_CONTEXT_CODES = frozenset({"context_length_exceeded", "string_above_max_length"})


def sanitize(text: str | None, secrets: tuple[str, ...] = ()) -> str:
    """Upstream text made safe to return: known secrets and key-like tokens redacted, length bounded."""
    clean = str(text or "").strip()
    for secret in secrets:
        if secret:
            clean = clean.replace(secret, "[redacted]")
    clean = _SECRET_PATTERN.sub("[redacted]", clean)
    return clean[:_MAX_MESSAGE] or "no message from upstream"


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds from ``retry-after-ms`` or ``retry-after`` (seconds form); None if absent or a date."""
    if not headers:
        return None
    headers = {str(k).lower(): str(v) for k, v in headers.items()}
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(0.0, float(value) * scale)
        except ValueError:
            continue
    return None


def from_status(
    status: int,
    message: str,
    *,
    provider: str,
    model: str,
    headers: Mapping[str, str] | None = None,
    context_exceeded: bool = False,
) -> UpstreamError:
    """The gateway error for an upstream HTTP error status."""
    common: dict[str, Any] = {"provider": provider, "model": model, "upstream_status": status}
    if status == 429:
        return UpstreamRateLimitError(
            f"{provider} rate limit: {message}", retry_after=parse_retry_after(headers), **common
        )
    if status in (401, 403):
        return UpstreamAuthError(AUTH_MESSAGE, **common)
    if context_exceeded:
        return ContextWindowExceededError(f"context window exceeded: {message}", **common)
    if status in (400, 413, 422):
        return UpstreamBadRequestError(message, **common)
    if status == 408 or status == 504:
        return UpstreamTimeoutError(f"{provider} timed out: {message}", **common)
    if status in (503, 529):
        return UpstreamUnavailableError(f"{provider} is overloaded or unavailable: {message}", **common)
    if status >= 500:
        return UpstreamServerError(f"{provider} server error {status}: {message}", **common)
    return UpstreamServerError(f"{provider} answered {status}: {message}", **common)


def _transport_error(exc: BaseException, provider: str, model: str) -> UpstreamError | None:
    """Timeouts and connection failures of the HTTP transports the SDKs use."""
    if isinstance(exc, TimeoutError | asyncio.TimeoutError | httpx.TimeoutException | aiohttp.ServerTimeoutError):
        return UpstreamTimeoutError(f"{provider} did not answer in time", provider=provider, model=model)
    if isinstance(exc, _TRANSPORT):
        return UpstreamConnectionError(f"could not reach {provider}", provider=provider, model=model)
    return None


def _refused(exc: BaseException) -> bool:
    """Whether a "timeout" from an SDK was really a refused or failed connection: the aiohttp transports
    of openai 3.x / anthropic 2.x report ``ClientConnectorError`` as a connect *timeout*. Read from the
    typed cause chain."""
    seen: BaseException | None = exc.__cause__ or exc.__context__
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, aiohttp.ClientConnectorError | ConnectionRefusedError) and not isinstance(
            seen, TimeoutError
        ):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def map_openai_error(exc: BaseException, *, provider: str, model: str, secrets: tuple[str, ...] = ()) -> UpstreamError:
    """Map an ``openai`` SDK exception (also used for OpenAI-compatible servers)."""
    if isinstance(exc, openai.APITimeoutError) and not _refused(exc):
        return UpstreamTimeoutError(f"{provider} did not answer in time", provider=provider, model=model)
    if isinstance(exc, openai.APIConnectionError):
        return UpstreamConnectionError(f"could not reach {provider}", provider=provider, model=model)
    if isinstance(exc, openai.APIStatusError):
        code = getattr(exc, "code", None)
        return from_status(
            exc.status_code,
            sanitize(exc.message, secrets),
            provider=provider,
            model=model,
            headers=exc.response.headers,
            context_exceeded=code in _CONTEXT_CODES,
        )
    if isinstance(exc, openai.APIResponseValidationError):
        return UpstreamServerError(f"{provider} sent a malformed response", provider=provider, model=model)
    return _transport_error(exc, provider, model) or UpstreamServerError(
        f"{provider} call failed ({type(exc).__name__})", provider=provider, model=model
    )


def map_anthropic_error(
    exc: BaseException, *, provider: str, model: str, secrets: tuple[str, ...] = ()
) -> UpstreamError:
    """Map an ``anthropic`` SDK exception."""
    import anthropic  # imported here: only an Anthropic provider calls this (the SDK costs ~40 MB of RSS)

    if isinstance(exc, anthropic.APITimeoutError) and not _refused(exc):
        return UpstreamTimeoutError(f"{provider} did not answer in time", provider=provider, model=model)
    if isinstance(exc, anthropic.APIConnectionError):
        return UpstreamConnectionError(f"could not reach {provider}", provider=provider, model=model)
    if isinstance(exc, anthropic.APIStatusError):
        return from_status(
            exc.status_code,
            sanitize(_anthropic_message(exc), secrets),
            provider=provider,
            model=model,
            headers=exc.response.headers,
        )
    if isinstance(exc, anthropic.APIResponseValidationError):
        return UpstreamServerError(f"{provider} sent a malformed response", provider=provider, model=model)
    if isinstance(exc, anthropic.APIError):
        # Errors sent inside an SSE stream (``event: error``) arrive as a bare APIError with the vendor body.
        body = exc.body if isinstance(exc.body, dict) else {}
        kind = (body.get("error") or {}).get("type") if isinstance(body.get("error"), dict) else None
        status = {"overloaded_error": 529, "rate_limit_error": 429, "api_error": 500}.get(str(kind), 502)
        return from_status(status, sanitize(exc.message, secrets), provider=provider, model=model)
    return _transport_error(exc, provider, model) or UpstreamServerError(
        f"{provider} call failed ({type(exc).__name__})", provider=provider, model=model
    )


def _anthropic_message(exc: anthropic.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("message") or exc.message)
    return exc.message


def map_google_error(exc: BaseException, *, provider: str, model: str, secrets: tuple[str, ...] = ()) -> UpstreamError:
    """Map a ``google-genai`` SDK exception (``errors.APIError`` carries the HTTP code)."""
    from google.genai import errors as genai_errors  # imported here: only a Gemini provider calls this

    if isinstance(exc, genai_errors.APIError):
        headers = getattr(exc.response, "headers", None)
        if _google_reason(exc.details) in _GOOGLE_AUTH_REASONS:
            # Gemini answers a wrong key with 400 INVALID_ARGUMENT and the typed reason API_KEY_INVALID.
            return UpstreamAuthError(AUTH_MESSAGE, provider=provider, model=model, upstream_status=exc.code)
        return from_status(
            int(exc.code or 502),
            sanitize(exc.message, secrets),
            provider=provider,
            model=model,
            headers=dict(headers) if headers is not None else None,
        )
    return _transport_error(exc, provider, model) or UpstreamServerError(
        f"{provider} call failed ({type(exc).__name__})", provider=provider, model=model
    )


_GOOGLE_AUTH_REASONS = frozenset({"API_KEY_INVALID", "API_KEY_SERVICE_BLOCKED", "ACCESS_TOKEN_EXPIRED"})


def _google_reason(details: Any) -> str | None:
    """The ``reason`` of Google's typed ``google.rpc.ErrorInfo`` detail, if the error body has one."""
    error = details.get("error") if isinstance(details, dict) else None
    for item in (error or {}).get("details") or ():
        if isinstance(item, dict) and item.get("reason"):
            return str(item["reason"])
    return None
