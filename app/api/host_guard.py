"""The ``Host`` allow-list: a gateway on 127.0.0.1 must not be driven by a web page through DNS rebinding.

A page on ``evil.example`` can make its browser resolve that name to 127.0.0.1 and send requests to the
gateway there; the browser still says ``Host: evil.example``. So:

- ``SWITCHYARD_ALLOWED_HOSTS`` set: only those names are answered (comma-separated, ports ignored,
  ``*.example.com`` matches subdomains, ``*`` any name);
- unset: a request that arrived on a loopback address (the connection's local address, whatever the server
  is bound to) must name a loopback host: ``localhost`` (and ``*.localhost``), ``127.x.y.z`` or ``::1``.
  Requests on other addresses are answered whatever their ``Host`` (the gateway cannot know its public
  names; set the list to restrict them).

A refused request gets 421 ``misdirected_request`` in the gateway's JSON error shape. A request without a
``Host`` header (HTTP/1.0) passes: browsers always send one.

Cross-site requests: a page on another site can make its browser ``POST`` a ``text/plain`` body to the
gateway without a CORS preflight (the gateway reads any content type as JSON), so a keyless gateway on
127.0.0.1 could be made to spend its provider keys. A request that changes something (any method but
``GET``, ``HEAD`` and ``OPTIONS``) is refused with 403 ``cross_site_request`` when the browser says it is
cross-site (``Sec-Fetch-Site: cross-site``) or its ``Origin`` is neither the request's own ``Host`` nor in
``SWITCHYARD_ALLOWED_ORIGINS`` (comma-separated origins, ``*`` any). SDKs and servers send no ``Origin``.
"""

from __future__ import annotations

import functools
import ipaddress
import json
from collections.abc import Awaitable

from starlette.types import ASGIApp, Receive, Scope, Send

from app.records import record

LOOPBACK_NAMES = ("localhost",)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _hostname(value: str) -> str:
    """``Host`` without its port, lower-case, IPv6 brackets removed."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value[1:]
    if value.count(":") == 1:
        value = value.split(":", 1)[0]
    return value.rstrip(".")


@functools.lru_cache(maxsize=1024)
def is_loopback(host: str) -> bool:
    """A loopback IP address, or ``localhost`` / ``*.localhost``."""
    if host in LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    return _is_loopback_ip(host)


@record(slots=True)
class HostPolicy:
    """``names`` None: the default rule of the module docstring; else the allowed names (``*.`` suffixes)."""

    names: frozenset[str] | None = None
    origins: frozenset[str] = frozenset()  # browser origins allowed besides the request's own host

    @classmethod
    def parse(cls, setting: str | None, origins: str | None = None) -> HostPolicy:
        allowed_origins = frozenset(o.strip().lower().rstrip("/") for o in (origins or "").split(",") if o.strip())
        if setting is None or not setting.strip():
            return cls(None, allowed_origins)
        names = frozenset(_hostname(n) for n in setting.split(",") if n.strip())
        return cls(names, allowed_origins)

    def cross_site(self, method: str, host: str | None, origin: str | None, fetch_site: str | None) -> bool:
        """Whether a browser sent this request from another site (see the module docstring)."""
        if method in SAFE_METHODS or "*" in self.origins:
            return False
        if origin is not None:
            origin = origin.strip().lower().rstrip("/")
            if origin in self.origins:
                return False
            own = host is not None and origin.partition("://")[2] == host.strip().lower()
            if not own:
                return True
        return fetch_site == "cross-site"

    def allows(self, host: str, local_address: str | None) -> bool:
        if self.names is None:
            return not (local_address is not None and _is_loopback_ip(local_address)) or is_loopback(host)
        if "*" in self.names or host in self.names:
            return True
        return any(n.startswith("*.") and host.endswith(n[1:]) for n in self.names)


@functools.lru_cache(maxsize=1024)  # a few local addresses and Host values repeat on every request
def _is_loopback_ip(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False  # not an address (an in-process test transport names its URL's host)
    mapped = getattr(ip, "ipv4_mapped", None)  # ::ffff:127.0.0.1
    return ip.is_loopback or (mapped is not None and mapped.is_loopback)


def _misdirected(host: str) -> bytes:
    shown = host if len(host) <= 100 else host[:100] + "..."
    message = f"this gateway does not answer for host {shown!r} (see SWITCHYARD_ALLOWED_HOSTS)"
    error = {"message": message, "type": "misdirected_request", "param": None, "code": "misdirected_request"}
    return json.dumps({"error": error}).encode()


def _cross_site() -> bytes:
    message = (
        "cross-site browser requests are refused (Origin is not this gateway's host; see SWITCHYARD_ALLOWED_ORIGINS)"
    )
    error = {"message": message, "type": "cross_site_request", "param": None, "code": "cross_site_request"}
    return json.dumps({"error": error}).encode()


CROSS_SITE_BODY = _cross_site()


async def _refuse(send: Send, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


MAX_VERDICTS = 1024


class HostGuardMiddleware:
    """421 for a request whose ``Host`` the ``HostPolicy`` does not allow; 403 for a cross-site one. The
    verdict on a ``Host`` value and local address is kept (a few of them repeat on every request)."""

    def __init__(self, app: ASGIApp, policy: HostPolicy) -> None:
        self.app = app
        self.policy = policy
        self._verdicts: dict[tuple[bytes, str | None], str | None] = {}  # None: allowed; else the name refused

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # a plain function returning the next layer's awaitable: no frame of its own to resume at every wake-up
        if scope["type"] == "http":
            host = origin = fetch_site = None
            for key, value in scope["headers"]:
                if key == b"host":
                    host = value
                elif key == b"origin":
                    origin = value.decode("latin-1")
                elif key == b"sec-fetch-site":
                    fetch_site = value.decode("latin-1").strip().lower()
            if host is not None:
                server = scope.get("server")
                refused = self._verdict(host, server[0] if server else None)
                if refused is not None:
                    return _refuse(send, 421, _misdirected(refused))
            if (origin is not None or fetch_site is not None) and self.policy.cross_site(
                scope["method"], None if host is None else host.decode("latin-1"), origin, fetch_site
            ):
                return _refuse(send, 403, CROSS_SITE_BODY)
        return self.app(scope, receive, send)

    def _verdict(self, host: bytes, local_address: str | None) -> str | None:
        """None when ``host`` is allowed on ``local_address``, else the host name refused."""
        key = (host, local_address)
        try:
            return self._verdicts[key]
        except KeyError:
            pass
        name = _hostname(host.decode("latin-1"))
        verdict = None if self.policy.allows(name, local_address) else name
        if len(self._verdicts) >= MAX_VERDICTS:  # a client inventing names: start over rather than grow
            self._verdicts.clear()
        self._verdicts[key] = verdict
        return verdict
