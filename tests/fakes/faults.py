"""Plays the fault fields of a ``Reply`` (see ``scripts.Reply``): answers that are broken the ways real
upstreams and the networks in front of them break.

HTTP-level faults go through ASGI; socket-level ones (``socket_fault``) act on the connection's transport,
which the fake's HTTP protocol puts in the scope under ``TRANSPORT_KEY`` (``server._TransportH11``).
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
from collections.abc import Mapping
from types import ModuleType
from typing import Any

from starlette.requests import Request
from starlette.types import Send

from tests.fakes.scripts import ParsedRequest, Reply, StreamEvent, resolve

TRANSPORT_KEY = "fake.transport"
NON_HTTP = b"SSH-2.0-OpenSSH_9.6\r\n\x00\xff\xfe not http at all \x01\x02\r\n\r\n"
ENDLESS_MIN_PAUSE_S = 0.01


async def _start(send: Send, status: int, headers: Mapping[str, str]) -> None:
    raw = [(k.encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})


async def _body(send: Send, data: bytes, more: bool = True) -> None:
    await send({"type": "http.response.body", "body": data, "more_body": more})


def _reset(transport: asyncio.Transport) -> None:
    """Close with a TCP RST (SO_LINGER 0), not a FIN."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


async def _wait_gone(request: Request, limit_s: float = 1.0) -> None:
    """Until the server noticed the closed connection (so uvicorn does not try to answer on it)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while loop.time() < deadline and not await request.is_disconnected():  # noqa: ASYNC110 (uvicorn's state)
        await asyncio.sleep(0.005)


class FaultPlayer:
    """One fault for one request; ``play`` returns False if the client went away before it was done."""

    def __init__(self, request: Request, wire: ModuleType, parsed: ParsedRequest, reply: Reply) -> None:
        self.request, self.wire, self.parsed, self.reply = request, wire, parsed, reply

    def _json_answer(self) -> bytes:
        reply, wire = self.reply, self.wire
        if reply.error_in_200 is not None:
            body: Any = wire.error(reply.error_in_200, reply.error_message).body
        else:
            body = wire.completion(resolve(reply, self.parsed))
        if reply.body_transform is not None:
            body = reply.body_transform(body)
        data = json.dumps(body).encode()
        if reply.truncate_body is not None:
            data = data[: reply.truncate_body]
        return data

    def _stream_events(self) -> list[StreamEvent]:
        return list(self.wire.stream_events(resolve(self.reply, self.parsed), self.parsed))

    async def play(self, send: Send) -> bool:
        reply = self.reply
        if reply.socket_fault is not None:
            await self._socket_fault(send)
            return True
        if reply.raw_body is not None:
            headers = {"content-type": reply.content_type, "content-length": str(len(reply.raw_body))}
            await _start(send, reply.status, headers)
            if reply.drip_s is not None:
                return await self._drip(send, reply.raw_body)
            await _body(send, reply.raw_body, more=False)
            return True
        if reply.endless:
            return await (self._endless_stream(send) if self.parsed.stream else self._endless_json(send))
        if self.parsed.stream and reply.drip_s is not None and reply.error_in_200 is None:
            return await self._drip_stream(send)
        data = self._json_answer()
        headers = {**self.wire.response_headers(), "content-type": "application/json"}
        headers["content-length"] = str(len(data))
        await _start(send, 200, headers)
        if reply.drip_s is not None:
            return await self._drip(send, data)
        await _body(send, data, more=False)
        return True

    # -- below HTTP ---------------------------------------------------------------------------------------

    async def _socket_fault(self, send: Send) -> None:
        transport: asyncio.Transport = self.request.scope[TRANSPORT_KEY]
        kind = self.reply.socket_fault
        if kind == "non_http":
            transport.write(NON_HTTP)
            transport.close()
        elif kind == "close":
            transport.close()
        elif kind == "reset":
            _reset(transport)
        elif self.parsed.stream:  # reset_mid_body of a stream: after its second content chunk
            await _start(send, 200, self._stream_head())
            content = 0
            for event in self._stream_events():
                await _body(send, event.data)
                content += 1 if event.content else 0
                if content == 2:
                    break
            await asyncio.sleep(0.05)
            _reset(transport)
        else:  # reset_mid_body
            data = self._json_answer()
            headers = {**self.wire.response_headers(), "content-type": "application/json"}
            headers["content-length"] = str(len(data))
            await _start(send, 200, headers)
            await _body(send, data[: len(data) // 2])
            await asyncio.sleep(0.05)  # let the head and the first half reach the client
            _reset(transport)
        await _wait_gone(self.request)

    # -- never ending, or ending very slowly ------------------------------------------------------------------

    def _stream_head(self) -> dict[str, str]:
        return {**self.wire.response_headers(), "content-type": self.wire.SSE_MEDIA_TYPE, "cache-control": "no-cache"}

    async def _pause(self, seconds: float) -> bool:
        """Sleep; True if the client went away meanwhile."""
        from tests.fakes.player import sleep_or_disconnect

        return await sleep_or_disconnect(self.request, seconds)

    async def _endless_stream(self, send: Send) -> bool:
        events = self._stream_events()
        first = next((i for i, e in enumerate(events) if e.content), len(events))
        content = [e for e in events if e.content] or [events[0]]
        await _start(send, 200, self._stream_head())
        for event in events[:first]:
            await _body(send, event.data)
        pause = max(self.reply.chunk_delay_s, ENDLESS_MIN_PAUSE_S)
        while True:
            for event in content:
                await _body(send, event.data)
                if await self._pause(pause):
                    return False

    async def _endless_json(self, send: Send) -> bool:
        headers = {**self.wire.response_headers(), "content-type": "application/json"}
        await _start(send, 200, headers)
        while True:
            await _body(send, b" ")  # JSON allows leading whitespace: the answer just never comes
            if await self._pause(ENDLESS_MIN_PAUSE_S):
                return False

    async def _drip_stream(self, send: Send) -> bool:
        events = self._stream_events()
        await _start(send, 200, self._stream_head())
        sent = 0
        for index, event in enumerate(events):
            if sent >= self.reply.drip_after_chunks:
                return await self._drip(send, b"".join(e.data for e in events[index:]))
            await _body(send, event.data)
            sent += 1 if event.content else 0
        await _body(send, b"", more=False)
        return True

    async def _drip(self, send: Send, data: bytes) -> bool:
        assert self.reply.drip_s is not None
        for i in range(len(data)):
            await _body(send, data[i : i + 1])
            if await self._pause(self.reply.drip_s):
                return False
        await _body(send, b"", more=False)
        return True
