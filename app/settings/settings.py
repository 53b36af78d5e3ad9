"""Process-level settings from the environment (prefix ``SWITCHYARD_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "config" / "gateway.yaml"


class Settings(BaseSettings):
    """Where the catalogue lives, where to listen, and request limits."""

    model_config = SettingsConfigDict(env_prefix="SWITCHYARD_", extra="ignore")

    config: Path = Field(default=DEFAULT_CONFIG, description="Path of the gateway YAML file.")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1)
    # 32 MiB: a few photos as base64 (OpenAI takes 50 MB per request, Anthropic 32 MB, Gemini 20 MB inline)
    max_body_bytes: int = Field(default=32 * 1024 * 1024, ge=1024, description="Largest accepted request body.")
    log_level: str = "info"
    log_prompts: bool = Field(default=False, description="Log prompts and answers (off by default).")
    gc_freeze: bool = Field(
        default=False, description="gc.freeze() after startup (set by `switchyard serve`; see app/gc_tuning.py)."
    )
    otel_telemetry: bool = Field(
        default=False, description="FastAPI's native OpenTelemetry request telemetry (off: it costs CPU per request)."
    )
    redis_url: str | None = Field(
        default=None,
        description="Share circuit-breaker transitions, virtual keys, spend and rate counters between workers "
        "and replicas through this Redis (e.g. redis://127.0.0.1:6379/0); unset: breakers stay per process "
        "and keys live in the embedded store (state_path).",
    )
    responses_ttl_s: float = Field(
        default=30 * 24 * 3600.0,
        gt=0,
        allow_inf_nan=False,
        description="How long stored Responses API responses are kept (previous_response_id, GET /v1/responses).",
    )
    # -- access control (app/governance, app/state) ------------------------------------------------------
    master_key: SecretStr | None = Field(
        default=None, description="Set: every /v1/* request needs a key (this one, or a virtual key)."
    )
    master_key_file: Path | None = Field(default=None, description="A file holding the master key (first line).")
    auth: Literal["enabled", "disabled"] = Field(
        default="enabled",
        description="'disabled': serve without keys on a non-loopback host (no master key set).",
    )
    protect_metrics: bool = Field(default=False, description="/ready and /metrics need the master key too.")
    state_path: Path = Field(
        default=Path("switchyard-state.db"),
        description="The embedded store's SQLite file (relative: to the working directory), used without redis_url.",
    )
    redis_timeout_s: float = Field(
        default=0.5, gt=0, le=30, allow_inf_nan=False, description="Longest wait for one key-store call to Redis."
    )
    key_cache_ttl_s: float = Field(
        default=0.5, ge=0, le=1, allow_inf_nan=False, description="How long a key lookup is reused (revocation delay)."
    )
    store_grace_s: float = Field(
        default=300.0,
        ge=0,
        allow_inf_nan=False,
        description="Store unreachable: keys validated within this many seconds keep working, limited locally.",
    )
    default_max_output_tokens: int = Field(
        default=4096, ge=1, description="Output tokens reserved against a budget when a request sets no max_tokens."
    )
    auth_failures_per_minute: int = Field(
        default=20, ge=1, description="Failed authentications per client address and minute before a lockout."
    )
    auth_lockout_s: float = Field(
        default=60.0, gt=0, allow_inf_nan=False, description="How long an address is refused (429) after that."
    )
    metrics_max_key_names: int = Field(
        default=100, ge=1, description="Distinct key names labelled in metrics; further keys count as 'other'."
    )
    # -- HTTP limits and shutdown (app/api/http_limits.py, app/api/host_guard.py; `switchyard serve`) ------
    drain_s: float = Field(
        default=10.0,
        ge=0,
        le=3600,
        allow_inf_nan=False,
        description="On SIGTERM: how long requests and streams in flight may still run before they are ended.",
    )
    allowed_hosts: str | None = Field(
        default=None,
        description="Comma-separated Host names the gateway answers ('*' any; '*.example.com' subdomains). "
        "Unset: on a loopback address only loopback names (localhost, 127.0.0.1, ::1), elsewhere any.",
    )
    allowed_origins: str | None = Field(
        default=None,
        description="Comma-separated browser origins (https://app.example.com) that may POST to the gateway "
        "besides its own host ('*' any); other cross-site browser requests are 403.",
    )
    max_header_count: int = Field(default=100, ge=1, le=10_000, description="Most request header lines (431).")
    max_header_bytes: int = Field(
        default=64 * 1024, ge=1024, description="Largest request head: request line and headers (431)."
    )
    header_timeout_s: float = Field(
        default=10.0, gt=0, le=3600, allow_inf_nan=False, description="Time to receive a request head (408)."
    )
    keepalive_s: float = Field(
        default=5.0,
        gt=0,
        le=3600,
        allow_inf_nan=False,
        description="How long an idle connection (also a new one) may wait for its next request.",
    )
    max_connections: int = Field(default=1024, ge=1, description="Open connections per worker (503 beyond).")
    max_idle_connections: int = Field(
        default=256, ge=0, description="Idle keep-alive connections kept per worker (more are closed)."
    )
    body_timeout_s: float = Field(
        default=60.0, gt=0, le=3600, allow_inf_nan=False, description="Time to receive a request body (408)."
    )
