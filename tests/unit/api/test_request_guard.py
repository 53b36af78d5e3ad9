"""The request guard: unexpected errors answered once, hang-ups cancel the handler, shutdown answers 503."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from app.api.request_guard import SHUTTING_DOWN, InFlight, RequestGuardMiddleware
from app.observability.context import RequestContext, bind, unbind

Message = dict[str, Any]


class Client:
    """An ASGI client side: sends a body, then hangs up when told to; records what the app sends."""

    def __init__(self) -> None:
        self.sent: list[Message] = []
        self.hang_up = asyncio.Event()
        self._body_sent = False

    async def receive(self) -> Message:
        if not self._body_sent:
            self._body_sent = True
            return {"type": "http.request", "body": b"{}", "more_body": False}
        await self.hang_up.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    @property
    def status(self) -> int | None:
        return next((m["status"] for m in self.sent if m["type"] == "http.response.start"), None)

    @property
    def body(self) -> Any:
        return json.loads(b"".join(m.get("body", b"") for m in self.sent if m["type"] == "http.response.body"))


SCOPE = {"type": "http", "method": "POST", "path": "/v1/complete", "headers": []}
App = Callable[[Any, Any, Any], Awaitable[None]]


async def serve(
    app: App, client: Client, ctx: RequestContext | None = None, scope: dict[str, Any] | None = None
) -> RequestGuardMiddleware:
    guard = RequestGuardMiddleware(app, InFlight())
    token = bind(ctx or RequestContext("req-1"))
    try:
        await guard(scope or dict(SCOPE), client.receive, client.send)
    finally:
        unbind(token)
    return guard


async def test_a_hang_up_cancels_the_handler_at_once() -> None:
    client = Client()
    events: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()  # the body
        try:
            client.hang_up.set()  # the client goes away while the "upstream call" runs
            await asyncio.sleep(30)
            events.append("finished")
        except asyncio.CancelledError:
            events.append("cancelled")
            raise

    ctx = RequestContext("req-1")
    async with asyncio.timeout(5):
        guard = await serve(app, client, ctx)
    assert events == ["cancelled"]
    assert client.sent == []  # nothing to answer: the client is gone
    assert ctx.error_type == "client_disconnected"
    assert guard.in_flight.count == 0
    assert not asyncio.current_task().cancelling()  # type: ignore[union-attr]


async def test_a_handler_reading_after_its_body_sees_the_disconnect() -> None:
    client = Client()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        client.hang_up.set()
        assert (await receive())["type"] == "http.disconnect"  # through the guard's watcher
        await send({"type": "http.response.body", "body": b"{}", "more_body": False})

    async with asyncio.timeout(5):
        await serve(app, client)
    assert client.status == 200


async def test_an_unexpected_error_is_a_500_json_answer_and_not_raised() -> None:
    client = Client()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("a bug")

    await serve(app, client)
    assert client.status == 500
    assert client.body["error"]["type"] == "internal_error"
    assert "a bug" not in json.dumps(client.body)


async def test_a_server_cancel_before_the_answer_is_a_503_closing_the_connection() -> None:
    client = Client()
    started = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        started.set()
        await asyncio.sleep(30)

    scope = dict(SCOPE)
    task = asyncio.ensure_future(serve(app, client, scope=scope))
    await started.wait()
    scope[SHUTTING_DOWN] = True  # what the server's protocol does when its graceful shutdown begins
    task.cancel()  # what uvicorn does when the drain period is over
    await task  # the guard answered and swallowed the server's cancellation
    assert client.status == 503
    assert client.body["error"]["type"] == "shutting_down"
    headers = dict(client.sent[0]["headers"])
    assert headers[b"connection"] == b"close"


async def test_in_flight_waits_for_the_last_requests() -> None:
    flight = InFlight()
    assert await flight.wait_idle(0.01)
    flight.enter()
    assert not await flight.wait_idle(0.01)
    asyncio.get_running_loop().call_later(0.05, flight.leave)
    assert await flight.wait_idle(5)


async def test_any_other_cancellation_is_raised_untouched() -> None:
    client = Client()
    started = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        started.set()
        await asyncio.sleep(30)

    task = asyncio.ensure_future(serve(app, client))
    await started.wait()
    task.cancel()  # whoever runs the app (an embedding, a test client) cancels it
    try:
        await task
    except asyncio.CancelledError:
        pass
    else:
        raise AssertionError("the cancellation was swallowed")
    assert client.sent == []
