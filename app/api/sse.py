"""Server-Sent Events: event encoding and a streaming response that is honest about failure.

``EventStreamResponse`` first awaits its ``open`` coroutine, which does everything that may still fail
cleanly (routing, fallbacks until a first chunk). If that fails, the client gets an ordinary JSON error
with its HTTP status, exactly like the non-streamed endpoint. Otherwise the 200 event stream starts and
its events are forwarded as they are produced, with no buffering.

From the first byte of the request to the last event, the response watches for the client's disconnect
and cancels the work at once (Starlette's ``StreamingResponse`` only notices when its next write fails,
which may be long after the upstream started generating tokens nobody will read).
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

from app.api.errors import error_body
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
    """What ``open`` produces: the events to send and extra response headers."""

    events: AsyncIterator[bytes]
    headers: Mapping[str, str] = field(default_factory=dict)


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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        work = asyncio.create_task(self._serve(send))
        watcher = asyncio.create_task(self._watch(receive))
        try:
            await asyncio.wait({work, watcher}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not work.done():
                self.disconnected = watcher.done()
                work.cancel()
            watcher.cancel()
            await asyncio.gather(work, watcher, return_exceptions=True)
        if self.disconnected:
            log.info("client disconnected; stream cancelled")
            annotate(error_type="client_disconnected")
            return
        work.result()  # re-raise a failure after the stream started: the server then aborts it
        if self.background is not None:
            await self.background()

    @staticmethod
    async def _watch(receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
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
        headers = list(self.raw_headers)
        headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in stream.headers.items()]
        events = stream.events
        try:
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            async for data in events:
                await send({"type": "http.response.body", "body": data, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
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
