"""Server-Sent Events: event encoding and a streaming response that is honest about failure.

``EventStreamResponse`` first awaits its ``open`` coroutine, which does everything that may still fail
cleanly (routing, fallbacks until a first chunk). If that fails, the client gets an ordinary JSON error
with its HTTP status, exactly like the non-streamed endpoint. Otherwise the 200 event stream starts and
its events are forwarded as they are produced, with no buffering.

From the first byte of the request to the last event, a client's disconnect cancels the work at once: the
request guard (``app.api.request_guard``, which runs every request of the app) is asked to cancel the
stream too once it started (``cancel_on_disconnect``). Starlette's ``StreamingResponse`` only notices when
its next write fails, which may be long after the upstream started generating tokens nobody will read.

When the server cancels the response (its graceful shutdown's drain period, ``SWITCHYARD_DRAIN_S``, is
over), a stream that started ends with its protocol's error event (``EventStream.error_event``,
``shutting_down``), never as if the answer were complete.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from app.api.errors import error_body, openai_error_event
from app.api.request_guard import GUARD, ShuttingDownError
from app.errors import GatewayError
from app.observability.context import annotate

log = logging.getLogger("switchyard.sse")

SSE_MEDIA_TYPE = "text/event-stream; charset=utf-8"
SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


def sse_event(data: Any, event: str | None = None) -> bytes:
    """One SSE event; ``data`` is JSON-encoded unless it is already a string (such as ``[DONE]``)."""
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()


@dataclass
class EventStream:
    """What ``open`` produces: the events to send, extra response headers, and how this protocol reports a
    failure in the stream (used when the server ends the stream at shutdown)."""

    events: AsyncIterator[bytes]
    headers: Mapping[str, str] = field(default_factory=dict)
    error_event: Callable[[GatewayError], bytes] = openai_error_event


Opener = Callable[[], Awaitable[EventStream]]


class EventStreamResponse(Response):
    """An ASGI response that opens, then streams, an ``EventStream``; see the module docstring."""

    media_type = SSE_MEDIA_TYPE

    def __init__(self, open_stream: Opener, headers: Mapping[str, str] | None = None) -> None:
        self.open_stream = open_stream
        self.status_code = 200
        self.background = None
        self.init_headers({**SSE_HEADERS, **(headers or {})})
        self.disconnected = False
        self._stream: EventStream | None = None
        self._started = self._finished = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        guard = scope.get(GUARD)
        if guard is not None:  # it cancels this task if the client leaves, and takes the cancellation as that
            guard.cancel_on_disconnect = True
        try:
            await self._serve(send)
        except asyncio.CancelledError:
            if guard is not None and guard.hung_up:
                self.disconnected = True
                log.debug("client disconnected; stream cancelled")
                annotate(error_type="client_disconnected")
            else:  # the server ends us (shutdown): say so in the stream, then go
                await self._end_cancelled(send)
            raise
        if self.background is not None:
            await self.background()

    async def _end_cancelled(self, send: Send) -> None:
        """A stream that started and did not finish: its protocol's error event, then the end."""
        if self._stream is None or not self._started or self._finished or self.disconnected:
            return
        error = ShuttingDownError("the gateway is shutting down; the stream was ended before the answer finished")
        annotate(error_type=error.error_type)
        try:
            await send({"type": "http.response.body", "body": self._stream.error_event(error), "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            self._finished = True
        except Exception:  # the connection is gone
            pass

    async def _serve(self, send: Send) -> None:
        try:
            stream = await self.open_stream()
        except GatewayError as exc:
            await _send_json(send, exc.status_code, error_body(exc), exc.headers)
            return
        except Exception as exc:
            log.error("stream failed to open: %s", type(exc).__name__, exc_info=exc)
            await _send_json(send, 500, {"error": {"type": "internal_error", "message": "internal error"}}, {})
            return
        self._stream = stream
        headers = list(self.raw_headers)
        headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in stream.headers.items()]
        events = stream.events
        try:
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            self._started = True
            async for data in events:
                await send({"type": "http.response.body", "body": data, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            self._finished = True
        finally:
            closer = getattr(events, "aclose", None)
            if closer is not None:
                await closer()


async def _send_json(send: Send, status: int, body: dict[str, Any], headers: Mapping[str, str]) -> None:
    data = json.dumps(body).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": data, "more_body": False})
