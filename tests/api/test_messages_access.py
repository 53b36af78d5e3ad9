"""Access control as an Anthropic client meets it: the official SDK sends its key as ``x-api-key``, and every
refusal (401, 403, 429, 402) is Anthropic's error shape with its status, which the SDK raises as its own
typed exceptions; ``count_tokens`` and the model listing take the key too."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import httpx2
import pytest

from app.main import create_app
from app.settings.settings import Settings
from tests.fakes.scripts import Reply
from tests.fakes.server import FakeUpstream
from tests.governance.support import MASTER, PRICED, PRICED_UPSTREAM, create_key, governed_client, governed_config

USER: Any = [{"role": "user", "content": "hello there"}]


@pytest.fixture
def config(upstream: FakeUpstream, tmp_path: Path, provider_keys: dict[str, str]) -> Path:
    return governed_config(tmp_path, upstream.base_url)


@pytest.fixture
async def gateway(config: Path, tmp_path: Path) -> AsyncIterator[Any]:
    """The governed app (master key set, embedded store)."""
    app = create_app(Settings(config=config, master_key=MASTER, state_path=tmp_path / "state.db"))
    async with app.router.lifespan_context(app):
        yield app


def sdk(app: Any, key: str) -> anthropic.AsyncAnthropic:
    """The SDK as Claude Code configures it with ``ANTHROPIC_API_KEY``: the key goes as ``x-api-key``."""
    http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app))
    return anthropic.AsyncAnthropic(base_url="http://gateway", api_key=key, http_client=http, max_retries=0)


async def virtual_key(app: Any, **fields: Any) -> str:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as admin:
        _, secret = await create_key(admin, **fields)
    return secret


def error_type(exc: anthropic.APIStatusError) -> str:
    body = exc.body
    assert isinstance(body, dict) and body.get("type") == "error", body
    return str(body["error"]["type"])


async def test_refusals_are_anthropic_errors(gateway: Any, upstream: FakeUpstream) -> None:
    async with sdk(gateway, "sk-sy-not-a-key") as wrong:
        with pytest.raises(anthropic.AuthenticationError) as caught:
            await wrong.messages.create(model=PRICED, max_tokens=10, messages=USER)
        assert error_type(caught.value) == "authentication_error"
        with pytest.raises(anthropic.AuthenticationError):
            await wrong.messages.count_tokens(model=PRICED, messages=USER)
    narrow = await virtual_key(gateway, models=["gpt-4o"])
    async with sdk(gateway, narrow) as client:
        with pytest.raises(anthropic.PermissionDeniedError) as denied:
            await client.messages.create(model=PRICED, max_tokens=10, messages=USER)
        assert error_type(denied.value) == "permission_error"
        with pytest.raises(anthropic.PermissionDeniedError):
            async with client.messages.stream(model=PRICED, max_tokens=10, messages=USER) as stream:
                await stream.get_final_message()
        upstream.script("gpt-4o", Reply(text="hi"))
        allowed = await client.messages.create(model="gpt-4o", max_tokens=10, messages=USER)
        assert allowed.content[0].text == "hi"  # type: ignore[union-attr]
    assert [r.model for r in upstream.requests] == ["gpt-4o"]  # nothing refused reached a provider


async def test_rate_limit_is_429_and_count_tokens_is_not_metered(gateway: Any, upstream: FakeUpstream) -> None:
    secret = await virtual_key(gateway, rpm=1)
    async with sdk(gateway, secret) as client:
        upstream.script(PRICED_UPSTREAM, Reply(text="ok"))
        await client.messages.create(model=PRICED, max_tokens=10, messages=USER)
        for _ in range(3):  # counting calls no model: it takes the key but not the key's rate
            counted = await client.messages.count_tokens(model=PRICED, messages=USER)
            assert counted.input_tokens > 0
        with pytest.raises(anthropic.RateLimitError) as caught:
            await client.messages.create(model=PRICED, max_tokens=10, messages=USER)
    assert error_type(caught.value) == "rate_limit_error"
    assert caught.value.response.headers.get("retry-after")


async def test_spent_budget_is_402_billing_error(gateway: Any, upstream: FakeUpstream) -> None:
    secret = await virtual_key(gateway, budget_usd=0.004, budget_period="1d")  # one call costs 0.004
    async with sdk(gateway, secret) as client:
        upstream.script(PRICED_UPSTREAM, Reply(text="ok"))
        await client.messages.create(model=PRICED, max_tokens=1, messages=USER)
        with pytest.raises(anthropic.APIStatusError) as caught:
            await client.messages.create(model=PRICED, max_tokens=1, messages=USER)
    assert caught.value.status_code == 402 and error_type(caught.value) == "billing_error"


async def test_the_model_listing_takes_a_virtual_key(config: Path, tmp_path: Path) -> None:
    async with governed_client(config, tmp_path) as admin:
        _, secret = await create_key(admin)
        transport = admin._transport
        http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=transport.app))  # type: ignore[attr-defined]
        async with anthropic.AsyncAnthropic(
            base_url="http://gateway", api_key=secret, http_client=http, max_retries=0
        ) as client:
            names = [m.id async for m in client.models.list()]
            assert PRICED in names
