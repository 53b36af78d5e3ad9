"""A key's ``models``: a model the client names outside it is 403; one reached by routing, a configured
fallback, a default fallback or a judge is skipped; 403 only when nothing allowed is left."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.fakes.scripts import Reply
from tests.fakes.server import FakeUpstream
from tests.governance.support import (
    MASTER_HEADERS,
    PRICED,
    PRICED_UPSTREAM,
    bearer,
    chat,
    create_key,
    governed_client,
    governed_config,
)

MINI, GPT4O, CLAUDE, GEMINI = "gpt-4o-mini", "gpt-4o", "claude-3-5-sonnet-20241022", "gemini-2.0-flash"


ORCHESTRATION = {"max_retries": 0, "judge_model": GPT4O, "default_fallbacks": [CLAUDE, PRICED]}


@pytest.fixture
async def client(
    upstream: FakeUpstream, tmp_path: Path, provider_keys: dict[str, str]
) -> AsyncIterator[httpx.AsyncClient]:
    """gpt-4o-mini falls back to gpt-4o, then (default fallbacks) claude and priced; the judge is gpt-4o."""
    path = governed_config(tmp_path, upstream.base_url, orchestration=ORCHESTRATION)
    data = yaml.safe_load(path.read_text())
    data["models"][MINI]["fallbacks"] = [GPT4O]
    path.write_text(yaml.safe_dump(data))
    async with governed_client(path, tmp_path) as c:
        yield c


def called(upstream: FakeUpstream) -> set[str]:
    return {r.model for r in upstream.requests}


async def test_a_named_model_outside_the_key_is_403(client: httpx.AsyncClient, upstream: FakeUpstream) -> None:
    _, secret = await create_key(client, models=[MINI, PRICED])
    denied = await chat(client, secret, model=GPT4O)
    assert denied.status_code == 403
    assert denied.json()["error"]["type"] == "permission_denied" and denied.json()["error"]["param"] == "model"
    complete = await client.post("/v1/complete", json={"prompt": "hi", "model": GPT4O}, headers=bearer(secret))
    assert complete.status_code == 403
    listed = await client.post(
        "/v1/complete", json={"prompt": "hi", "routing": "parallel", "models": [MINI, GPT4O]}, headers=bearer(secret)
    )
    assert listed.status_code == 403
    judged = await client.post(
        "/v1/complete",
        json={"prompt": "hi", "routing": "parallel", "models": [MINI, PRICED], "strategy": "vote", "judge": GPT4O},
        headers=bearer(secret),
    )
    assert judged.status_code == 403
    assert upstream.requests == []


async def test_fallbacks_outside_the_key_are_skipped(client: httpx.AsyncClient, upstream: FakeUpstream) -> None:
    _, secret = await create_key(client, models=[MINI, PRICED])
    upstream.script(MINI, Reply(status=500))
    upstream.script(PRICED_UPSTREAM, Reply(text="from the allowed fallback"))
    response = await chat(client, secret, model=MINI)
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "from the allowed fallback"
    assert called(upstream) == {MINI, PRICED_UPSTREAM}  # gpt-4o (configured) and claude (default) skipped


async def test_routing_skips_models_outside_the_key(client: httpx.AsyncClient, upstream: FakeUpstream) -> None:
    _, secret = await create_key(client, models=[GPT4O, PRICED])
    response = await client.post("/v1/complete", json={"prompt": "hi"}, headers=bearer(secret))  # simple: gpt-4o-mini
    assert response.status_code == 200, response.text
    route = response.json()["route"]
    assert response.json()["model"] in (GPT4O, PRICED)
    assert {"model": MINI, "reason": "not allowed for this key"} in route["skipped"]
    assert MINI not in route["candidates"]
    upstream.reset()
    race = await client.post("/v1/complete", json={"prompt": "hi", "routing": "parallel"}, headers=bearer(secret))
    assert race.status_code == 200
    assert set(race.json()["route"]["candidates"]) == {GPT4O, PRICED}


async def test_judge_outside_the_key_is_replaced(client: httpx.AsyncClient, upstream: FakeUpstream) -> None:
    _, secret = await create_key(client, models=[MINI, PRICED])
    body = {"prompt": "hi", "routing": "parallel", "models": [MINI, PRICED], "strategy": "vote"}
    response = await client.post("/v1/complete", json=body, headers=bearer(secret))
    assert response.status_code == 200, response.text
    assert response.json()["judge"]["model"] == MINI  # the configured judge (gpt-4o) is not the key's
    assert GPT4O not in called(upstream)


async def test_403_only_when_nothing_allowed_is_left(
    client: httpx.AsyncClient, upstream: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, only_mini = await create_key(client, models=[MINI])
    upstream.script(MINI, Reply(text="mini"))
    ok = await client.post("/v1/complete", json={"prompt": "write a long proof"}, headers=bearer(only_mini))
    assert ok.status_code == 200 and ok.json()["model"] == MINI  # routing lands on the one allowed model
    upstream.script(MINI, Reply(status=503))
    failed = await chat(client, only_mini, model=MINI)
    assert failed.status_code == 503  # the allowed model's own failure, not a permission error


async def test_unusable_allowed_models_are_403(
    upstream: FakeUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.support import TEST_KEYS

    for name, value in TEST_KEYS.items():
        if name != "GEMINI_API_KEY":
            monkeypatch.setenv(name, value)
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    path = governed_config(tmp_path, upstream.base_url)
    async with governed_client(path, tmp_path) as client:
        _, secret = await create_key(client, models=[GEMINI])  # gemini has no provider key here
        response = await client.post("/v1/complete", json={"prompt": "hi"}, headers=bearer(secret))
        assert response.status_code == 403, response.text
        assert response.json()["error"]["type"] == "permission_denied"
        assert upstream.requests == []


async def test_a_key_lists_only_its_models(client: httpx.AsyncClient) -> None:
    _, secret = await create_key(client, models=[MINI, PRICED])
    listed = await client.get("/v1/models", headers=bearer(secret))
    assert listed.status_code == 200 and {m["id"] for m in listed.json()["data"]} == {MINI, PRICED}
    anthropic = await client.get("/v1/models", headers={"x-api-key": secret, "anthropic-version": "2023-06-01"})
    assert {m["id"] for m in anthropic.json()["data"]} == {MINI, PRICED}
    assert (await client.get(f"/v1/models/{MINI}", headers=bearer(secret))).status_code == 200
    hidden = await client.get(f"/v1/models/{GPT4O}", headers=bearer(secret))
    assert hidden.status_code == 403 and hidden.json()["error"]["type"] == "permission_denied"
    master = await client.get("/v1/models", headers=MASTER_HEADERS)
    assert {MINI, PRICED, GPT4O, CLAUDE} <= {m["id"] for m in master.json()["data"]}
