"""An HTTP/1.1 load generator on raw asyncio sockets (uvloop + httptools), cheap enough per request that
one core drives several thousand requests per second.

Modes:
- ``open``: open-loop at a fixed rate. Request *i* is due at ``t0 + i / rate`` whatever the server does;
  latency is measured from that due time (no coordinated omission). A request that finds no idle
  keep-alive connection opens a new one, up to ``--max-connections``; past that it is *dropped*.
- ``closed``: ``--concurrency`` connections each send the next request as soon as the previous one is
  answered, for ``--duration`` seconds or ``--requests`` requests: the maximum throughput.
- ``hold``: ``--concurrency`` long requests (streams, each on its own connection, opened at ``--ramp-rate``
  per second) held open at once; meanwhile, from the start, ``--probe-rate`` other requests per second
  (``--probe-body-file``, to ``--probe-url`` or the same URL) for ``--probe-seconds``, whose latency is
  reported: how the server answers others while it opens and holds many streams. The open-file limit is
  raised to its maximum.

Streaming responses (``--stream``) also record the time to first token: the first body bytes containing
the upstream's token marker (``zq``, see ``bench/upstream.py``), whatever format the gateway re-encodes to.

Prints one JSON object (``--json``) or a short text summary.

    python bench/loadgen.py --url http://127.0.0.1:9100/v1/chat/completions \\
        --body '{"model": "m", "messages": [{"role": "user", "content": "hi"}]}' --mode open --rate 500
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import math
import resource
import sys
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httptools

TOKEN_MARKER = b"zq"


@dataclass
class Stats:
    """What one run observed."""

    latencies: list[float] = field(default_factory=list)
    ttfts: list[float] = field(default_factory=list)
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    sent: int = 0
    dropped: int = 0
    max_connections_used: int = 0


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of an ascending list (``q`` in 0..100); None when empty."""
    if not sorted_values:
        return None
    rank = max(1, min(len(sorted_values), math.ceil(q / 100.0 * len(sorted_values) - 1e-9)))
    return sorted_values[rank - 1]


def summarize(values: list[float]) -> dict[str, float | None]:
    """p50/p90/p99/max/mean in milliseconds."""
    ordered = sorted(values)
    out: dict[str, float | None] = {
        f"p{q}": (None if (v := percentile(ordered, q)) is None else round(v * 1000, 3)) for q in (50, 90, 99)
    }
    out["max"] = round(ordered[-1] * 1000, 3) if ordered else None
    out["mean"] = round(sum(ordered) / len(ordered) * 1000, 3) if ordered else None
    return out


class Connection(asyncio.Protocol):
    """One keep-alive client connection; ``request()`` sends the prepared bytes and awaits the response."""

    def __init__(self, payload: bytes, stream: bool) -> None:
        self.payload = payload
        self.stream = stream
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[tuple[int, float | None]] | None = None
        self.first_token: float | None = None
        self.closed = False
        self.keep_alive = True

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection closed by the server"))

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            pass
        except httptools.HttpParserError as exc:
            if self.waiter is not None and not self.waiter.done():
                self.waiter.set_exception(ConnectionError(f"bad response: {exc}"))
            self.close()

    # httptools callbacks
    def on_body(self, body: bytes) -> None:
        if self.stream and self.first_token is None and TOKEN_MARKER in body:
            self.first_token = time.perf_counter()

    def on_message_complete(self) -> None:
        self.keep_alive = self.parser.should_keep_alive()
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result((self.parser.get_status_code(), self.first_token))

    async def request(self) -> tuple[int, float | None]:
        assert self.transport is not None
        self.first_token = None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(self.payload)
        return await self.waiter

    @property
    def usable(self) -> bool:
        return not self.closed and self.keep_alive

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


def build_payload(url: str, body: bytes, headers: dict[str, str]) -> tuple[str, int, bytes]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        "Accept: */*",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return host, port, ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class Generator:
    """Shared pool and recording for both modes."""

    def __init__(self, url: str, body: bytes, *, stream: bool, timeout: float, headers: dict[str, str]) -> None:
        self.host, self.port, self.payload = build_payload(url, body, headers)
        self.stream = stream
        self.timeout = timeout
        self.stats = Stats()
        self.idle: collections.deque[Connection] = collections.deque()
        self.open_connections = 0

    async def connect(self) -> Connection:
        loop = asyncio.get_running_loop()
        self.open_connections += 1
        self.stats.max_connections_used = max(self.stats.max_connections_used, self.open_connections)
        try:
            _, conn = await loop.create_connection(lambda: Connection(self.payload, self.stream), self.host, self.port)
        except BaseException:
            self.open_connections -= 1
            raise
        return conn

    def discard(self, conn: Connection) -> None:
        conn.close()
        self.open_connections -= 1

    async def one(self, conn: Connection | None, due: float, record: bool = True) -> Connection | None:
        """Send one request (connecting first when ``conn`` is None); return the connection if reusable."""
        self.stats.sent += record
        try:
            async with asyncio.timeout(self.timeout):
                if conn is None:
                    conn = await self.connect()
                status, first_token = await conn.request()
        except TimeoutError:
            self._error(record, "timeout")
            if conn is not None:
                self.discard(conn)
            return None
        except OSError as exc:
            self._error(record, type(exc).__name__)
            if conn is not None:
                self.discard(conn)
            return None
        done = time.perf_counter()
        if record:
            if 200 <= status < 300:
                self.stats.latencies.append(done - due)
                if first_token is not None:
                    self.stats.ttfts.append(first_token - due)
                elif self.stream:
                    self.stats.errors["no_token"] += 1
            else:
                self.stats.errors[f"http_{status}"] += 1
        if conn.usable:
            return conn
        self.discard(conn)
        return None

    def _error(self, record: bool, kind: str) -> None:
        if record:
            self.stats.errors[kind] += 1

    async def closed_loop(self, concurrency: int, duration: float, requests: int | None) -> float:
        """Max throughput: ``concurrency`` back-to-back senders. Returns the elapsed seconds."""
        start = time.perf_counter()
        end = start + duration
        budget = [requests if requests is not None else -1]

        async def worker() -> None:
            conn: Connection | None = None
            while time.perf_counter() < end:
                if budget[0] == 0:
                    break
                budget[0] -= 1
                conn = await self.one(conn, time.perf_counter())
            if conn is not None:
                self.discard(conn)

        async with asyncio.TaskGroup() as group:
            for _ in range(concurrency):
                group.create_task(worker())
        return time.perf_counter() - start

    async def open_loop(self, rate: float, duration: float, max_connections: int) -> float:
        """Fixed-rate arrivals for ``duration`` seconds. Returns the elapsed seconds (incl. the drain)."""
        total = int(rate * duration)
        start = time.perf_counter()
        tasks: set[asyncio.Task[None]] = set()

        async def fire(due: float) -> None:
            conn = self.idle.pop() if self.idle else None
            conn = await self.one(conn, due)
            if conn is not None:
                self.idle.append(conn)

        i = 0
        while i < total:
            now = time.perf_counter()
            due = start + i / rate
            if due > now:
                await asyncio.sleep(due - now)
                continue
            while i < total and start + i / rate <= now:
                due = start + i / rate
                i += 1
                while self.idle and not self.idle[-1].usable:
                    self.discard(self.idle.pop())
                if not self.idle and self.open_connections >= max_connections:
                    self.stats.sent += 1
                    self.stats.dropped += 1
                    continue
                task = asyncio.create_task(fire(due))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.wait(tasks)
        while self.idle:
            self.discard(self.idle.pop())
        return time.perf_counter() - start

    async def warm(self, connections: int) -> None:
        """Open ``connections`` keep-alive connections and send one unrecorded request on each."""

        async def one() -> None:
            with contextlib.suppress(OSError, TimeoutError):
                conn = await self.one(None, time.perf_counter(), record=False)
                if conn is not None:
                    self.idle.append(conn)

        await asyncio.gather(*(one() for _ in range(connections)))


class Holder:
    """``hold`` mode: many long requests at once, and the latency of probe requests meanwhile."""

    def __init__(self, args: argparse.Namespace, headers: dict[str, str]) -> None:
        self.streams = Generator(args.url, args.body_bytes, stream=True, timeout=args.timeout, headers=headers)
        self.probes = Generator(
            args.probe_url or args.url, args.probe_bytes, stream=False, timeout=args.probe_timeout, headers=headers
        )
        self.args = args
        self.in_flight = 0
        self.max_in_flight = 0
        self.ramp_s = 0.0

    async def _stream(self) -> None:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            conn = await self.streams.one(None, time.perf_counter())
            if conn is not None:
                self.streams.discard(conn)
        finally:
            self.in_flight -= 1

    async def run(self) -> float:
        a = self.args
        start = time.perf_counter()
        tasks: set[asyncio.Task[None]] = set()
        probing = None
        if a.probe_seconds > 0 and a.probe_rate > 0:  # alongside the ramp and the hold
            probing = asyncio.create_task(self.probes.open_loop(a.probe_rate, a.probe_seconds, 64))
        for i in range(a.concurrency):
            due = start + i / a.ramp_rate
            if (wait := due - time.perf_counter()) > 0:
                await asyncio.sleep(wait)
            task = asyncio.create_task(self._stream())
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        self.ramp_s = time.perf_counter() - start
        if probing is not None:
            await probing
        if tasks:
            await asyncio.wait(tasks)
        return time.perf_counter() - start


def hold_report(holder: Holder, elapsed: float, cpu_start: float) -> dict[str, Any]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    s, p = holder.streams.stats, holder.probes.stats
    return {
        "mode": "hold",
        "url": holder.args.url,
        "streams": holder.args.concurrency,
        "ok": len(s.latencies),
        "errors": dict(s.errors),
        "error_count": sum(s.errors.values()),
        "max_open": holder.max_in_flight,
        "ramp_s": round(holder.ramp_s, 3),
        "elapsed_s": round(elapsed, 3),
        "stream_ms": summarize(s.latencies),
        "ttft_ms": summarize(s.ttfts),
        "probe": {
            "sent": p.sent,
            "ok": len(p.latencies),
            "errors": dict(p.errors),
            "error_count": sum(p.errors.values()),
            "dropped": p.dropped,
            "latency_ms": summarize(p.latencies),
        },
        "nofile": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
        "generator_cpu_s": round(usage.ru_utime + usage.ru_stime - cpu_start, 3),
    }


def raise_fd_limit() -> int:
    """Raise this process's open-file soft limit to its hard limit; return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def report(gen: Generator, args: argparse.Namespace, elapsed: float, cpu_start: float) -> dict[str, Any]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    ok = len(gen.stats.latencies)
    out: dict[str, Any] = {
        "mode": args.mode,
        "url": args.url,
        "stream": args.stream,
        "target_rate": args.rate if args.mode == "open" else None,
        "concurrency": args.concurrency if args.mode == "closed" else None,
        "elapsed_s": round(elapsed, 3),
        "sent": gen.stats.sent,
        "ok": ok,
        "errors": dict(gen.stats.errors),
        "error_count": sum(gen.stats.errors.values()),
        "dropped": gen.stats.dropped,
        "achieved_rps": round(ok / elapsed, 1) if elapsed > 0 else 0.0,
        "latency_ms": summarize(gen.stats.latencies),
        "ttft_ms": summarize(gen.stats.ttfts) if args.stream else None,
        "max_connections_used": gen.stats.max_connections_used,
        "generator_cpu_s": round(usage.ru_utime + usage.ru_stime - cpu_start, 3),
    }
    return out


async def run(args: argparse.Namespace) -> dict[str, Any]:
    body: bytes = args.body_bytes
    headers = dict(h.split(":", 1) for h in args.header)
    headers = {k.strip(): v.strip() for k, v in headers.items()}
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_start = usage.ru_utime + usage.ru_stime
    if args.mode == "hold":
        holder = Holder(args, headers)
        return hold_report(holder, await holder.run(), cpu_start)
    gen = Generator(args.url, body, stream=args.stream, timeout=args.timeout, headers=headers)
    if args.mode == "closed":
        elapsed = await gen.closed_loop(args.concurrency, args.duration, args.requests)
    else:
        if args.warm_connections:
            await gen.warm(args.warm_connections)
        elapsed = await gen.open_loop(args.rate, args.duration, args.max_connections)
    return report(gen, args, elapsed, cpu_start)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="open- and closed-loop HTTP load generator")
    parser.add_argument("--url", required=True)
    parser.add_argument("--body", help="request body (JSON text)")
    parser.add_argument("--body-file", help="file holding the request body")
    parser.add_argument("--header", action="append", default=[], help="extra 'Name: value' header")
    parser.add_argument("--mode", choices=("open", "closed", "hold"), default="closed")
    parser.add_argument("--rate", type=float, default=100.0, help="open loop: requests per second")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load")
    parser.add_argument("--requests", type=int, help="closed loop: stop after this many requests")
    parser.add_argument("--concurrency", type=int, default=64, help="closed loop: connections; hold: streams")
    parser.add_argument("--ramp-rate", type=float, default=1000.0, help="hold: streams opened per second")
    parser.add_argument("--probe-url", help="hold: URL of the probe requests (default --url)")
    parser.add_argument("--probe-body-file", help="hold: body of the probe requests")
    parser.add_argument("--probe-rate", type=float, default=20.0, help="hold: probe requests per second")
    parser.add_argument("--probe-seconds", type=float, default=0.0, help="hold: probing time once all are open")
    parser.add_argument("--probe-timeout", type=float, default=10.0, help="hold: seconds before a probe fails")
    parser.add_argument("--max-connections", type=int, default=512, help="open loop: connection cap")
    parser.add_argument("--warm-connections", type=int, default=0, help="open loop: pre-opened connections")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds before a request counts as failed")
    parser.add_argument("--stream", action="store_true", help="record time to first token")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    if not args.body and not args.body_file:
        parser.error("give --body or --body-file")
    if args.mode == "hold" and not args.probe_body_file and args.probe_seconds > 0:
        parser.error("hold mode with probes needs --probe-body-file")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.body:
        args.body_bytes = args.body.encode()
    else:
        with open(args.body_file, "rb") as handle:
            args.body_bytes = handle.read()
    args.probe_bytes = b""
    if args.probe_body_file:
        with open(args.probe_body_file, "rb") as handle:
            args.probe_bytes = handle.read()
    raise_fd_limit()
    try:
        import uvloop
    except ImportError:
        uvloop = None
    result = uvloop.run(run(args)) if uvloop is not None else asyncio.run(run(args))
    if args.json:
        print(json.dumps(result))
    elif args.mode == "hold":
        print(f"hold: {result['ok']}/{result['streams']} streams ok, max open {result['max_open']}", file=sys.stdout)
    else:
        lat = result["latency_ms"]
        print(
            f"{result['mode']}: ok={result['ok']} errors={result['error_count']} dropped={result['dropped']} "
            f"rps={result['achieved_rps']} p50={lat['p50']}ms p90={lat['p90']}ms p99={lat['p99']}ms",
            file=sys.stdout,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
