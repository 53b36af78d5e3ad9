"""Fixtures and helpers of the Anthropic Messages front-end tests: the official ``anthropic`` SDK (over
ASGI) and a raw httpx client against the gateway, whose providers are all played by the fake upstream."""

from __future__ import annotations

from typing import Any

from tests.fakes.server import FakeUpstream

# one catalogue model per provider kind; the Anthropic one passes the client's body through
MESSAGE_MODELS = ["claude-3-5-sonnet-20241022", "gpt-4o-mini", "gemini-2.0-flash", "compat-llama"]
TRANSLATED = ["gpt-4o-mini", "gemini-2.0-flash", "compat-llama"]
ANTHROPIC = "claude-3-5-sonnet-20241022"
UPSTREAM_ID = {"compat-llama": "llama3"}
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
WEATHER: dict[str, Any] = {
    "name": "get_weather",
    "description": "The weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def upstream_id(name: str) -> str:
    return UPSTREAM_ID.get(name, name)


def sent_body(upstream: FakeUpstream) -> dict[str, Any]:
    body = upstream.requests[-1].body
    assert isinstance(body, dict)
    return body


# --- fixtures (imported by the test modules) -----------------------------------------------------------------

from collections.abc import AsyncIterator  # noqa: E402
from pathlib import Path  # noqa: E402

import anthropic  # noqa: E402
import httpx  # noqa: E402
import httpx2  # noqa: E402
import pytest  # noqa: E402

from app.main import create_app  # noqa: E402
from app.settings.settings import Settings  # noqa: E402
from tests.support import fake_models, write_config  # noqa: E402


@pytest.fixture
async def messages_app(upstream: FakeUpstream, tmp_path: Path, provider_keys: dict[str, str]) -> AsyncIterator[Any]:
    """The app (lifespan run) with fallbacks gpt-4o-mini -> claude; no retries (each reply is one call)."""
    models = fake_models(upstream.base_url, **{"gpt-4o-mini": {"fallbacks": [ANTHROPIC]}})
    path = write_config(tmp_path, {"models": models, "orchestration": {"max_retries": 0}})
    app = create_app(Settings(config=path))
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def claude(messages_app: Any) -> AsyncIterator[anthropic.AsyncAnthropic]:
    """The official SDK, as Claude Code configures it (``ANTHROPIC_BASE_URL``, a token)."""
    http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=messages_app))  # the SDK's own httpx
    async with anthropic.AsyncAnthropic(
        base_url="http://gateway", api_key="unused", http_client=http, max_retries=0
    ) as client:
        yield client


@pytest.fixture
async def raw(messages_app: Any) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"anthropic-version": "2023-06-01", "x-api-key": "unused"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=messages_app), base_url="http://gateway", headers=headers
    ) as client:
        yield client
