"""The cost of one request through the whole app, measured without the machine's load: a fixed number of
in-process requests, for cProfile or for an instruction count under ``valgrind --tool=callgrind``.

The app is Switchyard as ``switchyard serve`` builds it (``create_app``: every middleware, metrics, JSON
request logs at INFO to a file, body limit, host guard, governance pass-through; with ``--governed`` a master key
and the requests made with a virtual key whose rpm, tpm and budget are checked and counted) over the benchmark catalogue
(``bench/targets.py``), its upstream the bench's fake upstream (``bench/upstream.py``) in another process.
Requests are ASGI calls made the way uvicorn makes them (scope, ``receive`` that answers the body then
waits for the response to end, ``send``); the HTTP server's own parsing is not included (the floor proxy pays
the same).

Paths: ``chat`` (``/v1/chat/completions`` with an explicit model, same-protocol pass-through), ``chat-stream``,
``translated`` (the same request to an Anthropic-protocol model: decoded, translated, re-encoded) and
``translated-stream``.

    python -m bench.hotpath --path chat --requests 2000                  # CPU ms per request (process time)
    python -m bench.hotpath --path chat --requests 2000 --cprofile out.prof
    python -m bench.hotpath --path chat --callgrind                      # instructions per request

``--callgrind`` runs this module twice under callgrind (``--requests`` R and 2R, after the same warm-up) and
reports (Ir(2R) - Ir(R)) / R: start-up, imports and warm-up cancel out. Needs ``valgrind``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import os
import pstats
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import procs
from bench.targets import (
    BENCH_MASTER_KEY,
    CHAT_BODY,
    STREAM_BODY,
    TRANSLATED_MODEL,
    VIRTUAL_KEY,
    dumps,
    switchyard_config,
)

ROOT = Path(__file__).resolve().parents[1]
PATHS = {
    "chat": ("/v1/chat/completions", CHAT_BODY),
    "chat-stream": ("/v1/chat/completions", STREAM_BODY),
    "translated": ("/v1/chat/completions", {**CHAT_BODY, "model": TRANSLATED_MODEL}),
    "translated-stream": ("/v1/chat/completions", {**STREAM_BODY, "model": TRANSLATED_MODEL}),
}


DISCONNECT_HOOK = "switchyard.disconnect_hook"
DisconnectHook: Any = None  # app.api.request_guard's, once the app is imported (older trees have none)


class Driver:
    """Sends ASGI requests to ``app`` as uvicorn would (with switchyard serve's protocol)."""

    def __init__(self, app: Any, path: str, body: bytes) -> None:
        self.app = app
        self.path = path
        self.body = body
        self.headers = [
            (b"host", b"127.0.0.1:8000"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"accept", b"*/*"),
            (b"user-agent", b"bench-hotpath"),
        ]

    async def one(self, keep: list[bytes] | None = None) -> tuple[int, int]:
        """One request; returns (status, body bytes); the body's parts are added to ``keep`` if given."""
        done = asyncio.Event()
        sent_body = False
        status = 0
        size = 0

        async def receive() -> dict[str, Any]:
            nonlocal sent_body
            if not sent_body:
                sent_body = True
                return {"type": "http.request", "body": self.body, "more_body": False}
            await done.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status, size
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                size += len(message.get("body", b""))
                if keep is not None:
                    keep.append(message.get("body", b""))
                if not message.get("more_body", False):
                    done.set()

        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "server": ("127.0.0.1", 8000),
            "client": ("127.0.0.1", 50000),
            "scheme": "http",
            "method": "POST",
            "root_path": "",
            "path": self.path,
            "raw_path": self.path.encode(),
            "query_string": b"",
            "headers": self.headers,
            "state": {},
        }
        if DisconnectHook is not None:  # what switchyard serve's protocol (app.api.http_limits) adds
            scope[DISCONNECT_HOOK] = DisconnectHook()
        await self.app(scope, receive, send)
        done.set()
        return status, size


async def lifespan(app: Any) -> tuple[asyncio.Task[None], asyncio.Queue[dict[str, Any]]]:
    """Start the app's lifespan; returns the task and the queue that ends it."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    started = asyncio.Event()
    await inbox.put({"type": "lifespan.startup"})

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "lifespan.startup.complete":
            started.set()
        elif message["type"].endswith("failed"):
            raise RuntimeError(message.get("message"))

    task = asyncio.get_running_loop().create_task(
        app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, inbox.get, send)
    )
    await asyncio.wait_for(started.wait(), 60)
    return task, inbox


async def virtual_key(app: Any) -> str:
    """A new ``VIRTUAL_KEY`` (``POST /v1/keys`` with the master key)."""
    driver = Driver(app, "/v1/keys", dumps(VIRTUAL_KEY))
    driver.headers.append((b"authorization", f"Bearer {BENCH_MASTER_KEY}".encode()))
    answer: list[bytes] = []
    status, _size = await driver.one(answer)
    if status != 201:
        raise RuntimeError(f"POST /v1/keys: HTTP {status}: {b''.join(answer)[:500]!r}")
    key: str = json.loads(b"".join(answer))["key"]
    return key


def import_app(src: str | None) -> Path:
    """Import ``app`` (from ``src`` for an A/B: a directory holding a copy of ``app/``); where it came from."""
    if src:
        sys.path.insert(0, str(Path(src).resolve()))
    import app as app_package

    where = Path(app_package.__file__ or "").resolve().parent.parent
    if src and where != Path(src).resolve():
        raise RuntimeError(f"app imported from {where}, not {src}")
    return where


async def drive(args: argparse.Namespace) -> dict[str, Any]:
    where = args.where
    os.environ["SWITCHYARD_CONFIG"] = str(args.config)
    os.environ.setdefault("BENCH_ANTHROPIC_KEY", "bench-not-a-key")
    import logging

    from app.main import create_app
    from app.settings.settings import Settings

    global DisconnectHook
    try:
        from app.api.request_guard import DisconnectHook
    except ImportError:
        DisconnectHook = None

    state = args.log.with_name("state.db")  # the embedded store (routing decisions) in the scratch directory
    master = {"master_key": BENCH_MASTER_KEY} if args.governed else {}
    app = create_app(Settings(config=args.config, log_level="info", gc_freeze=True, state_path=state, **master))
    handler = logging.FileHandler(args.log, mode="a")  # the JSON request lines go to a file, as in the bench
    from app.observability.logging import JsonFormatter

    handler.setFormatter(JsonFormatter())
    switchyard = logging.getLogger("switchyard")
    for existing in list(switchyard.handlers):
        switchyard.removeHandler(existing)
    switchyard.addHandler(handler)
    switchyard.propagate = False
    task, inbox = await lifespan(app)
    if args.gc_threshold:  # an experiment: what the app's own setting would be
        gc.set_threshold(*(int(n) for n in args.gc_threshold.split(",")))
    path, body = PATHS[args.path]
    driver = Driver(app, path, dumps(body))
    if args.governed:
        driver.headers.append((b"authorization", b"Bearer " + (await virtual_key(app)).encode()))
    for _ in range(args.warmup):
        status, _size = await driver.one()
        if status != 200:
            raise RuntimeError(f"{args.path}: HTTP {status} during warm-up")
    profiler = cProfile.Profile() if args.cprofile else None
    collections = GcTimer() if args.gc_stats else None
    cpu0 = time.process_time()
    if profiler is not None:
        profiler.enable()
    errors = 0
    left = [args.requests]

    async def worker() -> None:
        nonlocal errors
        while left[0] > 0:
            left[0] -= 1
            status, _size = await driver.one()
            errors += status != 200

    async with asyncio.TaskGroup() as group:
        for _ in range(args.concurrency):
            group.create_task(worker())
    if profiler is not None:
        profiler.disable()
    cpu = time.process_time() - cpu0
    if collections is not None:
        collections.stop()
    await inbox.put({"type": "lifespan.shutdown"})
    await asyncio.wait_for(task, 30)
    if profiler is not None:
        profiler.dump_stats(args.cprofile)
        stats = pstats.Stats(profiler).sort_stats("cumulative")
        stats.print_stats(args.top)
    return {
        "app": str(where),
        "path": args.path,
        "requests": args.requests,
        "errors": errors,
        "cpu_ms_per_request": round(cpu / max(args.requests, 1) * 1000.0, 4),
        **({"gc": collections.report(args.requests)} if collections is not None else {}),
    }


class GcTimer:
    """Collections per generation and their pause times, from ``gc.callbacks`` (``--gc-stats``)."""

    def __init__(self) -> None:
        self.count = [0, 0, 0]
        self.seconds = [0.0, 0.0, 0.0]
        self.longest = 0.0
        self._began = 0.0
        gc.callbacks.append(self._on)

    def _on(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
            return
        took = time.perf_counter() - self._began
        generation = info["generation"]
        self.count[generation] += 1
        self.seconds[generation] += took
        self.longest = max(self.longest, took)

    def stop(self) -> None:
        gc.callbacks.remove(self._on)

    def report(self, requests: int) -> dict[str, Any]:
        return {
            "threshold": list(gc.get_threshold()),
            "collections": self.count,
            "ms_per_request": round(sum(self.seconds) / max(requests, 1) * 1000.0, 4),
            "ms_by_generation": [round(s * 1000.0, 1) for s in self.seconds],
            "longest_ms": round(self.longest * 1000.0, 2),
        }


def start_upstream() -> tuple[procs.Server, str]:
    port = procs.free_port()
    work = Path(tempfile.mkdtemp(prefix="switchyard-hotpath-"))
    cmd = [sys.executable, str(ROOT / "bench" / "upstream.py"), "--port", str(port)]
    server = procs.start("upstream", cmd, cpus=None, env={}, log_dir=work)
    url = f"http://127.0.0.1:{port}"
    procs.wait_ready(server, f"{url}/v1/chat/completions", dumps(CHAT_BODY), timeout=30)
    return server, url


IR_TOTAL = re.compile(r"(?:summary|totals):\s*([\d,]+)")


def callgrind_ir(argv: list[str], requests: int, work: Path) -> int:
    """Total instructions (Ir) of one run of this module with ``requests`` requests under callgrind."""
    out = work / f"callgrind.{requests}.out"
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, "-m", "bench.hotpath"]
    cmd += [*argv, "--requests", str(requests), "--inner"]
    env = {**os.environ, "PYTHONHASHSEED": "0"}  # the same dict layouts in every run
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False, env=env)
    if run.returncode != 0:
        raise RuntimeError(f"callgrind run failed:\n{run.stderr[-3000:]}")
    with open(out) as handle:
        for line in handle:
            match = IR_TOTAL.match(line)
            if match:
                return int(match.group(1).replace(",", ""))
    raise RuntimeError(f"no instruction total in {out}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--path", choices=sorted(PATHS), default="chat")
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--concurrency", type=int, default=1, help="requests in flight at once")
    p.add_argument("--cprofile", help="write a cProfile dump here and print the top functions (cumulative)")
    p.add_argument("--top", type=int, default=60, help="functions printed with --cprofile")
    p.add_argument("--callgrind", action="store_true", help="instructions per request under callgrind")
    p.add_argument("--gc-stats", action="store_true", help="garbage collections and their pauses meanwhile")
    p.add_argument("--gc-threshold", help="gc.set_threshold after start-up, e.g. 10000,10,10 (an experiment)")
    p.add_argument("--upstream", help="a running bench upstream (default: start one)")
    p.add_argument("--routing", action="append", default=[], help="a line added under routing: (YAML)")
    p.add_argument("--governed", action="store_true", help="access control on: a virtual key with rpm/tpm/budget")
    p.add_argument("--src", help="import app from this directory (holding an app/ package) instead: an A/B")
    p.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    raw = sys.argv[1:] if argv is None else argv
    args = parse_args(raw)
    upstream = None
    url = args.upstream
    if url is None:
        upstream, url = start_upstream()
    try:
        work = Path(tempfile.mkdtemp(prefix="switchyard-hotpath-"))
        if args.callgrind:
            keep = [a for a in raw if a != "--callgrind"]
            keep = [*_without_option(keep, "--requests"), "--upstream", url]
            small = callgrind_ir(keep, args.requests, work)
            large = callgrind_ir(keep, 2 * args.requests, work)
            result = {"path": args.path, "requests": args.requests, "ir_per_request": (large - small) // args.requests}
        else:
            args.config = work / "switchyard-hotpath.yaml"
            text = switchyard_config(url)
            for line in args.routing:  # e.g. "feedback: {enabled: false}": what one routing option costs
                text = text.replace("routing:\n", f"routing:\n  {line}\n", 1)
            args.config.write_text(text)
            args.log = work / "requests.log"
            result = _run(args)
        print(json.dumps(result), flush=True)
    finally:
        if upstream is not None:
            upstream.stop()
    return 0


def _run(args: argparse.Namespace) -> dict[str, Any]:
    args.where = import_app(args.src)
    try:
        import uvloop
    except ImportError:
        return asyncio.run(drive(args))
    return uvloop.run(drive(args))


def _without_option(argv: list[str], name: str) -> list[str]:
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == name:
            skip = True
            continue
        if arg.startswith(name + "="):
            continue
        out.append(arg)
    return out


if __name__ == "__main__":
    sys.exit(main())
