"""The benchmarked targets: how each one starts, and the requests it is sent.

- ``upstream``: the fake upstream itself (the floor of the floor: generator + loopback + upstream).
- ``floor``: ``bench/floor_proxy.py`` under uvicorn, the least work a Python gateway can do.
- ``switchyard``: ``switchyard serve`` with a realistic config: three catalogue models served by the bench
  upstream as ``openai_compatible``, ``routing: auto`` (complexity routing, fallbacks, availability),
  metrics and JSON request logging on at INFO (to a file).
- ``switchyard-chat``: the same server sent ``/v1/chat/completions`` with ``"model": "gpt-4o-mini"`` (the
  same-protocol path, no routing), streamed and not.
- ``switchyard-baseline`` / ``switchyard-baseline-chat`` (only with ``--baseline-ref REF``): the same server,
  config and requests, importing the ``app`` package of a git worktree of REF (``bench/baseline.py``).
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
from bench.baseline import Baseline, check_app_source, switchyard_launch

ROOT = Path(__file__).resolve().parents[1]
LITELLM_VENV = ROOT / "bench" / ".venv-litellm"
PROMPT = "What is the capital of France? Answer in one word."

# (after, before) target pairs of the --baseline-ref A/B, in report order
BASELINE_PAIRS = (("switchyard", "switchyard-baseline"), ("switchyard-chat", "switchyard-baseline-chat"))

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


def build_targets(upstream_url: str, work: Path, cpus: str, baseline: Baseline | None = None) -> dict[str, Target]:
    """All targets, configured against ``upstream_url``; config files are written under ``work``. With a
    ``baseline`` checkout, also ``switchyard-baseline`` and ``switchyard-baseline-chat``."""
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

    def switchyard_starter(name: str, src: Path) -> Callable[[int, int, Path], procs.Server]:
        """``switchyard serve`` importing ``app`` from the checkout ``src`` (checked before every start)."""

        def start(port: int, workers: int, log_dir: Path) -> procs.Server:
            cmd, env, cwd = switchyard_launch(src, sy_config, port, workers)
            app_file = check_app_source(src, env, cwd)
            log_name = f"{name}-w{workers}"
            with open(log_dir / f"{log_name}.log", "a") as log:
                log.write(f"bench: app imported from {app_file}\n")
            return procs.start(log_name, cmd, cpus=cpu_set(workers), env=env, log_dir=log_dir, cwd=cwd)

        return start

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
    complete_streams = [
        Request("/v1/chat/completions", dumps({**STREAM_BODY, "model": "auto"})),
        stream,
        Request("/v1/complete", dumps({"prompt": PROMPT, "routing": "auto", "stream": True})),
    ]
    complete_note = "POST /v1/complete with routing auto"
    chat_note = 'POST /v1/chat/completions with "model": "gpt-4o-mini" (same protocol, no routing)'

    def switchyard_pair(name: str, label: str, src: Path, where: str = "") -> dict[str, Target]:
        """The routed ``/v1/complete`` target and the explicit-model chat target of one checkout."""
        chat_name = f"{name}-chat"
        return {
            name: Target(
                name, label, complete, complete_streams, switchyard_starter(name, src), note=complete_note + where
            ),
            chat_name: Target(
                chat_name, f"{label} chat", chat, [stream], switchyard_starter(chat_name, src), note=chat_note + where
            ),
        }

    targets = {
        "upstream": Target("upstream", "upstream direct", chat, [stream], None),
        "floor": Target("floor", "floor proxy", chat, [stream], floor),
        **switchyard_pair("switchyard", "Switchyard", ROOT),
    }
    if baseline is not None:
        where = f"; git worktree of {baseline.ref} ({baseline.commit})"
        targets |= switchyard_pair("switchyard-baseline", baseline.label, baseline.src, where)
    targets["litellm"] = Target("litellm", "LiteLLM", chat, [stream], litellm)
    return targets
