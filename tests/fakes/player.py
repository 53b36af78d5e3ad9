"""Plays one scripted reply over ASGI: delay, error body, JSON body or SSE stream (or a cut), or one of the
faults of ``tests.fakes.faults``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from tests.fakes.faults import FaultPlayer
from tests.fakes.scripts import ParsedRequest, Reply, WireError, resolve, retry_after_value

POLL_S = 0.01
"""How often delays check for a client disconnect."""


async def sleep_or_disconnect(request: Request, seconds: float) -> bool:
    """Sleep, checking for a client disconnect every POLL_S; True if the client went away."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        if await request.is_disconnected():
            return True
        remaining = deadline - loop.time()
        if remaining <= 0:
            return False
        await asyncio.sleep(min(POLL_S, remaining))


async def send_json(send: Send, status: int, body: Any, headers: Mapping[str, str]) -> None:
    """Send a complete JSON response."""
    data = json.dumps(body).encode()
    all_headers = {**headers, "content-type": "application/json", "content-length": str(len(data))}
    await _start(send, status, all_headers)
    await send({"type": "http.response.body", "body": data, "more_body": False})


async def _start(send: Send, status: int, headers: Mapping[str, str]) -> None:
    raw = [(k.encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})


class ScriptedResponse(Response):
    """An ASGI response that plays ``reply`` for one vendor (``wire`` module).

    ``on_disconnect`` runs if the client goes away before everything was sent; ``on_done``
    always runs at the end. Returning without completing the body makes uvicorn close the
    socket, which is how ``cut_after_chunks`` cuts a stream abruptly.
    """

    def __init__(
        self,
        request: Request,
        wire: ModuleType,
        parsed: ParsedRequest,
        reply: Reply,
        error: WireError | None,
        on_disconnect: Callable[[], None],
        on_done: Callable[[], None],
    ) -> None:
        self.request, self.wire, self.parsed, self.reply, self.error = request, wire, parsed, reply, error
        self.on_disconnect, self.on_done = on_disconnect, on_done

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            if self.reply.delay_s > 0 and await sleep_or_disconnect(self.request, self.reply.delay_s):
                self.on_disconnect()
            else:
                await self._respond(send)
        finally:
            self.on_done()

    async def _respond(self, send: Send) -> None:
        reply, wire = self.reply, self.wire
        error = self.error
        if error is None and reply.is_fault:
            if not await FaultPlayer(self.request, wire, self.parsed, reply).play(send):
                self.on_disconnect()
            return
        if error is None and reply.status != 200:
            error = wire.error(reply.status, reply.error_message)
        if error is not None:
            headers = {**wire.response_headers(), **error.headers}
            if reply.retry_after is not None:
                headers["retry-after"] = retry_after_value(reply.retry_after)
            elif error.status == 429:
                headers["retry-after"] = "1"
            await send_json(send, error.status, error.body, headers)
        elif not self.parsed.stream:
            await send_json(send, 200, wire.completion(resolve(reply, self.parsed)), wire.response_headers())
        elif not await self._stream(send):
            self.on_disconnect()

    async def _stream(self, send: Send) -> bool:
        """Send the SSE stream; False if the client disconnected part-way."""
        reply, wire = self.reply, self.wire
        headers = {**wire.response_headers(), "content-type": wire.SSE_MEDIA_TYPE, "cache-control": "no-cache"}
        await _start(send, 200, headers)
        sent = 0
        for event in wire.stream_events(resolve(reply, self.parsed), self.parsed):
            if event.content:
                if reply.cut_after_chunks is not None and sent >= reply.cut_after_chunks:
                    return True  # incomplete response: uvicorn closes the socket, no final events
                if reply.error_after_chunks is not None and sent >= reply.error_after_chunks:
                    data = wire.stream_error(reply.stream_error_status, reply.error_message)
                    await send({"type": "http.response.body", "body": data, "more_body": True})
                    break
                pause = reply.chunk_delay_s if sent else 0.0
                if pause > 0 and await sleep_or_disconnect(self.request, pause):
                    return False
            if await self.request.is_disconnected():
                return False
            await send({"type": "http.response.body", "body": event.data, "more_body": True})
            sent += 1 if event.content else 0
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return True
