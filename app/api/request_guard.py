"""The life of one request's task: unexpected errors, clients that hang up, and the server shutting down.

- **An exception no handler turned into an answer** is logged once (with the request id and its traceback)
  and answered 500 ``internal_error`` in the gateway's JSON shape; the server never sees it, so the client's
  keep-alive connection stays usable (Starlette's last-resort handler re-raises, and uvicorn then logs it a
  second time without the request id and drops the connection).
- **A client that disconnects** before its answer started cancels the handler at once, and with it the
  upstream call (a non-streamed request otherwise runs to its end for nobody). The request is logged 499
  with the tokens and cost spent so far (orchestration charges a cancelled call its estimated prompt
  tokens, flagged ``estimated``). A stream's response asks the guard to cancel it on a disconnect after it
  started too (``cancel_on_disconnect``, ``app.api.sse``): the guard's watcher is the stream's, and no task
  of its own watches.
- **The server's graceful-shutdown timeout** (``SWITCHYARD_DRAIN_S``) cancels what still runs: a request whose
  answer has not started gets 503 ``shutting_down`` (``Connection: close``); a stream ends with its
  protocol's error event (``app.api.sse``). The server's protocol marks the requests in flight when the
  shutdown begins (``SHUTTING_DOWN``); any other cancellation is re-raised untouched.

Once the request body has been read (a handler still reading its body sees a disconnect itself), the guard
learns of a disconnect from the server's protocol when it offers a ``DisconnectHook`` (``switchyard serve``'s
``app.api.http_limits``: a call from its ``connection_lost``, no task); under any other server it starts one
watcher task per request that waits for ``http.disconnect``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.errors import asgi_error
from app.errors import GatewayError
from app.observability.context import annotate

log = logging.getLogger("switchyard.errors")


DISCONNECT_HOOK = "switchyard.disconnect_hook"
"""Scope key of the ``DisconnectHook`` a server's protocol offers for the request."""

GUARD = "switchyard.request_guard"
"""Scope key of the request's guard state (``_Request``), for a streaming response to ask for
``cancel_on_disconnect``."""

SHUTTING_DOWN = "switchyard.shutting_down"
"""Scope key the server's HTTP protocol sets on the requests in flight when its graceful shutdown begins
(``app.api.http_limits``): a later cancellation of such a request is the end of the drain period."""


class ShuttingDownError(GatewayError):
    """The server is shutting down and its drain period is over."""

    status_code = 503
    error_type = "shutting_down"


class InFlight:
    """The requests this app is serving, so that shutdown can let the ones the server just cancelled finish
    their last answer (an error event, a 503) and their log line before the process exits."""

    def __init__(self) -> None:
        self.count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def enter(self) -> None:
        self.count += 1
        self._idle.clear()

    def leave(self) -> None:
        self.count -= 1
        if self.count <= 0:
            self._idle.set()

    async def wait_idle(self, timeout_s: float) -> bool:
        """True once no request is in flight; False if some still are after ``timeout_s``."""
        try:
            async with asyncio.timeout(timeout_s):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True


class DisconnectHook:
    """Set by the server's protocol in a request's scope; ``fire()`` when the client's connection is lost
    before the answer completed. The guard sets ``callback``."""

    __slots__ = ("callback", "lost")

    def __init__(self) -> None:
        self.lost = False
        self.callback: Callable[[], None] | None = None

    def fire(self) -> None:
        self.lost = True
        callback, self.callback = self.callback, None
        if callback is not None:
            callback()


class _Request:
    """One request's state as the guard sees it."""

    __slots__ = (
        "_gone",
        "cancel_on_disconnect",
        "complete",
        "gone",
        "hook",
        "hung_up",
        "receive",
        "send_",
        "started",
        "task",
        "watcher",
    )

    def __init__(self, receive: Receive, send: Send, task: asyncio.Task[Any], hook: DisconnectHook | None) -> None:
        self.receive, self.send_, self.task, self.hook = receive, send, task, hook
        self.started = self.complete = self.hung_up = False
        self.cancel_on_disconnect = False  # also once the answer started (a stream): set by its response
        self.gone = False  # the client disconnected
        self._gone: asyncio.Event | None = None  # made only when something waits for the disconnect
        self.watcher: asyncio.Task[None] | None = None

    async def app_receive(self) -> Message:
        if self.watching or self.gone:  # the body was read: we learn of the disconnect now
            if not self.gone:
                self._gone = self._gone or asyncio.Event()
                await self._gone.wait()
            return {"type": "http.disconnect"}
        message = await self.receive()
        kind = message["type"]
        if kind == "http.disconnect":
            self._left()
        elif kind == "http.request" and not message.get("more_body", False):
            self._watch_client()
        return message

    def _watch_client(self) -> None:
        hook = self.hook
        if hook is None:
            self.watcher = asyncio.get_running_loop().create_task(self._watch())
        elif hook.lost:
            self._client_left()
        else:
            hook.callback = self._client_left

    async def app_send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self.started = True
        elif kind == "http.response.body" and not message.get("more_body", False):
            self.complete = True
        await self.send_(message)

    async def _watch(self) -> None:
        while (await self.receive())["type"] != "http.disconnect":
            pass
        self._client_left()

    def _left(self) -> None:
        self.gone = True
        if self._gone is not None:
            self._gone.set()

    def _client_left(self) -> None:
        self._left()
        if not self.complete and (not self.started or self.cancel_on_disconnect):
            self.hung_up = True
            self.task.cancel()

    @property
    def watching(self) -> bool:
        """Whether a disconnect will reach us (the body was read, the client is still there)."""
        hook = self.hook
        if hook is not None:
            return hook.callback is not None
        return self.watcher is not None and not self.watcher.done()

    def stop(self) -> None:
        """Cancel the watcher (it ends on the loop's next turn; not awaited, to spare the request one turn)."""
        if self.hook is not None:
            self.hook.callback = None
        watcher = self.watcher
        if watcher is not None and not watcher.done():
            watcher.cancel()


class RequestGuardMiddleware:
    """See the module docstring. Sits inside the observability middleware (the request id is bound)."""

    def __init__(self, app: ASGIApp, in_flight: InFlight | None = None) -> None:
        self.app = app
        self.in_flight = in_flight or InFlight()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        task = asyncio.current_task()
        assert task is not None
        request = _Request(receive, send, task, scope.get(DISCONNECT_HOOK))
        scope[GUARD] = request
        self.in_flight.enter()
        try:  # one function, not two: every coroutine on the request's path is resumed at each of its wake-ups
            await self.app(scope, request.app_receive, request.app_send)
        except asyncio.CancelledError:
            if request.hung_up:
                task.uncancel()
                annotate(error_type="client_disconnected")
                log.debug("client disconnected before its answer; request cancelled")
                return
            if not scope.get(SHUTTING_DOWN):
                raise  # cancelled by whoever runs us (an embedding, a test client): theirs to handle
            # the server cancelled us: its graceful shutdown's drain period is over (a stream has sent its
            # error event already; an answer cut mid-way is closed by the server)
            task.uncancel()
            annotate(error_type="shutting_down")
            if not request.started:
                await self._answer(scope, request, ShuttingDownError("the gateway is shutting down"), close=True)
        except Exception as exc:
            log.error("unhandled error on %s %s: %s", scope["method"], scope["path"], type(exc).__name__, exc_info=exc)
            annotate(error_type="internal_error")
            if not request.started:
                await self._answer(scope, request, GatewayError("internal error"))
            # else: the answer is cut; returning without completing it makes the server close the connection
        else:
            if request.hung_up and task.cancelling():  # the handler swallowed our cancellation
                task.uncancel()
        finally:
            request.stop()
            self.in_flight.leave()

    @staticmethod
    async def _answer(scope: Scope, request: _Request, error: GatewayError, *, close: bool = False) -> None:
        start, body = asgi_error(scope, error, ((b"connection", b"close"),) if close else ())
        try:
            await request.app_send(start)
            await request.app_send(body)
        except Exception:  # the client is gone
            pass
