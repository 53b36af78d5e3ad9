"""Shared helpers for tests: a catalogue pointing every provider at the fake upstream, and a running app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml

from app.main import create_app
from app.settings.settings import Settings

TEST_KEYS = {
    "OPENAI_API_KEY": "sk-test-openai-0123456789",
    "ANTHROPIC_API_KEY": "sk-ant-test-0123456789",
    "GEMINI_API_KEY": "AIzaTest0123456789abcdefghij",
}


def fake_models(base_url: str, **overrides: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """One model per provider, every one pointed at the fake upstream at ``base_url``."""
    models: dict[str, dict[str, Any]] = {
        "gpt-4o-mini": {"provider": "openai", "api_base": f"{base_url}/v1", "timeout_s": 5, "tier": 2},
        "gpt-4o": {"provider": "openai", "api_base": f"{base_url}/v1", "timeout_s": 5, "tier": 4},
        "claude-3-5-sonnet-20241022": {"provider": "anthropic", "api_base": base_url, "timeout_s": 5, "tier": 4},
        "gemini-2.0-flash": {"provider": "google", "api_base": base_url, "timeout_s": 5, "tier": 2},
        "compat-llama": {
            "provider": "openai_compatible",
            "model": "llama3",
            "api_base": f"{base_url}/v1",
            "timeout_s": 5,
            "cost_per_1k_input": 0.0001,
            "cost_per_1k_output": 0.0002,
            "tier": 1,
        },
    }
    for name, fields in overrides.items():
        models[name] = {**models.get(name, {}), **fields}
    return models


def write_config(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@asynccontextmanager
async def app_client(config_path: Path, **settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway app (lifespan run) behind an ``httpx.AsyncClient`` over ASGI."""
    app = create_app(Settings(config=config_path, **settings))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway", timeout=30) as client:
            yield client
