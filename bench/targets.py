"""The benchmarked targets: how each one starts, and the requests it is sent.

- ``upstream``: the fake upstream itself (the floor of the floor: generator + loopback + upstream).
- ``floor``: ``bench/floor_proxy.py`` under uvicorn, the least work a Python gateway can do.
- ``switchyard``: ``switchyard serve`` with a realistic config: three catalogue models served by the bench
  upstream as ``openai_compatible``, ``routing: auto`` (complexity routing, fallbacks, availability),
  metrics and JSON request logging on at INFO (to a file).
- ``litellm``: the LiteLLM proxy from its own venv (``bench/.venv-litellm``), one model pointed at the same
  upstream; no database, no callbacks, no master key.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench import procs

ROOT = Path(__file__).resolve().parents[1]
LITELLM_VENV = ROOT / "bench" / ".venv-litellm"
PROMPT = "What is the capital of France? Answer in one word."

CHAT_BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 64}
STREAM_BODY = {**CHAT_BODY, "stream": True, "stream_options": {"include_usage": True}}


def dumps(obj: object) -> bytes:
    return json.dumps(obj).encode()


@dataclass
class Request:
    path: str
    body: bytes


@dataclass
class Target:
    """How to start one target and what to send it."""

    name: str
    label: str
    json_request: Request
    stream_candidates: list[Request] = field(default_factory=list)
    starter: Callable[[int, int, Path], procs.Server] | None = None  # (port, workers, log_dir)
    stream_request: Request | None = None
    note: str = ""


def switchyard_config(upstream: str) -> str:
    """A realistic catalogue: three models on the bench upstream, routing auto, fallbacks, prices."""
    api_base = f"{upstream}/v1"
    return f"""\
models:
  gpt-4o-mini:
    provider: openai_compatible
    api_base: {api_base}
    timeout_s: 30
    tier: 2
    cost_per_1k_input: 0.00015
    cost_per_1k_output: 0.0006
    fallbacks: [gpt-4o]
  gpt-4o:
    provider: openai_compatible
    api_base: {api_base}
    timeout_s: 60
    tier: 4
    cost_per_1k_input: 0.0025
    cost_per_1k_output: 0.01
    fallbacks: [claude-3-5-sonnet-20241022]
  claude-3-5-sonnet-20241022:
    provider: openai_compatible
    api_base: {api_base}
    timeout_s: 60
    tier: 4
    cost_per_1k_input: 0.003
    cost_per_1k_output: 0.015
    fallbacks: [gpt-4o]
routing:
  preference: [gpt-4o-mini, gpt-4o, claude-3-5-sonnet-20241022]
"""


def litellm_config(upstream: str) -> str:
    return f"""\
model_list:
  - model_name: gpt-4o-mini
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: {upstream}/v1
      api_key: sk-bench-not-a-key
litellm_settings:
  telemetry: false
  drop_params: true
general_settings:
  # no auth, like the other targets (recent LiteLLM refuses to start without a master key otherwise)
  dangerously_permit_weak_or_unset_master_key: true
"""


def litellm_available() -> bool:
    return (LITELLM_VENV / "bin" / "litellm").exists()


def install_litellm(log: Path) -> bool:
    """Create ``bench/.venv-litellm`` and ``pip install 'litellm[proxy]'`` into it (minutes, once)."""
    if litellm_available():
        return True
    with open(log, "ab") as out:
        subprocess.run([sys.executable, "-m", "venv", str(LITELLM_VENV)], check=True, stdout=out, stderr=out)
        result = subprocess.run(
            [str(LITELLM_VENV / "bin" / "pip"), "install", "-q", "litellm[proxy]"], stdout=out, stderr=out
        )
    return result.returncode == 0 and litellm_available()


def build_targets(upstream_url: str, work: Path, cpus: str) -> dict[str, Target]:
    """All targets, configured against ``upstream_url``; config files are written under ``work``."""
    chat = Request("/v1/chat/completions", dumps(CHAT_BODY))
    stream = Request("/v1/chat/completions", dumps(STREAM_BODY))

    def cpu_set(workers: int) -> str:
        return cpus if workers == 1 else "0,1"

    def floor(port: int, workers: int, log_dir: Path) -> procs.Server:
        cmd = [sys.executable, "-m", "uvicorn", "bench.floor_proxy:app", "--host", "127.0.0.1"]
        cmd += ["--port", str(port), "--no-access-log", "--log-level", "warning"]
        cmd += ["--loop", "uvloop", "--http", "httptools"]
        if workers > 1:
            cmd += ["--workers", str(workers)]
        env = {"FLOOR_UPSTREAM": upstream_url, "PYTHONPATH": str(ROOT)}
        return procs.start(f"floor-w{workers}", cmd, cpus=cpu_set(workers), env=env, log_dir=log_dir)

    sy_config = work / "switchyard-bench.yaml"
    sy_config.write_text(switchyard_config(upstream_url))

    def switchyard(port: int, workers: int, log_dir: Path) -> procs.Server:
        cmd = [sys.executable, "-m", "app.cli", "serve", "--config", str(sy_config)]
        cmd += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
        env = {"SWITCHYARD_LOG_LEVEL": "info", "PYTHONPATH": str(ROOT)}
        return procs.start(f"switchyard-w{workers}", cmd, cpus=cpu_set(workers), env=env, log_dir=log_dir)

    ll_config = work / "litellm-bench.yaml"
    ll_config.write_text(litellm_config(upstream_url))

    def litellm(port: int, workers: int, log_dir: Path) -> procs.Server:
        cmd = [str(LITELLM_VENV / "bin" / "litellm"), "--config", str(ll_config), "--host", "127.0.0.1"]
        cmd += ["--port", str(port), "--num_workers", str(workers)]
        env = {
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no network fetch of the price map at start
            "LITELLM_LOG": "ERROR",
            "LITELLM_TELEMETRY": "False",
            "DISABLE_ADMIN_UI": "True",
        }
        for key in ("DATABASE_URL", "REDIS_HOST", "REDIS_URL", "LITELLM_MASTER_KEY"):
            os.environ.pop(key, None)
        return procs.start(f"litellm-w{workers}", cmd, cpus=cpu_set(workers), env=env, log_dir=log_dir)

    complete = Request("/v1/complete", dumps({"prompt": PROMPT, "routing": "auto", "max_tokens": 64}))
    return {
        "upstream": Target("upstream", "upstream direct", chat, [stream], None),
        "floor": Target("floor", "floor proxy", chat, [stream], floor),
        "switchyard": Target(
            "switchyard",
            "Switchyard",
            complete,
            [
                Request("/v1/chat/completions", dumps({**STREAM_BODY, "model": "auto"})),
                stream,
                Request("/v1/complete", dumps({"prompt": PROMPT, "routing": "auto", "stream": True})),
            ],
            switchyard,
            note="POST /v1/complete with routing auto",
        ),
        "litellm": Target("litellm", "LiteLLM", chat, [stream], litellm),
    }
