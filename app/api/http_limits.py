"""Connection limits below the ASGI app: uvicorn's httptools protocol with the bounds it does not have.

uvicorn (0.3x-0.5x) with httptools accepts any number of headers of any size (llhttp leaves that to its
embedder), never times out a connection that has not sent its first request or is sending its head a byte
at a time, keeps every idle keep-alive connection, and its ``limit_concurrency`` answers 503 to requests on
connections it already accepted. h11 only bounds the head's total size. So ``switchyard serve`` runs this
subclass (``http="app.api.http_limits:LimitedHttpToolsProtocol"``; plain uvicorn users pass the same
``--http``), which adds per worker:

- a head of at most ``max_header_count`` header lines and ``max_header_bytes`` bytes (request line
  included), counted as bytes arrive: 431 ``request_header_fields_too_large``;
- ``header_timeout_s`` from the first byte of a request to the end of its head: 408 ``request_timeout``;
- ``keepalive_s`` for a connection to send its first byte (new, or idle between requests): closed;
- a ``DisconnectHook`` in each request's scope, fired when its connection is lost before its answer
  completed (the request guard then needs no watcher task per request);
- at most ``max_connections`` open connections (503 ``too_many_connections`` to the ones beyond) and at most
  ``max_idle_connections`` idle keep-alive ones (a connection that would exceed it is closed instead).

Rejections are JSON in the gateway's error shape with ``Connection: close``. Everything else is uvicorn's.
The limits come from the ``SWITCHYARD_*`` environment (``Settings``), read once per process, or from
``with_limits(...)`` (tests, embedding).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, ClassVar

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.api.request_guard import DISCONNECT_HOOK, SHUTTING_DOWN, DisconnectHook
from app.records import record
from app.settings.settings import Settings

PROTOCOL = "app.api.http_limits:LimitedHttpToolsProtocol"
_IDLE = "_switchyard_idle"  # the set of idle keep-alive connections, on uvicorn's per-worker ServerState


@record(slots=True)
class ConnectionLimits:
    max_header_count: int = 100
    max_header_bytes: int = 64 * 1024
    header_timeout_s: float = 10.0
    keepalive_s: float = 5.0
    max_connections: int = 1024
    max_idle_connections: int = 256

    @classmethod
    def from_settings(cls, settings: Settings) -> ConnectionLimits:
        return cls(
            max_header_count=settings.max_header_count,
            max_header_bytes=settings.max_header_bytes,
            header_timeout_s=settings.header_timeout_s,
            keepalive_s=settings.keepalive_s,
            max_connections=settings.max_connections,
            max_idle_connections=settings.max_idle_connections,
        )


class _Reject(Exception):
    """Raised from a parser callback to stop parsing a head that broke a limit."""


STATUS_TEXT = {408: b"Request Timeout", 431: b"Request Header Fields Too Large", 503: b"Service Unavailable"}


def rejection(status: int, error_type: str, message: str) -> bytes:
    """A complete HTTP/1.1 answer in the gateway's JSON error shape, closing the connection."""
    body = json.dumps({"error": {"message": message, "type": error_type, "param": None, "code": error_type}}).encode()
    head = b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n"
    return head % (status, STATUS_TEXT[status], len(body)) + body


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the limits of the module docstring."""

    limits: ClassVar[ConnectionLimits | None] = None  # None: from the environment, on first use

    @classmethod
    def with_limits(cls, limits: ConnectionLimits) -> type[LimitedHttpToolsProtocol]:
        """A subclass that uses ``limits`` (for a server built in Python, e.g. ``uvicorn.Config(http=...)``)."""
        return type(cls.__name__, (cls,), {"limits": limits})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cls = type(self)
        if cls.limits is None:
            cls.limits = ConnectionLimits.from_settings(Settings())
        self._limits: ConnectionLimits = cls.limits
        self.timeout_keep_alive = self._limits.keepalive_s  # type: ignore[assignment]
        idle = getattr(self.server_state, _IDLE, None)
        if idle is None:
            idle = set()
            setattr(self.server_state, _IDLE, idle)
        self._idle: set[LimitedHttpToolsProtocol] = idle
        self._head_bytes = 0  # the head's size as parsed (request line and complete header lines)
        self._raw_head_bytes = 0  # bytes received while the head is incomplete (bounds what the parser holds)
        self._header_count = 0
        self._in_head = False
        self._head_timer: asyncio.TimerHandle | None = None
        self._rejected: bytes | None = None

    # -- connections -------------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self._limits.max_connections:
            message = f"this worker has {self._limits.max_connections} connections open; try again later"
            self._close_with(rejection(503, "too_many_connections", message))
            return
        # uvicorn waits forever for a new connection's first byte: the keep-alive timeout bounds it too
        self.timeout_keep_alive_task = self.loop.call_later(self.timeout_keep_alive, self.timeout_keep_alive_handler)

    def connection_lost(self, exc: Exception | None) -> None:
        self._idle.discard(self)
        self._cancel_head_timer()
        super().connection_lost(exc)
        # the request guard learns of it at once (app.api.request_guard), without a watcher task per request
        for cycle in [self.cycle, *(cycle for cycle, _ in self.pipeline)]:
            if cycle is not None and not cycle.response_complete:
                hook = cycle.scope.get(DISCONNECT_HOOK)
                if isinstance(hook, DisconnectHook):
                    hook.fire()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.timeout_keep_alive_task is None or self.transport.is_closing():
            return  # not idle: a pipelined request runs, or the connection closes
        if len(self._idle) >= self._limits.max_idle_connections:
            self._unset_keepalive_if_required()
            self.transport.close()
            return
        self._idle.add(self)

    def shutdown(self) -> None:
        """The server's graceful shutdown begins: requests in flight are marked, so that the cancellation at
        the end of the drain period is answered as such (``app.api.request_guard``)."""
        self._idle.discard(self)
        cycles = [self.cycle, *(cycle for cycle, _ in self.pipeline)]
        for cycle in cycles:
            if cycle is not None and not cycle.response_complete:
                cycle.scope[SHUTTING_DOWN] = True  # type: ignore[literal-required]
        super().shutdown()

    # -- the request head ----------------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        self._idle.discard(self)
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError:
            if self._rejected is not None:
                self._close_with(self._rejected)
                return
            self._invalid()
            return
        except httptools.HttpParserError:
            self._invalid()
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        if self._in_head:  # ``data`` belonged to a head that is still incomplete
            self._raw_head_bytes += len(data)
            if self._raw_head_bytes > self._limits.max_header_bytes:
                self._close_with(self._too_large())

    def _invalid(self) -> None:
        message = "Invalid HTTP request received."
        self.logger.warning(message)
        self.send_400_response(message)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_bytes = self._raw_head_bytes = self._header_count = 0
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self._limits.header_timeout_s, self._head_timed_out)

    def on_url(self, url: bytes) -> None:
        self._count(len(url) + 16)  # the method and version around it
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self._limits.max_header_count:
            self._rejected = rejection(
                431,
                "request_header_fields_too_large",
                f"the request has more than {self._limits.max_header_count} header fields",
            )
            raise _Reject
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._cancel_head_timer()
        self.scope[DISCONNECT_HOOK] = DisconnectHook()  # type: ignore[literal-required]
        super().on_headers_complete()

    def _count(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > self._limits.max_header_bytes:
            self._rejected = self._too_large()
            raise _Reject

    def _too_large(self) -> bytes:
        message = f"the request head (request line and headers) exceeds {self._limits.max_header_bytes} bytes"
        return rejection(431, "request_header_fields_too_large", message)

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._in_head and not self.transport.is_closing():
            message = f"the request head did not arrive within {self._limits.header_timeout_s:g}s"
            self._close_with(rejection(408, "request_timeout", message))

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _close_with(self, answer: bytes) -> None:
        self._in_head = False
        self._cancel_head_timer()
        self._unset_keepalive_if_required()
        if not self.transport.is_closing():
            self.transport.write(answer)
            self.transport.close()
