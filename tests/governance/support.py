"""Helpers of the access-control tests: a real ``redis-server`` on a free loopback port, a governed app,
and shortcuts for creating keys and making calls."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.support import app_client, fake_models, write_config

REDIS = shutil.which("redis-server")
MASTER = "sy-master-test-0123456789abcdef"
MASTER_HEADERS = {"Authorization": f"Bearer {MASTER}"}
PRICED = "priced"  # a model with round prices: $0.001 per input token, $0.002 per output token
PRICED_UPSTREAM = "priced-upstream"  # its upstream model id (what the fake upstream scripts and records)
PRICE_IN, PRICE_OUT = 0.001, 0.002


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """``redis-server`` on 127.0.0.1:``port`` (no persistence); ``pause``/``resume`` freeze it (SIGSTOP), so
    clients time out as with a hung server, and the data is still there afterwards."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisServer:
        assert REDIS is not None
        args = [REDIS, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("redis-server did not start")

    def pause(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is not None:
            self.resume()
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


def governed_config(tmp_path: Path, base_url: str, **extra: Any) -> Path:
    """The fake catalogue plus ``priced``; ``extra`` top-level sections (orchestration...)."""
    models = fake_models(
        base_url,
        **{
            PRICED: {
                "provider": "openai_compatible",
                "model": PRICED_UPSTREAM,
                "api_base": f"{base_url}/v1",
                "timeout_s": 5,
                "cost_per_1k_input": PRICE_IN * 1000,
                "cost_per_1k_output": PRICE_OUT * 1000,
                "tier": 1,
            }
        },
    )
    return write_config(tmp_path, {"models": models, **extra})


@asynccontextmanager
async def governed_client(config: Path, tmp_path: Path, **settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The app with the master key, its state in ``tmp_path`` (unless ``redis_url`` is given)."""
    settings.setdefault("master_key", MASTER)
    settings.setdefault("state_path", tmp_path / "state.db")
    async with app_client(config, **settings) as client:
        yield client


async def create_key(client: httpx.AsyncClient, **fields: Any) -> tuple[str, str]:
    """A new virtual key: (id, secret)."""
    fields.setdefault("name", "test-key")
    response = await client.post("/v1/keys", json=fields, headers=MASTER_HEADERS)
    assert response.status_code == 201, response.text
    body = response.json()
    return body["id"], body["key"]


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def chat_body(model: str = PRICED, text: str = "hello there", max_tokens: int | None = 10, **extra: Any) -> dict:
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": text}], **extra}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    return body


async def chat(client: httpx.AsyncClient, secret: str, model: str = PRICED, **kw: Any) -> httpx.Response:
    return await client.post("/v1/chat/completions", json=chat_body(model, **kw), headers=bearer(secret))


async def key_info(client: httpx.AsyncClient, key_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/keys/{key_id}", headers=MASTER_HEADERS)
    assert response.status_code == 200, response.text
    return dict(response.json())
