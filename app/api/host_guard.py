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
"""

from __future__ import annotations

import functools
import ipaddress
import json
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

LOOPBACK_NAMES = ("localhost",)


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


@dataclass(frozen=True, slots=True)
class HostPolicy:
    """``names`` None: the default rule of the module docstring; else the allowed names (``*.`` suffixes)."""

    names: frozenset[str] | None = None

    @classmethod
    def parse(cls, setting: str | None) -> HostPolicy:
        if setting is None or not setting.strip():
            return cls(None)
        names = frozenset(_hostname(n) for n in setting.split(",") if n.strip())
        return cls(names)

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


class HostGuardMiddleware:
    """421 for a request whose ``Host`` the ``HostPolicy`` does not allow."""

    def __init__(self, app: ASGIApp, policy: HostPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            host = next((v for k, v in scope["headers"] if k == b"host"), None)
            if host is not None:
                name = _hostname(host.decode("latin-1"))
                server = scope.get("server")
                if not self.policy.allows(name, server[0] if server else None):
                    body = _misdirected(name)
                    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
                    await send({"type": "http.response.start", "status": 421, "headers": headers})
                    await send({"type": "http.response.body", "body": body})
                    return
        await self.app(scope, receive, send)
