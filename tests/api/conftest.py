"""The OpenAI chat front-end's app fixtures: every provider behind the gateway is played by the fake
upstream; callers are the official ``openai`` client (AsyncOpenAI over ASGI) and a raw httpx client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from app.main import create_app
from app.settings.settings import Settings
from tests.fakes.server import FakeUpstream
from tests.support import fake_models, write_config

CHAT_MODELS = ["gpt-4o-mini", "claude-3-5-sonnet-20241022", "gemini-2.0-flash", "compat-llama"]
UPSTREAM_ID = {"compat-llama": "llama3"}
PASSTHROUGH = {"gpt-4o-mini", "gpt-4o", "compat-llama"}  # OpenAI-protocol upstreams: the body goes as sent


def upstream_id(name: str) -> str:
    return UPSTREAM_ID.get(name, name)


@pytest.fixture
async def chat_app(upstream: FakeUpstream, tmp_path: Path, provider_keys: dict[str, str]) -> AsyncIterator[Any]:
    """The app (lifespan run) with fallbacks gpt-4o-mini -> claude; no retries (each reply is one call)."""
    models = fake_models(upstream.base_url, **{"gpt-4o-mini": {"fallbacks": ["claude-3-5-sonnet-20241022"]}})
    path = write_config(tmp_path, {"models": models, "orchestration": {"max_retries": 0}})
    app = create_app(Settings(config=path))
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def chat_client(chat_app: Any) -> AsyncIterator[openai.AsyncOpenAI]:
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=chat_app))
    async with openai.AsyncOpenAI(base_url="http://gateway/v1", api_key="unused", http_client=http, max_retries=0) as c:
        yield c


@pytest.fixture
async def chat_raw(chat_app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=chat_app), base_url="http://gateway") as c:
        yield c


from tests.api.messages_support import claude, messages_app, raw  # noqa: E402, F401  (the Messages front-end's fixtures)
