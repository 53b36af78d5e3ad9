"""Upstream answers to typed errors, shared by every codec (never by matching message text).

A codec reads its vendor's error body (the vendor's error type or code, the HTTP status, ``Retry-After``)
and calls ``from_status``; the transport turns socket-level failures into timeouts and connection errors.
Messages are made safe by ``sanitize``: secrets, URLs, host names and IP addresses are removed, the
vendor's reason is kept.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any

from app.errors import (
    ContextWindowExceededError,
    UpstreamAuthError,
    UpstreamBadRequestError,
    UpstreamConfigError,
    UpstreamError,
    UpstreamRateLimitError,
    UpstreamServerError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)

AUTH_MESSAGE = "upstream rejected the credentials"
DEFAULT_RETRY_AFTER_S = 1.0  # a 429 without Retry-After still tells the client when to come back
_MAX_MESSAGE = 500
_SECRET_PATTERN = re.compile(r"\b(sk-[A-Za-z0-9_\-*]{6,}|AIza[0-9A-Za-z_\-]{20,}|Bearer\s+\S+)")
_URL_PATTERN = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+")
_IPV4_PATTERN = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?\b")
_IPV6_CANDIDATE = re.compile(r"\[?([0-9a-fA-F:.]*:[0-9a-fA-F:.]*:[0-9a-fA-F:.]*)\]?(?::\d+)?")
# host names with a dot and a letters-only last label (api.internal.corp, db-1.svc.cluster.local)
_HOST_PATTERN = re.compile(r"\b(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+(?:[a-zA-Z]{2,63})(?::\d+)?\b")
_KEEP_DOTTED = re.compile(r"^(?:gpt|claude|gemini|o\d|text|chatgpt)[\w.-]*$|^\w+\.(?:py|json|yaml|md|txt)$", re.I)


def _ipv6_or_keep(match: re.Match[str]) -> str:
    try:
        ipaddress.IPv6Address(match.group(1))
    except ValueError:
        return match.group(0)  # "12:30:45" and the like
    return "[address]"


def _host_or_keep(match: re.Match[str]) -> str:
    token = match.group(0)
    return token if _KEEP_DOTTED.match(token) else "[host]"


def sanitize(text: object, secrets: tuple[str, ...] = ()) -> str:
    """Upstream text made safe to return: known secrets and key-like tokens redacted, URLs, IP addresses and
    host names removed, length bounded."""
    clean = str(text or "").strip()
    for secret in secrets:
        if secret:
            clean = clean.replace(secret, "[redacted]")
    clean = _SECRET_PATTERN.sub("[redacted]", clean)
    clean = _URL_PATTERN.sub("[url]", clean)
    clean = _IPV4_PATTERN.sub("[address]", clean)
    clean = _IPV6_CANDIDATE.sub(_ipv6_or_keep, clean)
    clean = _HOST_PATTERN.sub(_host_or_keep, clean)
    return clean[:_MAX_MESSAGE] or "no message from upstream"


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds from ``retry-after-ms`` or ``retry-after`` (seconds form); None if absent or a date."""
    if not headers:
        return None
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = lowered.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) * scale
        except ValueError:
            continue
        if seconds == seconds and seconds != float("inf"):  # not NaN, finite
            return max(0.0, seconds)
    return None


def from_status(
    status: int,
    message: str,
    *,
    provider: str,
    model: str,
    headers: Mapping[str, str] | None = None,
    context_exceeded: bool = False,
    auth_failed: bool = False,
) -> UpstreamError:
    """The gateway error for an upstream HTTP error status (``message`` already sanitised)."""
    common: dict[str, Any] = {"provider": provider, "model": model, "upstream_status": status}
    if status == 429:
        retry_after = parse_retry_after(headers)
        return UpstreamRateLimitError(
            f"{provider} rate limit: {message}",
            retry_after=DEFAULT_RETRY_AFTER_S if retry_after is None else retry_after,
            **common,
        )
    if status in (401, 403) or auth_failed:
        return UpstreamAuthError(AUTH_MESSAGE, **common)
    if context_exceeded:
        return ContextWindowExceededError(f"context window exceeded: {message}", **common)
    if status == 404:
        return UpstreamConfigError(
            f"{provider} does not know the upstream model of catalogue model {model}: {message}", **common
        )
    if status in (400, 413, 422):
        return UpstreamBadRequestError(message, **common)
    if status in (408, 504):
        return UpstreamTimeoutError(f"{provider} timed out: {message}", **common)
    if status in (503, 529):
        return UpstreamUnavailableError(f"{provider} is overloaded or unavailable: {message}", **common)
    if status >= 500:
        return UpstreamServerError(f"{provider} server error {status}: {message}", **common)
    return UpstreamServerError(f"{provider} answered {status}: {message}", **common)


def malformed(provider: str, model: str, what: str) -> UpstreamServerError:
    """The error for an answer the codec cannot read (``what`` says what was wrong, no upstream text)."""
    return UpstreamServerError(f"{provider} sent a malformed answer: {what}", provider=provider, model=model)
