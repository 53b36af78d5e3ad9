"""The Responses API front-end tests' fixtures (star-imported by the test modules): the app, its stored
responses in an embedded store under the test's temporary folder, the official ``openai`` SDK over ASGI
(``sdk``) and a raw httpx client (``http``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from app.main import create_app
from app.settings.settings import Settings
from tests.api.responses_support import ANTHROPIC
from tests.fakes.server import FakeUpstream
from tests.support import fake_models, write_config

__all__ = ["http", "responses_app", "sdk"]


@pytest.fixture
async def responses_app(upstream: FakeUpstream, tmp_path: Path, provider_keys: dict[str, str]) -> AsyncIterator[Any]:
    """The app (lifespan run) with fallbacks gpt-4o-mini -> claude; no retries (each reply is one call)."""
    models = fake_models(upstream.base_url, **{"gpt-4o-mini": {"fallbacks": [ANTHROPIC]}})
    path = write_config(tmp_path, {"models": models, "orchestration": {"max_retries": 0}})
    app = create_app(Settings(config=path, state_path=tmp_path / "state.db"))
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def sdk(responses_app: Any) -> AsyncIterator[openai.AsyncOpenAI]:
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=responses_app))
    async with openai.AsyncOpenAI(base_url="http://gateway/v1", api_key="unused", http_client=http, max_retries=0) as c:
        yield c


@pytest.fixture
async def http(responses_app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=responses_app), base_url="http://gateway") as c:
        yield c
