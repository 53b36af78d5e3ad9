"""Pure-ASGI guard that refuses request bodies over a size limit with 413 (checked as bytes arrive), and
bodies that take longer than ``timeout_s`` to arrive with 408 (a client trickling its upload holds a
connection and a task as long as it likes otherwise).

Both answers say ``Connection: close``: the rest of the body is not read, so the server closes the
connection rather than read (and discard) an upload of any size before the next request."""

from __future__ import annotations

import asyncio

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.errors import asgi_error
from app.api.request_guard import GUARD
from app.errors import PayloadTooLargeError
from app.watchdog import Watchdog

CLOSE = {"connection": "close"}


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` so that frameworks re-raise it as an HTTP error, not a parse error."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"request body exceeds {max_bytes} bytes", headers=CLOSE)


class BodyTimeout(HTTPException):
    """Raised from ``receive`` when the body did not arrive in time."""

    def __init__(self, timeout_s: float) -> None:
        super().__init__(408, f"the request body did not arrive within {timeout_s:g}s", headers=CLOSE)


class BodyLimitMiddleware:
    """413 when ``Content-Length`` or the bytes actually received exceed ``max_bytes``; 408 when the whole
    body took longer than ``timeout_s`` (None: no bound)."""

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.max_bytes
                except ValueError:
                    too_big = False
                if too_big:
                    await self._reject(scope, send)
                    return
        received = 0
        started = False
        body_done = False
        timeout_s = self.timeout_s
        watch = None if timeout_s is None else Watchdog(deadline=asyncio.get_running_loop().time() + timeout_s)

        async def limited_receive() -> Message:
            nonlocal received, body_done
            if body_done or watch is None:
                message = await receive()
            else:
                try:
                    message = await watch.wait(receive())
                except TimeoutError:
                    raise BodyTimeout(timeout_s or 0.0) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
                body_done = not message.get("more_body", False)
                if body_done and watch is not None:
                    watch.close()
            return message

        guard = scope.get(GUARD)  # the request guard outside us knows whether the answer started
        inner_send = send
        if guard is None:

            async def tracking_send(message: Message) -> None:
                nonlocal started
                if message["type"] == "http.response.start":
                    started = True
                await send(message)

            inner_send = tracking_send
        try:
            await self.app(scope, limited_receive, inner_send)
        except BodyTooLarge:
            if not (guard.started if guard is not None else started):
                await self._reject(scope, send)
        finally:
            if watch is not None:
                watch.close()

    async def _reject(self, scope: Scope, send: Send) -> None:
        error = PayloadTooLargeError(f"request body exceeds {self.max_bytes} bytes")
        start, body = asgi_error(scope, error, ((b"connection", b"close"),))
        await send(start)
        await send(body)
