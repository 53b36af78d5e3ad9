"""A real ``switchyard serve`` process on a free 127.0.0.1 port, for end-to-end tests with real clients."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class GatewayProcess:
    """A running gateway: its address and the file its output goes to."""

    base_url: str
    log_path: Path
    pid: int

    @property
    def openai_base_url(self) -> str:
        """The OpenAI clients' ``base_url``: ``{base_url}/v1``."""
        return f"{self.base_url}/v1"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_healthy(proc: subprocess.Popen[bytes], base_url: str, log_path: Path, timeout: float) -> bool:
    """True once ``/health`` answers 200; False if the process exited first (e.g. the port was taken)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            if httpx.get(f"{base_url}/health", timeout=1).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    proc.kill()
    proc.wait(10)
    raise RuntimeError(f"switchyard serve did not become healthy in {timeout}s:\n{log_path.read_text()[-4000:]}")


@contextmanager
def serve(config: Path, log_path: Path, env: Mapping[str, str], *, timeout: float = 60) -> Iterator[GatewayProcess]:
    """Run ``python -m app.cli serve`` with ``config`` and ``env`` (on top of this environment without any
    ``SWITCHYARD_*`` variable), output to ``log_path``; stopped (SIGTERM, then SIGKILL) on exit."""
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHYARD_")}
    for attempt in range(3):  # a free port can be taken between free_port() and the server's bind
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        log = log_path.open("wb")
        command = [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
        proc = subprocess.Popen(
            [*command, "--config", str(config)],
            cwd=REPO,
            env={**base_env, **env},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        if _wait_healthy(proc, base_url, log_path, timeout):
            break
        if attempt == 2:
            raise RuntimeError(f"switchyard serve exited with {proc.returncode}:\n{log_path.read_text()[-4000:]}")
    try:
        yield GatewayProcess(base_url, log_path, proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
