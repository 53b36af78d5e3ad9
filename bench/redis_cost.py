"""Redis's own CPU per governance operation of the Redis store (``app/state/redis_store.py``), from the
server's ``INFO commandstats`` (microseconds per ``EVALSHA``): what one shared Redis can carry for every
replica at once. A key with rpm, tpm and a daily budget, its rate windows full (every slice written: the
window is shortened to ``--window-s`` so that they fill quickly), then ``--calls`` admissions, settlements
and usage reads, each measured on its own.

    python -m bench.redis_cost                      # this checkout's app/
    python -m bench.redis_cost --src /path/to/tree  # another checkout's app/ (an A/B)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def measure(url: str, window_s: float, calls: int) -> dict[str, float]:
    import redis.asyncio as aioredis

    from app.state.records import KeyRecord
    from app.state.redis_store import RedisStore

    store = RedisStore(url, timeout_s=5.0, window_s=window_s)
    admin: Any = aioredis.Redis.from_url(url)
    await store.start()
    try:
        key = KeyRecord(
            id="bench", name="bench", secret_hash="0" * 64, created_at=time.time(),
            rpm=10**9, tpm=10**12, budget_usd=1e6, budget_period="1d",
        )  # fmt: skip
        await store.create_key(key)
        ends = time.monotonic() + window_s * 1.2
        while time.monotonic() < ends:  # every slice of both windows written
            await store.admit(key.id, None, 30)
            await store.settle(key.id, None, 1e-4, "m", 20)
            await asyncio.sleep(window_s / 500)
        operations = {
            "admit": lambda: store.admit(key.id, None, 30),
            "settle": lambda: store.settle(key.id, None, 1e-4, "m", 20),
            "usage": lambda: store.usage(key.id),
        }
        out: dict[str, float] = {}
        for name, call in operations.items():
            await admin.config_resetstat()
            for _ in range(calls):
                await call()
            stats = await admin.info("commandstats")
            out[name] = float(stats["cmdstat_evalsha"]["usec_per_call"])
        return out
    finally:
        await store.aclose()
        await admin.aclose()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--src", help="import app from this directory instead (an A/B)")
    p.add_argument("--calls", type=int, default=3000)
    p.add_argument("--window-s", type=float, default=6.1)
    args = p.parse_args()
    if args.src:
        sys.path.insert(0, args.src)
    server_bin = shutil.which("redis-server")
    if server_bin is None:
        sys.exit("redis-server not found (apt-get install redis-server)")
    port = free_port()
    with tempfile.TemporaryDirectory() as work:
        cmd = [server_bin, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        server = subprocess.Popen([*cmd, "--dir", work], stdout=subprocess.DEVNULL)
        try:
            time.sleep(0.5)
            result = asyncio.run(measure(f"redis://127.0.0.1:{port}/0", args.window_s, args.calls))
        finally:
            server.terminate()
            server.wait(timeout=10)
    print(json.dumps({"redis_us_per_call": result, "calls": args.calls, "window_s": args.window_s}))


if __name__ == "__main__":
    main()
