"""A fast fake upstream for load benchmarks, speaking OpenAI chat completions and Anthropic messages.

A plain asyncio ``Protocol`` on uvloop with the ``httptools`` parser (no framework), so that it is never the
bottleneck. It answers ``POST .../chat/completions`` with a realistic ``chat.completion`` JSON body, or, when
the request body has ``"stream": true``, with Server-Sent Events (a role chunk, ``--chunks`` content chunks,
a finish chunk, a usage chunk and ``[DONE]``). ``POST .../v1/messages`` answers in Anthropic's Messages wire
format the same way: a ``message`` JSON body, or its event stream (``message_start``, ``content_block_start``,
one ``content_block_delta`` per piece, ``content_block_stop``, ``message_delta`` with the usage,
``message_stop``). Content pieces are ``"zq0 "``, ``"zq1 "``... so a client can detect the first real token
in any gateway's output format by the marker ``zq``.

The delay before the answer (or before the first stream chunk) is set at start (``--delay-ms``) and can be
changed while running with ``POST /_bench/delay/<ms>``; ``POST /_bench/hold/<ms>`` holds each stream that long
after its first token before the rest (long-lived streams); ``GET /_bench/stats`` returns the request
count.

    python bench/upstream.py --port 9100 --delay-ms 0
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import time

import httptools
import orjson

CONTENT_PIECES = 8
STATE: dict[str, float] = {"delay_s": 0.0, "requests": 0, "chunks": CONTENT_PIECES, "hold_s": 0.0}


def completion_body(model: str) -> bytes:
    """A ``chat.completion`` object like OpenAI's."""
    text = "".join(f"zq{i} " for i in range(int(STATE["chunks"]))).strip()
    return orjson.dumps(
        {
            "id": "chatcmpl-bench0001",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 12, "completion_tokens": int(STATE["chunks"]), "total_tokens": 20},
            "system_fingerprint": "fp_bench",
        }
    )


def stream_events(model: str) -> list[bytes]:
    """The SSE events of one streamed answer, each ``data: {...}\\n\\n``."""
    base = {"id": "chatcmpl-bench0001", "object": "chat.completion.chunk", "created": int(time.time())}
    base["model"] = model
    base["system_fingerprint"] = "fp_bench"

    def event(delta: dict, finish: str | None = None, usage: dict | None = None, choices: bool = True) -> bytes:
        obj = dict(base)
        obj["choices"] = [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}] if choices else []
        if usage is not None:
            obj["usage"] = usage
        return b"data: " + orjson.dumps(obj) + b"\n\n"

    n = int(STATE["chunks"])
    events = [event({"role": "assistant", "content": ""})]
    events += [event({"content": f"zq{i} "}) for i in range(n)]
    events.append(event({}, finish="stop"))
    events.append(event({}, usage={"prompt_tokens": 12, "completion_tokens": n, "total_tokens": 12 + n}, choices=False))
    events.append(b"data: [DONE]\n\n")
    return events


def anthropic_body(model: str) -> bytes:
    """A Messages API ``message`` object like Anthropic's."""
    n = int(STATE["chunks"])
    text = "".join(f"zq{i} " for i in range(n)).strip()
    return orjson.dumps(
        {
            "id": "msg_bench0001",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": 12, "output_tokens": n},
        }
    )


def anthropic_events(model: str) -> list[bytes]:
    """The SSE events of one streamed Messages answer, each ``event: <type>\ndata: {...}\n\n``; the
    first text delta is the third event (``_delayed`` flushes the first three at once)."""

    def event(obj: dict) -> bytes:
        return b"event: %s\ndata: %s\n\n" % (obj["type"].encode(), orjson.dumps(obj))

    n = int(STATE["chunks"])
    message = {
        "id": "msg_bench0001",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 12, "output_tokens": 1},
    }
    events = [
        event({"type": "message_start", "message": message}),
        event({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
    ]
    events += [
        event({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": f"zq{i} "}})
        for i in range(n)
    ]
    events.append(event({"type": "content_block_stop", "index": 0}))
    events.append(
        event(
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": n},
            }
        )
    )
    events.append(event({"type": "message_stop"}))
    return events


OPENAI = "openai"
ANTHROPIC = "anthropic"
FIRST_WRITE = {OPENAI: 2, ANTHROPIC: 3}  # events in the first write: up to and including the first token


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


class UpstreamProtocol(asyncio.Protocol):
    """One HTTP/1.1 keep-alive connection."""

    __slots__ = ("_body", "_parser", "_tasks", "_transport", "_url")

    def __init__(self) -> None:
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._url = b""
        self._body: list[bytes] = []
        self._tasks: set[asyncio.Task] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        for task in self._tasks:
            task.cancel()
        self._transport = None

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            if self._transport is not None:
                self._transport.write(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                self._transport.close()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self._url = b""
        self._body = []

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        STATE["requests"] += 1
        url, body = self._url, b"".join(self._body)
        if url.startswith(b"/_bench/"):
            self._control(url)
            return
        path = url.split(b"?", 1)[0]
        if path.endswith(b"/chat/completions"):
            protocol = OPENAI
        elif path.endswith(b"/v1/messages"):
            protocol = ANTHROPIC
        else:
            self._send(404, b'{"error": {"message": "not found", "type": "not_found"}}')
            return
        try:
            request = orjson.loads(body)
            model = str(request.get("model") or "bench-model")
        except (orjson.JSONDecodeError, AttributeError):
            self._send(400, b'{"error": {"message": "invalid JSON", "type": "invalid_request_error"}}')
            return
        stream = bool(request.get("stream"))
        delay = STATE["delay_s"]
        if delay <= 0 and not stream:
            self._send(200, completion_body(model) if protocol == OPENAI else anthropic_body(model))
            return
        task = asyncio.get_running_loop().create_task(self._delayed(protocol, model, stream, delay))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _delayed(self, protocol: str, model: str, stream: bool, delay: float) -> None:
        if delay > 0:
            await asyncio.sleep(delay)
        if self._transport is None:
            return
        if not stream:
            self._send(200, completion_body(model) if protocol == OPENAI else anthropic_body(model))
            return
        head = (
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
            b"transfer-encoding: chunked\r\n\r\n"
        )
        events = stream_events(model) if protocol == OPENAI else anthropic_events(model)
        first = FIRST_WRITE[protocol]
        # The events up to the first token flushed on their own so that time-to-first-token is observable,
        # the rest after a yield (or, with ``hold_s``, that many seconds later).
        self._transport.write(head + b"".join(_chunk(e) for e in events[:first]))
        rest = events[first:]
        await asyncio.sleep(STATE["hold_s"])  # a long stream: the first token at once, the rest after the hold
        if self._transport is not None:
            self._transport.write(b"".join(_chunk(e) for e in rest) + b"0\r\n\r\n")

    def _control(self, url: bytes) -> None:
        parts = url.decode().split("/")
        if len(parts) >= 4 and parts[2] == "delay":
            STATE["delay_s"] = float(parts[3]) / 1000.0
            self._send(200, orjson.dumps({"delay_ms": STATE["delay_s"] * 1000}))
        elif len(parts) >= 4 and parts[2] == "chunks":
            STATE["chunks"] = int(parts[3])
            self._send(200, orjson.dumps({"chunks": STATE["chunks"]}))
        elif len(parts) >= 4 and parts[2] == "hold":
            STATE["hold_s"] = float(parts[3]) / 1000.0
            self._send(200, orjson.dumps({"hold_ms": STATE["hold_s"] * 1000}))
        elif len(parts) >= 3 and parts[2] == "stats":
            self._send(200, orjson.dumps({"requests": STATE["requests"], "delay_ms": STATE["delay_s"] * 1000}))
        else:
            self._send(404, b'{"error": {"message": "unknown control", "type": "not_found"}}')

    def _send(self, status: int, body: bytes) -> None:
        if self._transport is None:
            return
        reason = {200: b"OK", 400: b"Bad Request", 404: b"Not Found"}.get(status, b"OK")
        self._transport.write(
            b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
            % (status, reason, len(body), body)
        )


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(UpstreamProtocol, host, port, backlog=4096, reuse_address=True)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    print(f"bench upstream listening on http://{host}:{port}", flush=True)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("--chunks", type=int, default=CONTENT_PIECES, help="content chunks per answer")
    args = parser.parse_args()
    STATE["delay_s"] = args.delay_ms / 1000.0
    STATE["chunks"] = args.chunks
    run_async(serve(args.host, args.port))


def run_async(coro) -> None:  # type: ignore[no-untyped-def]
    """Run ``coro`` on uvloop when installed (the default loop is still fast enough for small runs)."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(coro)
        return
    uvloop.run(coro)


if __name__ == "__main__":
    main()
