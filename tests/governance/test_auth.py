"""Authentication and key management through the app (embedded store): the master key, virtual keys by
``Authorization: Bearer`` and ``x-api-key``, open and protected paths, the management API, brute force."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.fakes.scripts import Reply
from tests.fakes.server import FakeUpstream
from tests.governance.support import (
    MASTER,
    MASTER_HEADERS,
    PRICED,
    PRICED_UPSTREAM,
    bearer,
    chat,
    chat_body,
    create_key,
    governed_client,
    governed_config,
)


@pytest.fixture
def config(upstream: FakeUpstream, tmp_path: Path, provider_keys: dict[str, str]) -> Path:
    return governed_config(tmp_path, upstream.base_url)


@pytest.fixture
async def client(config: Path, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with governed_client(config, tmp_path) as c:
        yield c


async def test_every_v1_request_needs_a_key(client: httpx.AsyncClient, upstream: FakeUpstream) -> None:
    for method, path, body in (
        ("POST", "/v1/chat/completions", chat_body()),
        ("POST", "/v1/complete", {"prompt": "hi"}),
        ("GET", "/v1/models", None),
        ("GET", "/v1/keys", None),
    ):
        response = await client.request(method, path, json=body)
        assert response.status_code == 401, path
        error = response.json()["error"]
        assert error["type"] == "authentication_error" and error["code"] == "missing_api_key"
        assert set(error) >= {"message", "type", "param", "code"}
    wrong = await client.get("/v1/models", headers={"Authorization": "Bearer sk-sy-not-a-real-key"})
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_api_key"
    assert (await client.get("/v1/models", headers={"Authorization": "Basic abc"})).status_code == 401
    assert upstream.requests == []  # nothing reached a provider


async def test_health_ready_and_metrics_stay_open(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health")).json()["status"] == "healthy"
    assert (await client.get("/ready")).status_code == 200
    assert (await client.get("/metrics")).status_code == 200


async def test_protected_metrics_take_the_master_key(config: Path, tmp_path: Path) -> None:
    async with governed_client(config, tmp_path, protect_metrics=True) as client:
        assert (await client.get("/health")).status_code == 200
        _, secret = await create_key(client)
        for path in ("/ready", "/metrics"):
            assert (await client.get(path)).status_code == 401
            denied = await client.get(path, headers=bearer(secret))
            assert denied.status_code == 403 and denied.json()["error"]["type"] == "permission_denied"
            assert (await client.get(path, headers=MASTER_HEADERS)).status_code == 200


async def test_master_and_virtual_keys_by_bearer_and_x_api_key(client: httpx.AsyncClient) -> None:
    _, secret = await create_key(client)
    for headers in (MASTER_HEADERS, {"x-api-key": MASTER}, bearer(secret), {"x-api-key": secret}):
        response = await client.post("/v1/chat/completions", json=chat_body(), headers=headers)
        assert response.status_code == 200, response.text
    # a wrong Authorization beside a right x-api-key (some clients send both): the right one counts
    both = {"Authorization": "Bearer something-else", "x-api-key": secret}
    assert (await client.post("/v1/chat/completions", json=chat_body(), headers=both)).status_code == 200


async def test_anthropic_clients_get_anthropic_shaped_errors(client: httpx.AsyncClient) -> None:
    body = {"model": PRICED, "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
    response = await client.post("/v1/messages", json=body, headers={"x-api-key": "sk-sy-wrong"})
    assert response.status_code == 401
    data = response.json()
    assert data["type"] == "error" and data["error"]["type"] == "authentication_error"
    _, secret = await create_key(client, models=["gpt-4o"])
    denied = await client.post("/v1/messages", json=body, headers={"x-api-key": secret})
    assert denied.status_code == 403 and denied.json()["error"]["type"] == "permission_error"
    ok = await client.post("/v1/messages", json={**body, "model": "gpt-4o"}, headers={"x-api-key": secret})
    assert ok.status_code == 200 and ok.json()["type"] == "message"


async def test_revoked_and_expired_keys_are_refused(client: httpx.AsyncClient) -> None:
    key_id, secret = await create_key(client)
    assert (await chat(client, secret)).status_code == 200
    revoked = await client.delete(f"/v1/keys/{key_id}", headers=MASTER_HEADERS)
    assert revoked.status_code == 200 and revoked.json()["revoked"] is True
    for attempt in (await chat(client, secret), await client.get("/v1/models", headers=bearer(secret))):
        assert attempt.status_code == 401 and attempt.json()["error"]["code"] == "revoked_api_key"
    soon = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    _, expiring = await create_key(client, expires_at=soon)
    assert (await chat(client, expiring)).status_code == 200
    await asyncio.sleep(1.2)
    expired = await chat(client, expiring)
    assert expired.status_code == 401 and expired.json()["error"]["code"] == "expired_api_key"


async def test_key_management(client: httpx.AsyncClient) -> None:
    created = await client.post(
        "/v1/keys",
        json={
            "name": "team-a",
            "models": [PRICED, "gpt-4o"],
            "rpm": 100,
            "tpm": 10000,
            "max_parallel": 4,
            "budget_usd": 5,
            "budget_period": "7d",
            "expires_at": "2099-01-01T00:00:00Z",
            "metadata": {"owner": "a@example.com"},
        },
        headers=MASTER_HEADERS,
    )
    assert created.status_code == 201 and created.headers["cache-control"] == "no-store"
    key = created.json()
    secret = key["key"]
    assert secret.startswith("sk-sy-") and len(secret) >= 40 and key["key_hint"].endswith(secret[-4:])
    assert (key["name"], key["rpm"], key["budget_period"], key["models"]) == ("team-a", 100, "7d", [PRICED, "gpt-4o"])
    assert key["expires_at"] == "2099-01-01T00:00:00.000Z"

    listed = (await client.get("/v1/keys", headers=MASTER_HEADERS)).json()
    assert [k["id"] for k in listed["data"]] == [key["id"]] and secret not in str(listed)
    shown = (await client.get(f"/v1/keys/{key['id']}", headers=MASTER_HEADERS)).json()
    assert secret not in str(shown)
    assert shown["spend_usd"] == 0 and shown["spend_period_start"] == key["created_at"]
    assert shown["usage"] == {"window_s": 60.0, "requests_in_window": 0, "tokens_in_window": 0, "parallel": 0}

    patched = await client.patch(
        f"/v1/keys/{key['id']}", json={"rpm": None, "budget_usd": 9.5, "name": "team-b"}, headers=MASTER_HEADERS
    )
    assert patched.status_code == 200
    assert (patched.json()["rpm"], patched.json()["budget_usd"], patched.json()["name"]) == (None, 9.5, "team-b")
    assert patched.json()["tpm"] == 10000  # untouched

    for method, path, body, status in (
        ("GET", "/v1/keys/key_nope", None, 404),
        ("PATCH", "/v1/keys/key_nope", {"rpm": 1}, 404),
        ("DELETE", "/v1/keys/key_nope", None, 404),
        ("POST", "/v1/keys", {"name": "x", "models": ["no-such-model"]}, 400),
        ("POST", "/v1/keys", {"name": "x", "budget_period": "2d"}, 400),
        ("POST", "/v1/keys", {"name": "x", "rpm": 0}, 400),
        ("POST", "/v1/keys", {"name": "x", "unknown": 1}, 400),
        ("POST", "/v1/keys", {"rpm": 1}, 400),
        ("POST", "/v1/keys", {"name": "x", "expires_at": "tomorrow"}, 400),
        ("PATCH", f"/v1/keys/{key['id']}", {"name": None}, 400),
    ):
        response = await client.request(method, path, json=body, headers=MASTER_HEADERS)
        assert response.status_code == status, (method, path, body, response.text)
        assert response.json()["error"]["type"] in ("key_not_found", "invalid_request_error")

    # managing keys takes the master key: none is 401, a virtual key 403
    assert (await client.get("/v1/keys")).status_code == 401
    denied = await client.post("/v1/keys", json={"name": "y"}, headers=bearer(secret))
    assert denied.status_code == 403 and denied.json()["error"]["type"] == "permission_denied"
    assert (await client.delete(f"/v1/keys/{key['id']}", headers=bearer(secret))).status_code == 403


async def test_brute_force_is_rate_limited_per_address(config: Path, tmp_path: Path) -> None:
    async with governed_client(config, tmp_path, auth_failures_per_minute=3, auth_lockout_s=60) as client:
        _, secret = await create_key(client)
        _, unused = await create_key(client, name="unused")
        assert (await client.get("/v1/models", headers=bearer(secret))).status_code == 200
        for _ in range(4):
            assert (await client.get("/v1/models", headers=bearer("sk-sy-guess"))).status_code == 401
        locked = await client.get("/v1/models", headers=bearer("sk-sy-guess"))
        assert locked.status_code == 429 and locked.json()["error"]["type"] == "rate_limit_exceeded"
        assert 50 <= int(locked.headers["retry-after"]) <= 60
        # the guessing address is refused any other guess, but keys already seen valid keep working
        assert (await client.get("/v1/models", headers=bearer("sk-sy-another-guess"))).status_code == 429
        assert (await client.get("/v1/models", headers=bearer(secret))).status_code == 200
        assert (await client.get("/v1/models", headers=MASTER_HEADERS)).status_code == 200
        assert (await client.get("/v1/models")).status_code == 429  # no key: nothing known good to look at
        assert (await client.get("/v1/models", headers=bearer(unused))).status_code == 429  # not seen here yet
        assert (await client.get("/health")).status_code == 200


async def test_missing_revoked_and_expired_keys_never_lock_an_address_out(config: Path, tmp_path: Path) -> None:
    async with governed_client(config, tmp_path, auth_failures_per_minute=2, auth_lockout_s=60) as client:
        key_id, secret = await create_key(client)
        _, other = await create_key(client, name="other")
        assert (await client.get("/v1/models", headers=bearer(other))).status_code == 200
        await client.delete(f"/v1/keys/{key_id}", headers=MASTER_HEADERS)
        for _ in range(5):
            assert (await client.get("/v1/models")).status_code == 401
            assert (await client.get("/v1/models", headers=bearer(secret))).status_code == 401  # revoked
        assert (await client.get("/v1/models", headers=bearer(other))).status_code == 200


async def test_no_master_key_means_no_access_control(upstream: FakeUpstream, config: Path, tmp_path: Path) -> None:
    from tests.support import app_client

    async with app_client(config, state_path=tmp_path / "state.db") as client:
        assert (await client.post("/v1/chat/completions", json=chat_body())).status_code == 200
        managed = await client.get("/v1/keys", headers={"Authorization": f"Bearer {MASTER}"})
        assert managed.status_code == 401 and managed.json()["error"]["code"] == "master_key_not_configured"
    # the embedded store may hold routing decisions (feedback is on by default), but no access control
    from app.state.sqlite import SqliteStore

    store = SqliteStore(tmp_path / "state.db")
    await store.start()
    try:
        assert await store.list_keys() == []
    finally:
        await store.aclose()


async def test_master_key_from_a_file(upstream: FakeUpstream, config: Path, tmp_path: Path) -> None:
    key_file = tmp_path / "master.key"
    key_file.write_text(MASTER + "\n")
    async with governed_client(config, tmp_path, master_key=None, master_key_file=key_file) as client:
        upstream.script(PRICED_UPSTREAM, Reply(text="ok"))
        assert (await client.post("/v1/chat/completions", json=chat_body())).status_code == 401
        assert (await client.post("/v1/chat/completions", json=chat_body(), headers=MASTER_HEADERS)).status_code == 200


async def test_a_protected_app_never_serves_open_before_its_lifespan(config: Path, tmp_path: Path) -> None:
    from app.main import create_app
    from app.settings.settings import Settings

    app = create_app(Settings(config=config, master_key=MASTER, state_path=tmp_path / "s.db"))
    transport = httpx.ASGITransport(app=app)  # no lifespan: the gateway (and its key store) is not built
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        response = await client.post("/v1/chat/completions", json=chat_body())
        assert response.status_code == 503 and response.json()["error"]["type"] == "state_unavailable"
