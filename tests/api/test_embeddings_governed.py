"""Embeddings under access control and observability: a virtual key's call is settled to its exact cost
(per model, split batches summed), a model outside the key's rights is 403 (and skipped as a fallback),
a spent budget 402; every upstream call is in the metrics like a chat call; an open circuit skips the model."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.fakes.scripts import Reply
from tests.fakes.server import FakeUpstream
from tests.governance.support import MASTER_HEADERS, bearer, create_key, governed_client, key_info
from tests.support import app_client, fake_models, write_config

PRICE_PER_1K = 0.5  # USD per 1k input tokens: round numbers
EMBED = "embed-priced"
EMBED_UP = "embed-upstream"
BACKUP = "embed-backup"
BACKUP_UP = "backup-upstream"


def models(base_url: str) -> dict[str, dict[str, object]]:
    common = {"provider": "openai_compatible", "api_base": f"{base_url}/v1", "kind": "embedding", "timeout_s": 5}
    return {
        **fake_models(base_url),
        EMBED: {**common, "model": EMBED_UP, "cost_per_1k_input": PRICE_PER_1K, "fallbacks": [BACKUP], "dimensions": 8},
        BACKUP: {**common, "model": BACKUP_UP, "cost_per_1k_input": PRICE_PER_1K * 2, "dimensions": 8},
    }


@pytest.fixture
def config(upstream: FakeUpstream, tmp_path: Path, provider_keys: dict[str, str]) -> Path:
    return write_config(tmp_path, {"models": models(upstream.base_url), "orchestration": {"max_retries": 0}})


@pytest.fixture
async def governed(config: Path, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with governed_client(config, tmp_path) as client:
        yield client


async def embed(client: httpx.AsyncClient, secret: str | None, **body: object) -> httpx.Response:
    headers = bearer(secret) if secret else {}
    return await client.post("/v1/embeddings", json={"model": EMBED, **body}, headers=headers)


async def test_key_is_charged_the_exact_cost(governed: httpx.AsyncClient, upstream: FakeUpstream) -> None:
    key_id, secret = await create_key(governed, budget_usd=100)
    texts = [f"w{i} x" for i in range(2050)]  # two words each: 4100 tokens over two upstream calls
    response = await embed(governed, secret, input=texts)
    assert response.status_code == 200, response.text
    assert response.json()["usage"]["prompt_tokens"] == 4100
    assert response.json()["switchyard"]["cost"] == pytest.approx(4100 * PRICE_PER_1K / 1000)
    info = await key_info(governed, key_id)
    assert info["spend_usd"] == pytest.approx(4100 * PRICE_PER_1K / 1000)
    assert info["reserved_usd"] == 0
    assert info["spend_by_model"] == {EMBED: pytest.approx(4100 * PRICE_PER_1K / 1000)}
    assert len([r for r in upstream.requests if r.path == "/v1/embeddings"]) == 2


async def test_fallback_is_charged_to_the_model_that_answered(
    governed: httpx.AsyncClient, upstream: FakeUpstream
) -> None:
    key_id, secret = await create_key(governed, budget_usd=100)
    upstream.script(EMBED_UP, Reply(status=500))
    response = await embed(governed, secret, input="one two three four")
    assert response.status_code == 200, response.text
    assert response.headers["x-switchyard-route"] == f"specific; model={BACKUP}"
    info = await key_info(governed, key_id)
    assert info["spend_by_model"] == {BACKUP: pytest.approx(4 * PRICE_PER_1K * 2 / 1000)}


async def test_model_rights_and_budget(governed: httpx.AsyncClient, upstream: FakeUpstream) -> None:
    _, restricted = await create_key(governed, models=[EMBED])
    upstream.script(EMBED_UP, Reply(status=500))
    response = await embed(governed, restricted, input="x")
    assert response.status_code == 502  # the fallback is outside the key's rights: not tried
    assert [r.model for r in upstream.requests] == [EMBED_UP]
    response = await governed.post("/v1/embeddings", json={"model": BACKUP, "input": "x"}, headers=bearer(restricted))
    assert response.status_code == 403 and response.json()["error"]["type"] == "permission_denied"

    _, poor = await create_key(governed, budget_usd=0.001)  # 2 tokens cost exactly the budget
    assert (await embed(governed, poor, input="a b")).status_code == 200
    spent = await embed(governed, poor, input="c")
    assert spent.status_code == 402 and spent.json()["error"]["type"] == "key_budget_exceeded"


async def test_embeddings_need_a_key(governed: httpx.AsyncClient) -> None:
    assert (await embed(governed, None, input="x")).status_code == 401
    master = await governed.post("/v1/embeddings", json={"model": EMBED, "input": "x"}, headers=MASTER_HEADERS)
    assert master.status_code == 200


# --- metrics and breakers (no access control) ---------------------------------------------------------------


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_metrics_record_every_upstream_call(config: Path, upstream: FakeUpstream) -> None:
    labels = frozenset({("model", EMBED), ("provider", "openai_compatible")})
    async with app_client(config) as client:
        before = samples((await client.get("/metrics")).text)
        texts = [f"t{i}" for i in range(2100)]
        assert (await client.post("/v1/embeddings", json={"model": EMBED, "input": texts})).status_code == 200
        after = samples((await client.get("/metrics")).text)

    def delta(name: str, extra: frozenset[tuple[str, str]] = frozenset()) -> float:
        key = (name, labels | extra)
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert delta("switchyard_upstream_duration_seconds_count") == 2  # one per upstream call
    assert delta("switchyard_tokens_total", frozenset({("direction", "input")})) == 2100
    assert delta("switchyard_cost_usd_total") == pytest.approx(2100 * PRICE_PER_1K / 1000)
    route = frozenset({("route", "specific"), ("status_class", "2xx"), ("outcome", "success")})
    assert after.get(("switchyard_requests_total", route), 0) - before.get(("switchyard_requests_total", route), 0) == 1


async def test_open_circuit_skips_the_model(upstream: FakeUpstream, tmp_path: Path) -> None:
    data = {
        "models": models(upstream.base_url),
        "orchestration": {"max_retries": 0, "breaker": {"failure_threshold": 2, "cooldown_s": 60}},
    }
    async with app_client(write_config(tmp_path, data)) as client:
        upstream.script(EMBED_UP, Reply(status=500), Reply(status=500))
        for _ in range(2):
            answer = await client.post("/v1/embeddings", json={"model": EMBED, "input": "x"})
            assert answer.headers["x-switchyard-route"] == f"specific; model={BACKUP}"
        upstream.reset()
        answer = await client.post("/v1/embeddings", json={"model": EMBED, "input": "x"})
        assert answer.status_code == 200  # the open circuit is not called at all
        assert answer.headers["x-switchyard-route"] == f"specific; model={BACKUP}"
        assert [r.model for r in upstream.requests] == [BACKUP_UP]


async def test_request_deadline_cuts_the_call(upstream: FakeUpstream, tmp_path: Path) -> None:
    data = {"models": models(upstream.base_url), "orchestration": {"max_retries": 0, "request_timeout_s": 0.5}}
    async with app_client(write_config(tmp_path, data)) as client:
        upstream.script(EMBED_UP, Reply(delay_s=5))
        answer = await client.post("/v1/embeddings", json={"model": EMBED, "input": "x"})
        assert answer.status_code == 504
        assert answer.json()["error"]["type"] == "deadline_exceeded"
        assert upstream.wait_for_disconnects(1) == 1  # the upstream call was cancelled, not left running
