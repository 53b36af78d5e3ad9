"""A real ``switchyard serve`` started with a deployment file's environment, and a small compose-file
variable interpolation (``${VAR}``, ``${VAR:-default}``, ``${VAR:?message}``, ``$$``) as Docker Compose
does it, so that the tests can check what compose would run without a Docker engine."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_env(extra: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without any SWITCHYARD_* or provider key, plus ``extra``."""
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SWITCHYARD_") and not k.endswith("_API_KEY") and k != "PROMETHEUS_MULTIPROC_DIR"
    }
    return {**base, "PYTHONPATH": str(ROOT), **extra}


def run_serve(env: Mapping[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``switchyard serve`` (no arguments, as the image's CMD) that is expected to exit by itself."""
    command = [sys.executable, "-m", "app.cli", "serve"]
    return subprocess.run(command, env=dict(env), cwd=ROOT, capture_output=True, text=True, timeout=timeout)


@contextmanager
def serving(env: Mapping[str, str], port: int, timeout: float = 60) -> Iterator[subprocess.Popen[bytes]]:
    """``switchyard serve`` with ``env`` until ``GET /health`` on 127.0.0.1:``port`` answers; SIGTERM after."""
    command = [sys.executable, "-m", "app.cli", "serve"]
    server = subprocess.Popen(command, env=dict(env), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if server.poll() is not None:
                raise AssertionError(server.stderr.read().decode() if server.stderr else "server exited")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)
        yield server
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)
        if server.stderr:
            server.stderr.close()


class MissingVariable(Exception):
    """``${VAR:?message}`` with VAR unset or empty: compose refuses to start with ``message``."""


_VARIABLE = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:-|-|:\?|\?)(?P<arg>[^}]*))?\}")


def interpolate(value: str, env: Mapping[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group("name"), match.group("op"), match.group("arg")
        current = env.get(name)
        if op == ":-":
            return current if current else arg
        if op == "-":
            return current if current is not None else arg
        if op in (":?", "?") and (current is None or (op == ":?" and not current)):
            raise MissingVariable(f"{name}: {arg}")
        return current or ""

    return _VARIABLE.sub(replace, value)


def interpolate_tree(node: Any, env: Mapping[str, str]) -> Any:
    """Every string in a parsed compose file interpolated with ``env``."""
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [interpolate_tree(item, env) for item in node]
    if isinstance(node, dict):
        return {key: interpolate_tree(item, env) for key, item in node.items()}
    return node


def env_file(path: Path) -> dict[str, str]:
    """``NAME=value`` lines of a .env file (comments and blank lines skipped)."""
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            name, _, value = line.partition("=")
            out[name.strip()] = value.strip()
    return out
