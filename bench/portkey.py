"""Portkey's open-source gateway as a benchmark target: installed from npm into ``bench/.node-portkey``.

``install`` writes a ``package.json`` pinning ``@portkey-ai/gateway`` (``VERSION``) and runs ``npm install``
there (once; ``bench/.node-portkey`` is git-ignored). It also pins ``@hono/node-server`` below 1.14: with the
newer ones npm resolves, Portkey's streamed answers fail on Node (``TypeError: immutable`` in
``updateHeaders``, Portkey-AI/gateway issues #1389 and #1550), which is why the issue's first table has no
Portkey streaming figure.

The server is ``node build/start-server.js --port=<p> --headless`` (one Node process: it has no worker
option). It needs no keys of its own: each request carries an ``x-portkey-config`` header naming the provider,
a placeholder key and the fake upstream as ``custom_host``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NODE_DIR = ROOT / "bench" / ".node-portkey"
VERSION = "1.15.2"
HONO_NODE_SERVER = "1.13.8"  # the last line whose Response handling Portkey's streaming works with
CONFIG_HEADER = "x-portkey-config"
SERVER = NODE_DIR / "node_modules" / "@portkey-ai" / "gateway" / "build" / "start-server.js"


def package_json() -> dict[str, object]:
    return {
        "name": "switchyard-bench-portkey",
        "private": True,
        "description": "Portkey's gateway for bench/ (written by bench/portkey.py)",
        "dependencies": {"@portkey-ai/gateway": VERSION},
        "overrides": {"@hono/node-server": HONO_NODE_SERVER},
    }


def available() -> bool:
    return SERVER.exists() and shutil.which("node") is not None and _installed_version() == VERSION


def _installed_version() -> str | None:
    try:
        data = json.loads((SERVER.parent.parent / "package.json").read_text())
    except (OSError, ValueError):
        return None
    version = data.get("version")
    return version if isinstance(version, str) else None


def install(log: Path) -> bool:
    """``npm install`` of the pinned gateway into ``bench/.node-portkey`` (seconds; once)."""
    if available():
        return True
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        return False
    NODE_DIR.mkdir(parents=True, exist_ok=True)
    (NODE_DIR / "package.json").write_text(json.dumps(package_json(), indent=2) + "\n")
    with open(log, "ab") as out:
        result = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=NODE_DIR,
            stdout=out,
            stderr=out,
            timeout=900,
            check=False,
        )
    return result.returncode == 0 and available()


def command(port: int) -> tuple[list[str], Path]:
    """``(cmd, cwd)`` of one Portkey server on ``port``."""
    node = shutil.which("node") or "node"
    return [node, str(SERVER), f"--port={port}", "--headless"], NODE_DIR


def config_header(provider: str, upstream: str) -> str:
    """The ``x-portkey-config`` value sending a request to ``upstream`` as ``provider`` (``openai`` or
    ``anthropic``; Portkey appends ``/chat/completions`` or ``/messages`` to ``custom_host``)."""
    config = {"provider": provider, "api_key": "sk-bench-not-a-key", "custom_host": f"{upstream}/v1"}
    return json.dumps(config, separators=(",", ":"))
