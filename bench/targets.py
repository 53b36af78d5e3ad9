"""The benchmarked targets: how each one starts, and the requests it is sent.

- ``upstream``: the fake upstream itself (the floor of the floor: generator + loopback + upstream).
- ``floor``: ``bench/floor_proxy.py`` under uvicorn, the least work a Python gateway can do.
- ``switchyard``: ``switchyard serve`` with a realistic config: three catalogue models served by the bench
  upstream as ``openai_compatible``, ``routing: auto`` (complexity routing, fallbacks, availability),
  metrics and JSON request logging on at INFO (to a file).
- ``switchyard-chat``: the same server sent ``/v1/chat/completions`` with ``"model": "gpt-4o-mini"`` (the
  same-protocol path, no routing), streamed and not.
- ``switchyard-keys``: the same chat requests with access control on: a master key, and every request made
  with a virtual key whose rpm, tpm and daily budget are checked and counted in the embedded store (limits
  far above the bench's traffic: none is ever reached, all are paid for).
- ``switchyard-baseline`` / ``switchyard-baseline-chat`` (only with ``--baseline-ref REF``): the same server,
  config and requests, importing the ``app`` package of a git worktree of REF (``bench/baseline.py``).
- ``switchyard-translated``: the same server sent ``/v1/chat/completions`` for ``claude-bench``, an
  Anthropic-protocol model on the same upstream: the request is decoded, translated to the Messages API and
  the answer (or stream) translated back.
- ``litellm``: the LiteLLM proxy from its own venv (``bench/.venv-litellm``), one model pointed at the same
  upstream; no database, no callbacks, no master key.
- ``portkey`` / ``portkey-translated``: Portkey's open-source gateway (``@portkey-ai/gateway`` from npm, in
  ``bench/.node-portkey``; ``bench/portkey.py``), no keys, every request naming the fake upstream in its
  ``x-portkey-config`` header: as an OpenAI provider, or as an Anthropic one (translated), by ``custom_host``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from bench import portkey, procs
from bench.baseline import Baseline, check_app_source, switchyard_env, switchyard_launch

ROOT = Path(__file__).resolve().parents[1]
LITELLM_VENV = ROOT / "bench" / ".venv-litellm"
PROMPT = "What is the capital of France? Answer in one word."

# (after, before) target pairs of the --baseline-ref A/B, in report order
BASELINE_PAIRS = (("switchyard", "switchyard-baseline"), ("switchyard-chat", "switchyard-baseline-chat"))

TRANSLATED_MODEL = "claude-bench"  # an Anthropic-protocol model on the bench upstream: the translated path
TRANSLATED_KEY_ENV = "BENCH_ANTHROPIC_KEY"
CHAT_BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 64}
STREAM_BODY = {**CHAT_BODY, "stream": True, "stream_options": {"include_usage": True}}


BENCH_MASTER_KEY = "sk-bench-master-key-not-a-secret-0123456789"
VIRTUAL_KEY = {"name": "bench", "rpm": 100_000_000, "tpm": 1_000_000_000_000, "budget_usd": 1e6, "budget_period": "1d"}
"""The bench's virtual key (``switchyard-keys``, ``hotpath --governed``): every limit checked and counted on
every request, none ever reached."""


def create_virtual_key(src: Path, state: Path) -> str:
    """A new ``VIRTUAL_KEY`` in the embedded store at ``state`` (``switchyard keys create``, the checkout
    ``src``'s); its secret."""
    flags = [item for name, value in VIRTUAL_KEY.items() for item in (f"--{name.replace('_', '-')}", str(value))]
    cmd = [sys.executable, "-m", "app.cli", "keys", "create", *flags]
    env = {**os.environ, **switchyard_env(src), "SWITCHYARD_STATE_PATH": str(state)}
    done = subprocess.run(cmd, env=env, cwd=src, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"switchyard keys create failed: {done.stderr[-2000:]}")
    secret: str = json.loads(done.stdout)["key"]
    return secret


def dumps(obj: object) -> bytes:
    return json.dumps(obj).encode()


@dataclass
class Request:
    path: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Launch:
    """How one server of a target is started: port, worker processes, log directory, extra environment and
    the CPUs it is pinned to (None: not pinned)."""

    port: int
    workers: int
    log_dir: Path
    cpus: str | None
    env: dict[str, str] = field(default_factory=dict)


Starter = Callable[[Launch], procs.Server]


@dataclass
class Target:
    """How to start one target and what to send it."""

    name: str
    label: str
    json_request: Request
    stream_candidates: list[Request] = field(default_factory=list)
    starter: Starter | None = None
    stream_request: Request | None = None
    note: str = ""
    workers_option: bool = True  # whether it can run 2 worker processes (Portkey's Node server cannot)


def switchyard_config(upstream: str) -> str:
    """A realistic catalogue: three OpenAI-protocol models on the bench upstream, routing auto, fallbacks,
    prices; and ``claude-bench``, an Anthropic-protocol model on the same upstream (not in the routing
    preference: reached by name, for the translated path)."""
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
  {TRANSLATED_MODEL}:
    provider: anthropic
    model: claude-3-5-haiku-20241022
    api_base: {upstream}
    api_key_env: {TRANSLATED_KEY_ENV}
    timeout_s: 30
    tier: 2
    cost_per_1k_input: 0.0008
    cost_per_1k_output: 0.004
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


def build_targets(upstream_url: str, work: Path, baseline: Baseline | None = None) -> dict[str, Target]:
    """All targets, configured against ``upstream_url``; config files are written under ``work``. With a
    ``baseline`` checkout, also ``switchyard-baseline`` and ``switchyard-baseline-chat``."""
    chat = Request("/v1/chat/completions", dumps(CHAT_BODY))
    stream = Request("/v1/chat/completions", dumps(STREAM_BODY))

    def floor(launch: Launch) -> procs.Server:
        cmd = [sys.executable, "-m", "uvicorn", "bench.floor_proxy:app", "--host", "127.0.0.1"]
        cmd += ["--port", str(launch.port), "--no-access-log", "--log-level", "warning"]
        cmd += ["--loop", "uvloop", "--http", "httptools"]
        if launch.workers > 1:
            cmd += ["--workers", str(launch.workers)]
        env = {"FLOOR_UPSTREAM": upstream_url, "PYTHONPATH": str(ROOT), **launch.env}
        return procs.start(f"floor-w{launch.workers}", cmd, cpus=launch.cpus, env=env, log_dir=launch.log_dir)

    sy_config = work / "switchyard-bench.yaml"
    sy_config.write_text(switchyard_config(upstream_url))

    def switchyard_starter(name: str, src: Path) -> Starter:
        """``switchyard serve`` importing ``app`` from the checkout ``src`` (checked before every start)."""

        def start(launch: Launch) -> procs.Server:
            cmd, env, cwd = switchyard_launch(src, sy_config, launch.port, launch.workers)
            env = {**env, TRANSLATED_KEY_ENV: "bench-not-a-key", **launch.env}
            # the embedded state store (routing decisions for feedback) in the run's directory, not the checkout
            env.setdefault("SWITCHYARD_STATE_PATH", str(launch.log_dir / f"{name}-w{launch.workers}-state.db"))
            app_file = check_app_source(src, env, cwd)
            log_name = f"{name}-w{launch.workers}"
            with open(launch.log_dir / f"{log_name}.log", "a") as log:
                log.write(f"bench: app imported from {app_file}\n")
            return procs.start(log_name, cmd, cpus=launch.cpus, env=env, log_dir=launch.log_dir, cwd=cwd)

        return start

    ll_config = work / "litellm-bench.yaml"
    ll_config.write_text(litellm_config(upstream_url))

    def litellm(launch: Launch) -> procs.Server:
        cmd = [str(LITELLM_VENV / "bin" / "litellm"), "--config", str(ll_config), "--host", "127.0.0.1"]
        cmd += ["--port", str(launch.port), "--num_workers", str(launch.workers)]
        env = {
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no network fetch of the price map at start
            "LITELLM_LOG": "ERROR",
            "LITELLM_TELEMETRY": "False",
            "DISABLE_ADMIN_UI": "True",
            **launch.env,
        }
        for key in ("DATABASE_URL", "REDIS_HOST", "REDIS_URL", "LITELLM_MASTER_KEY"):
            os.environ.pop(key, None)
        return procs.start(f"litellm-w{launch.workers}", cmd, cpus=launch.cpus, env=env, log_dir=launch.log_dir)

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
    keys_state = work / "switchyard-keys-state.db"  # every start of the target: the same store, the same key
    keyed: dict[str, str] = {}  # the requests' headers: the key's, once it is made (at the first start)
    keys_starter = switchyard_starter("switchyard-keys", ROOT)

    def keys_start(launch: Launch) -> procs.Server:
        if not keyed:
            keyed["authorization"] = f"Bearer {create_virtual_key(ROOT, keys_state)}"
        env = {"SWITCHYARD_MASTER_KEY": BENCH_MASTER_KEY, "SWITCHYARD_STATE_PATH": str(keys_state), **launch.env}
        return keys_starter(replace(launch, env=env))

    targets["switchyard-keys"] = Target(
        "switchyard-keys",
        "Switchyard chat, virtual key",
        Request("/v1/chat/completions", dumps(CHAT_BODY), keyed),
        [Request("/v1/chat/completions", dumps(STREAM_BODY), keyed)],
        keys_start,
        note=chat_note + "; access control on: a virtual key with rpm, tpm and a daily budget (never reached)",
    )
    translated_body = {**CHAT_BODY, "model": TRANSLATED_MODEL}
    translated_stream = Request("/v1/chat/completions", dumps({**STREAM_BODY, "model": TRANSLATED_MODEL}))
    targets["switchyard-translated"] = Target(
        "switchyard-translated",
        "Switchyard translated",
        Request("/v1/chat/completions", dumps(translated_body)),
        [translated_stream],
        switchyard_starter("switchyard-translated", ROOT),
        note=f'POST /v1/chat/completions with "model": "{TRANSLATED_MODEL}" (an Anthropic-protocol model: '
        "translated both ways)",
    )
    targets["litellm"] = Target("litellm", "LiteLLM", chat, [stream], litellm)

    def portkey_start(launch: Launch) -> procs.Server:
        cmd, cwd = portkey.command(launch.port)
        return procs.start("portkey", cmd, cpus=launch.cpus, env=launch.env, log_dir=launch.log_dir, cwd=cwd)

    for name, label, provider, model in (
        ("portkey", "Portkey", "openai", CHAT_BODY["model"]),
        ("portkey-translated", "Portkey translated", "anthropic", "claude-3-5-haiku-20241022"),
    ):
        headers = {portkey.CONFIG_HEADER: portkey.config_header(provider, upstream_url)}
        body = {**CHAT_BODY, "model": model}
        targets[name] = Target(
            name,
            label,
            Request("/v1/chat/completions", dumps(body), headers),
            [Request("/v1/chat/completions", dumps({**STREAM_BODY, "model": model}), headers)],
            portkey_start,
            note=f"Portkey {portkey.VERSION}, x-portkey-config: {provider} provider, custom_host = the bench upstream",
            workers_option=False,
        )
    return targets
