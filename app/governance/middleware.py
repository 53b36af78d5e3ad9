"""Authentication and admission of every request, below the routes (pure ASGI).

With a master key configured, every request needs a key (``Authorization: Bearer <key>`` or
``x-api-key: <key>``), except ``GET /health``; ``/ready`` and ``/metrics`` need none unless
``SWITCHYARD_PROTECT_METRICS``, then the master key. A virtual key's requests that may call models (every
``POST`` under ``/v1/`` but key management, ``/v1/route`` and ``/v1/messages/count_tokens``) are admitted by
the store (rpm, tpm, budget, ``max_parallel``) before the route runs; the lease is released when the request
ends: answered, failed, or abandoned by its client (the task is cancelled). Refusals are JSON errors in the
usual shape, in Anthropic's for ``/v1/messages``. The principal is bound for the request (planning and the
call meter read it). Too many unknown keys from one client address: 429 for a while to any key but the
master key and the keys this process already knows (so a guessing neighbour never locks out real clients).
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.errors import asgi_error
from app.errors import GatewayError, PermissionDeniedError, RateLimitExceededError, StateUnavailableError
from app.governance.context import Principal, bind_holds, bind_principal, unbind_holds, unbind_principal
from app.governance.service import Governance, Hold, Lease
from app.observability.context import annotate
from app.observability.metrics import record_auth_failure

OPEN_PATHS = frozenset({"/health"})
PROBE_PATHS = frozenset({"/ready", "/metrics"})
NOT_ADMITTED = ("/v1/keys", "/v1/route", "/v1/messages/count_tokens")


def admitted(method: str, path: str) -> bool:
    """Whether a request may call models (and so counts against the key's rate limits)."""
    if method != "POST" or not path.startswith("/v1/"):
        return False
    return not any(path == p or path.startswith(p + "/") for p in NOT_ADMITTED)


def route_path(scope: Scope) -> str:
    """The request's path within the app (without a ``root_path`` prefix)."""
    path, root = scope["path"], scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def credentials(scope: Scope) -> list[str]:
    """The keys the request presents: ``Authorization: Bearer``, then ``x-api-key``."""
    found: list[str] = []
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            text = value.decode("latin-1").strip()
            if text[:7].lower() == "bearer ":
                found.append(text[7:].strip())
        elif name == b"x-api-key":
            found.append(value.decode("latin-1").strip())
    return list(dict.fromkeys(k for k in found if k))


class GovernanceMiddleware:
    """See the module docstring; a pass-through when the gateway has no governance (no master key)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._seen: tuple[object, Governance | None, bool] | None = None  # (app state's gateway, its answer)

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # a plain function returning the next layer's awaitable when it passes the request through: no frame of
        # its own to resume at every wake-up of the request
        if scope["type"] != "http":
            return self.app(scope, receive, send)
        gov, required = self._governance(scope)
        if gov is None:
            if required and route_path(scope) not in OPEN_PATHS:  # a master key is configured: never serve open
                return self._refuse(send, scope, StateUnavailableError("access control is not ready yet"))
            return self.app(scope, receive, send)
        path = route_path(scope)
        if path in OPEN_PATHS or (path in PROBE_PATHS and not gov.config.protect_metrics):
            return self.app(scope, receive, send)
        return self._governed(gov, path, scope, receive, send)

    async def _governed(self, gov: Governance, path: str, scope: Scope, receive: Receive, send: Send) -> None:
        """Authenticate and admit the request, run it with its principal bound, then settle and release."""
        lease: Lease | None = None
        try:
            principal = await self._authenticate(gov, scope)
            if path in PROBE_PATHS and not principal.is_master:
                raise PermissionDeniedError(f"{path} needs the master key")
            if principal.record is not None and admitted(scope["method"], path):
                lease = await gov.admit(principal)
        except GatewayError as exc:
            await self._refuse(send, scope, exc)
            return
        annotate(key="master" if principal.record is None else principal.record.name)
        token = bind_principal(principal)
        holds: list[Hold] = []
        holds_token = bind_holds(holds)
        try:
            await self.app(scope, receive, send)
        finally:
            unbind_holds(holds_token)
            unbind_principal(token)
            if holds:
                await gov.settle_leftovers(holds)
            if lease is not None:
                await lease.release()

    def _governance(self, scope: Scope) -> tuple[Governance | None, bool]:
        """The gateway's governance, and whether the settings ask for one (a master key is configured);
        worked out again only when the app's gateway is another object (the lifespan sets it)."""
        state = getattr(scope.get("app"), "state", None)
        gateway = getattr(state, "gateway", None)
        seen = self._seen
        if seen is not None and seen[0] is gateway and gateway is not None:
            return seen[1], seen[2]
        settings: Any = getattr(state, "settings", None)
        required = settings is not None and (settings.master_key is not None or settings.master_key_file is not None)
        gov = getattr(gateway, "governance", None)
        self._seen = (gateway, gov, required)
        return gov, required

    @staticmethod
    async def _authenticate(gov: Governance, scope: Scope) -> Principal:
        client = scope.get("client")
        address = client[0] if client else "unknown"
        keys = credentials(scope)
        locked = gov.failures.locked_for(address)
        if locked is not None:  # guessing from here: only keys already known good are looked at
            keys = [k for k in keys if gov.recognises(k)]
            if not keys:
                record_auth_failure("locked_out")
                raise RateLimitExceededError("too many failed authentications from this address", locked)
        if not keys:
            raise gov.auth_error("missing")
        error: GatewayError | None = None
        for key in keys:
            try:
                return await gov.authenticate(key)
            except GatewayError as exc:
                error = error or exc
        assert error is not None
        if error.details.get("code") == "invalid_api_key":  # a guess (not a missing, revoked or expired key)
            gov.failures.failed(address)
        raise error

    @staticmethod
    async def _refuse(send: Send, scope: Scope, exc: GatewayError) -> None:
        start, body = asgi_error(scope, exc)
        await send(start)
        await send(body)
