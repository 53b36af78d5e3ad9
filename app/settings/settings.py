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
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024, description="Largest accepted request body.")
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
