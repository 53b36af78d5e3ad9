"""The least work a Python gateway can do: a raw ASGI pass-through to one upstream with a pooled client.

No framework, no parsing, no validation: the request body is forwarded as bytes to
``$FLOOR_UPSTREAM`` + the request path through one long-lived ``aiohttp.ClientSession`` (keep-alive pool), and
the answer (JSON, or SSE chunks as they arrive) is copied back. Served by uvicorn (uvloop + httptools), the
same server Switchyard and LiteLLM use, so the difference between them is the framework and the gateway.

    FLOOR_UPSTREAM=http://127.0.0.1:9100 uvicorn bench.floor_proxy:app --port 9200 --no-access-log
"""

from __future__ import annotations

import os
from typing import Any

import aiohttp

UPSTREAM = os.environ.get("FLOOR_UPSTREAM", "http://127.0.0.1:9100").rstrip("/")
HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "host"})


class FloorProxy:
    """ASGI app; the client session lives from lifespan startup to shutdown."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.session: aiohttp.ClientSession | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        session = self.session or self._start()
        try:
            async with session.request(
                scope["method"],
                self.upstream + scope["path"],
                data=body,
                headers={"content-type": "application/json"},
            ) as upstream:
                headers = [
                    (k.lower().encode(), v.encode()) for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP
                ]
                if upstream.headers.get("content-type", "").startswith("text/event-stream"):
                    await send({"type": "http.response.start", "status": upstream.status, "headers": headers})
                    async for data in upstream.content.iter_any():
                        await send({"type": "http.response.body", "body": data, "more_body": True})
                    await send({"type": "http.response.body", "body": b""})
                    return
                data = await upstream.read()
        except aiohttp.ClientError as exc:
            data = b'{"error": {"type": "bad_gateway", "message": "%s"}}' % type(exc).__name__.encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 502,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": data})
            return
        headers.append((b"content-length", str(len(data)).encode()))
        await send({"type": "http.response.start", "status": upstream.status, "headers": headers})
        await send({"type": "http.response.body", "body": data})

    def _start(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=60)  # no pool cap (long streams)
        self.session = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60))
        return self.session

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.session is not None:
                    await self.session.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


app = FloorProxy(UPSTREAM)
