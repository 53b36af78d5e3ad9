"""Process-level settings from the environment (prefix ``SWITCHYARD_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
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
        description="Share circuit-breaker transitions between worker processes through this Redis "
        "(e.g. redis://127.0.0.1:6379/0); unset: each process keeps its own breakers.",
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
