"""The shared transport and its error boundary against real sockets on 127.0.0.1 that misbehave.

Each fault is a tiny asyncio server: refused port, reset after the request, non-HTTP bytes, a head that never
comes, a body that stalls, a stream that stalls between events, an oversized answer. Whatever happens, the
transport raises a typed ``UpstreamError``; timeouts are checked only as "ended, typed", never for speed.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from app.errors import UpstreamConnectionError, UpstreamError, UpstreamServerError, UpstreamTimeoutError
from app.providers.base import HttpCall
from app.providers.transport import CALL_BOUND, Transport, Who

WHO = Who("openai", "m")
CALL = HttpCall(path="/v1/x", body=b"{}")
STREAM_CALL = HttpCall(path="/v1/x", body=b"{}", stream=True)

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _read_head(reader: asyncio.StreamReader) -> None:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    await reader.readexactly(length)


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[str]]]:
    servers: list[asyncio.Server] = []

    async def start(handler: Handler) -> str:
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        servers.append(server)
        port = server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    yield start
    for server in servers:
        server.close()


def _response(status: int, body: bytes, content_type: bytes = b"application/json") -> bytes:
    return b"HTTP/1.1 %d X\r\ncontent-type: %s\r\ncontent-length: %d\r\n\r\n" % (status, content_type, len(body)) + body


async def test_a_complete_answer_with_any_status(serve) -> None:
    async def handler(reader, writer):
        await _read_head(reader)
        writer.write(_response(503, b'{"error": "busy"}'))
        await writer.drain()

    transport = Transport(await serve(handler), {"authorization": "Bearer k"})
    try:
        answer = await transport.request(CALL, WHO, 5)
    finally:
        await transport.aclose()
    assert answer.status == 503 and answer.body == b'{"error": "busy"}' and answer.content_type == "application/json"


async def test_refused_connection_is_a_connection_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens once the socket is closed
    transport = Transport(f"http://127.0.0.1:{port}", {})
    try:
        with pytest.raises(UpstreamConnectionError):
            await transport.request(CALL, WHO, 5)
    finally:
        await transport.aclose()


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (b"", UpstreamConnectionError),  # closed before any byte
        (b"SSH-2.0-OpenSSH_9.2\r\n", UpstreamServerError),  # not HTTP
        (b'HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{"trunc', UpstreamConnectionError),  # cut body
    ],
)
async def test_broken_connections_are_typed(serve, reply: bytes, expected: type[UpstreamError]) -> None:
    async def handler(reader, writer):
        await _read_head(reader)
        writer.write(reply)
        await writer.drain()
        writer.close()

    transport = Transport(await serve(handler), {})
    try:
        with pytest.raises(expected):
            await transport.request(CALL, WHO, 5)
    finally:
        await transport.aclose()


async def test_no_answer_head_is_a_timeout(serve) -> None:
    async def handler(reader, writer):
        await _read_head(reader)
        await asyncio.sleep(30)

    transport = Transport(await serve(handler), {})
    try:
        with pytest.raises(UpstreamTimeoutError):
            await transport.request(CALL, WHO, 0.2)
    finally:
        await transport.aclose()


async def test_an_outer_bound_of_the_same_task_replaces_the_transports_timers(serve) -> None:
    """Under an attempt's timer that ends sooner (``CALL_BOUND``), the transport sets none of its own; a bound
    set by another task (a child that the outer timer does not cancel) is not trusted."""

    async def handler(reader, writer):
        await _read_head(reader)
        await asyncio.sleep(30)

    transport = Transport(await serve(handler), {})
    try:
        loop = asyncio.get_running_loop()

        async def bounded() -> None:  # claims an outer end in 0.1 s; the 1 s below stands in for that timer
            token = CALL_BOUND.set((asyncio.current_task(), loop.time() + 0.1))
            try:
                await transport.request(CALL, WHO, 0.3)
            finally:
                CALL_BOUND.reset(token)

        with pytest.raises(TimeoutError) as caught:  # not the transport's own timeout after 0.3 s
            await asyncio.wait_for(bounded(), 1.0)
        assert not isinstance(caught.value, UpstreamTimeoutError)

        async def child() -> None:
            await transport.request(CALL, WHO, 0.2)

        token = CALL_BOUND.set((asyncio.current_task(), loop.time() + 0.1))
        try:
            with pytest.raises(UpstreamTimeoutError):
                await asyncio.create_task(child())  # its own timer still runs
        finally:
            CALL_BOUND.reset(token)
    finally:
        await transport.aclose()


async def test_a_body_that_stalls_is_a_timeout(serve) -> None:
    async def handler(reader, writer):
        await _read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{")
        await writer.drain()
        await asyncio.sleep(30)

    transport = Transport(await serve(handler), {})
    try:
        with pytest.raises(UpstreamTimeoutError):
            await transport.request(CALL, WHO, 0.2)
    finally:
        await transport.aclose()


async def test_an_oversized_answer_is_refused(serve) -> None:
    async def handler(reader, writer):
        await _read_head(reader)
        writer.write(_response(200, b"x" * 5000))
        await writer.drain()

    transport = Transport(await serve(handler), {}, max_body_bytes=1000)
    try:
        with pytest.raises(UpstreamServerError):
            await transport.request(CALL, WHO, 5)
    finally:
        await transport.aclose()


async def test_stream_events_and_idle_timeout(serve) -> None:
    async def handler(reader, writer):
        await _read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
        event = b"data: one\n\n"
        writer.write(b"%x\r\n%s\r\n" % (len(event), event))
        await writer.drain()
        await asyncio.sleep(30)  # then nothing: the idle timeout ends it

    transport = Transport(await serve(handler), {})
    try:
        reply = await transport.open_stream(STREAM_CALL, WHO, 0.3)
        seen = []
        async with reply:
            assert reply.status == 200
            with pytest.raises(UpstreamTimeoutError):
                async for batch in reply.event_batches():
                    seen.extend(event.data for event in batch)
        assert seen == ["one"]
    finally:
        await transport.aclose()


async def test_a_stream_that_drips_forever_keeps_each_gap_short(serve) -> None:
    """Bytes every 50 ms keep the idle timer happy: the transport never bounds total length (the request
    deadline does, in orchestration)."""

    async def handler(reader, writer):
        await _read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
        for i in range(10):
            event = b"data: %d\n\n" % i
            writer.write(b"%x\r\n%s\r\n" % (len(event), event))
            await writer.drain()
            await asyncio.sleep(0.05)
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    transport = Transport(await serve(handler), {})
    try:
        async with await transport.open_stream(STREAM_CALL, WHO, 1.0) as reply:
            data = [event.data async for batch in reply.event_batches() for event in batch]
        assert data == [str(i) for i in range(10)]
    finally:
        await transport.aclose()


async def test_auth_header_and_body_reach_the_upstream(serve) -> None:
    seen: dict[str, bytes] = {}

    async def handler(reader, writer):
        head = await reader.readuntil(b"\r\n\r\n")
        seen["head"] = head
        writer.write(_response(200, b"{}"))
        await writer.drain()

    transport = Transport(await serve(handler), {"x-api-key": "secret"})
    try:
        await transport.request(HttpCall(path="/v1/messages", body=b"{}", query={"alt": "sse"}), WHO, 5)
    finally:
        await transport.aclose()
    head = seen["head"].decode().lower()
    assert head.startswith("post /v1/messages?alt=sse http/1.1")
    assert "x-api-key: secret" in head and "content-type: application/json" in head


async def test_a_vendors_cookie_never_rides_on_later_calls(serve) -> None:
    """One client's call must not carry a cookie an upstream set on another's (no shared cookie jar)."""
    heads: list[bytes] = []

    async def handler(reader, writer):
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                return
            await reader.readexactly(2)  # the body: {}
            heads.append(head)
            body = b"{}"
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nset-cookie: __cf_bm=abc; Path=/\r\n"
                b"content-length: %d\r\n\r\n" % len(body) + body
            )
            await writer.drain()

    url = (await serve(handler)).replace("127.0.0.1", "localhost")  # aiohttp's jar ignores cookies of IPs
    transport = Transport(url, {})
    try:
        for _ in range(2):
            await transport.request(CALL, WHO, 5)
    finally:
        await transport.aclose()
    assert len(heads) == 2 and all(b"cookie" not in head.lower() for head in heads)


@pytest.mark.parametrize("exempt", [False, True])
async def test_the_environment_proxy_is_honoured(serve, monkeypatch: pytest.MonkeyPatch, exempt: bool) -> None:
    """``HTTP_PROXY`` (read once per endpoint, not per call) carries the call; ``NO_PROXY`` exempts a host."""
    seen: list[bytes] = []

    async def handler(reader, writer):
        head = await reader.readuntil(b"\r\n\r\n")
        seen.append(head.split(b"\r\n", 1)[0])
        writer.write(_response(200, b"{}"))
        await writer.drain()

    proxy = await serve(handler)
    upstream = await serve(handler)  # reached directly when the host is exempt
    monkeypatch.setenv("HTTP_PROXY", proxy)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1" if exempt else "")
    transport = Transport(upstream, {})
    try:
        answer = await transport.request(CALL, WHO, timeout_s=5)
    finally:
        await transport.aclose()
    assert answer.status == 200
    # a proxy is sent the absolute URL; the upstream itself only the path
    assert seen == ([b"POST /v1/x HTTP/1.1"] if exempt else [f"POST {upstream}/v1/x HTTP/1.1".encode()])
