"""``/v1/complete``, ``/v1/models``, ``/health`` and ``/ready`` through the ASGI app, against the fake upstream."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.fakes.scripts import Reply
from tests.fakes.server import FakeUpstream
from tests.support import TEST_KEYS, app_client, fake_models, write_config


@pytest.fixture
async def client(
    upstream: FakeUpstream, tmp_path: Path, provider_keys: dict[str, str]
) -> AsyncIterator[httpx.AsyncClient]:
    # No retries here: these tests pin down how one upstream answer maps to ours (retries are tested with
    # orchestration).
    config = {"models": fake_models(upstream.base_url), "orchestration": {"max_retries": 0}}
    path = write_config(tmp_path, config)
    async with app_client(path, max_body_bytes=64 * 1024) as c:
        yield c


BAD_INPUTS = [
    ({"prompt": ""}, 400, "prompt"),
    ({"prompt": "   "}, 400, "prompt"),
    ({}, 400, "exactly one of 'prompt' or 'messages'"),
    ({"prompt": "x", "messages": [{"role": "user", "content": "y"}]}, 400, "exactly one"),
    ({"prompt": "x", "routing": "fastest"}, 400, "routing"),
    ({"prompt": "x", "routing": "specific"}, 400, "requires 'model'"),
    ({"prompt": 42}, 400, "prompt"),
    ({"prompt": "x", "max_tokens": "many"}, 400, "max_tokens"),
    ({"prompt": "x", "max_tokens": 0}, 400, "max_tokens"),
    ({"prompt": "x", "temperature": 7}, 400, "temperature"),
    ({"messages": []}, 400, "messages"),
    ({"messages": [{"role": "wizard", "content": "y"}]}, 400, "messages.0.role"),
    ({"messages": [{"role": "system", "content": "only a system turn"}]}, 400, "non-empty user message"),
    ({"prompt": "x", "surprise": True}, 400, "surprise"),
    ([1, 2, 3], 400, "body"),
]


@pytest.mark.parametrize(("body", "status", "needle"), BAD_INPUTS)
async def test_bad_input_is_a_clear_4xx(client: httpx.AsyncClient, body: object, status: int, needle: str) -> None:
    response = await client.post("/v1/complete", json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert needle in error["message"] or any(needle in e["field"] for e in error.get("errors", []))
    assert {"param", "code"} <= set(error)


async def test_malformed_json_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/complete", content=b'{"prompt": ', headers={"content-type": "application/json"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["message"].startswith("malformed JSON body")
    assert (error["type"], error["code"], error["param"]) == ("invalid_request_error", "invalid_json", None)


async def test_body_over_the_limit_is_413(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/complete", json={"prompt": "x" * 100_000})
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "payload_too_large"


async def test_chunked_body_over_the_limit_is_413(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"prompt": "'
        for _ in range(20):
            yield b"x" * 8192
        yield b'"}'

    response = await client.post("/v1/complete", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413


async def test_unknown_model_is_404(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/complete", json={"prompt": "x", "routing": "specific", "model": "gpt-9"})
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "model_not_found"


@pytest.mark.parametrize(
    ("model", "provider"),
    [
        ("gpt-4o-mini", "openai"),
        ("claude-3-5-sonnet-20241022", "anthropic"),
        ("gemini-2.0-flash", "google"),
        ("compat-llama", "openai_compatible"),
    ],
)
async def test_specific_model_answers_the_original_shape(
    client: httpx.AsyncClient, upstream: FakeUpstream, model: str, provider: str
) -> None:
    upstream.script("*", Reply(text="forty-two", input_tokens=1000, output_tokens=500))
    response = await client.post("/v1/complete", json={"prompt": "answer?", "routing": "specific", "model": model})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["content"] == "forty-two"
    assert (body["model"], body["provider"]) == (model, provider)
    assert body["tokens"] == {"input": 1000, "output": 500}
    assert body["latency_ms"] > 0
    assert body["cost"] > 0
    assert body["route"]["strategy"] == "specific"
    assert response.headers["x-switchyard-route"].startswith("specific")


async def test_cost_is_computed_from_the_price_table(client: httpx.AsyncClient, upstream: FakeUpstream) -> None:
    upstream.script("gpt-4o-mini", Reply(text="ok", input_tokens=1000, output_tokens=1000))
    body = (await client.post("/v1/complete", json={"prompt": "x", "model": "gpt-4o-mini"})).json()
    assert body["cost"] == pytest.approx(0.00015 + 0.0006)


async def test_messages_and_parameters_are_forwarded(client: httpx.AsyncClient, upstream: FakeUpstream) -> None:
    body = {
        "messages": [
            {"role": "system", "content": "be kind"},
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello"},
            {"role": "user", "content": "bye"},
        ],
        "model": "claude-3-5-sonnet-20241022",
        "max_tokens": 33,
        "temperature": 0.2,
    }
    response = await client.post("/v1/complete", json=body)
    assert response.status_code == 200
    assert response.json()["content"] == "echo: bye"
    sent = upstream.requests[-1].body
    assert sent["system"] == "be kind" and sent["max_tokens"] == 33 and sent["temperature"] == 0.2


async def test_auto_routing_uses_the_original_defaults(client: httpx.AsyncClient) -> None:
    simple = (await client.post("/v1/complete", json={"prompt": "What is the capital of France?"})).json()
    assert simple["model"] == "gpt-4o-mini"
    code = (await client.post("/v1/complete", json={"prompt": "Write a python function to parse a date"})).json()
    assert code["model"] == "gpt-4o"
    hard = (await client.post("/v1/complete", json={"prompt": "Analyze the trade-offs of this design"})).json()
    assert hard["model"] == "claude-3-5-sonnet-20241022"
    assert hard["route"]["strategy"] and hard["route"]["reason"]


async def test_task_type_alone_means_task_routing(client: httpx.AsyncClient) -> None:
    body = (await client.post("/v1/complete", json={"prompt": "Once upon a time", "task_type": "creative"})).json()
    assert body["route"]["strategy"] == "task"
    assert body["model"] == "claude-3-5-sonnet-20241022"


async def test_parallel_returns_a_successful_answer(client: httpx.AsyncClient, upstream: FakeUpstream) -> None:
    upstream.script("gpt-4o-mini", Reply(status=500))
    body = {"prompt": "hi", "routing": "parallel", "models": ["gpt-4o-mini", "gemini-2.0-flash"]}
    response = await client.post("/v1/complete", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["model"] == "gemini-2.0-flash"


@pytest.mark.parametrize(
    ("reply", "status", "error_type"),
    [
        (Reply(status=429, retry_after=9), 429, "rate_limited"),
        (Reply(status=401), 502, "upstream_auth_error"),
        (Reply(status=400, error_message="max_tokens: too large"), 400, "upstream_bad_request"),
        (Reply(status=500), 502, "upstream_server_error"),
        (Reply(status=529), 503, "upstream_unavailable"),
    ],
)
async def test_upstream_errors_over_http(
    client: httpx.AsyncClient, upstream: FakeUpstream, reply: Reply, status: int, error_type: str
) -> None:
    upstream.script("claude-3-5-sonnet-20241022", reply)
    body = {"prompt": "x", "routing": "specific", "model": "claude-3-5-sonnet-20241022"}
    response = await client.post("/v1/complete", json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["type"] == error_type
    if status == 429:
        assert response.headers["retry-after"] == "9"
    if error_type == "upstream_auth_error":
        assert error["message"] == "upstream rejected the credentials"
    if status == 400:
        assert "max_tokens: too large" in error["message"]
    for key in TEST_KEYS.values():
        assert key not in response.text


async def test_upstream_timeout_is_504(upstream: FakeUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEYS["OPENAI_API_KEY"])
    models = fake_models(upstream.base_url, **{"gpt-4o-mini": {"timeout_s": 0.3}})
    async with app_client(write_config(tmp_path, {"models": models, "orchestration": {"max_retries": 0}})) as c:
        upstream.script("gpt-4o-mini", Reply(delay_s=5))
        response = await c.post("/v1/complete", json={"prompt": "x", "routing": "specific", "model": "gpt-4o-mini"})
    assert response.status_code == 504
    assert response.json()["error"]["type"] == "upstream_timeout"


async def test_models_lists_prices_and_availability(
    upstream: FakeUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEYS["OPENAI_API_KEY"])
    models = fake_models(upstream.base_url)
    models["mystery"] = {"provider": "openai_compatible", "api_base": f"{upstream.base_url}/v1"}
    async with app_client(write_config(tmp_path, {"models": models})) as c:
        listed = {m["id"]: m for m in (await c.get("/v1/models")).json()["models"]}
    mini = listed["gpt-4o-mini"]
    assert mini["provider"] == "openai" and mini["upstream_model"] == "gpt-4o-mini"
    assert (mini["cost_per_1k_input"], mini["cost_per_1k_output"]) == (0.00015, 0.0006)
    assert mini["available"] is True
    claude = listed["claude-3-5-sonnet-20241022"]
    assert claude["available"] is False and "ANTHROPIC_API_KEY" in claude["unavailable_reason"]
    assert listed["mystery"]["price_known"] is False and listed["mystery"]["cost_per_1k_input"] is None


async def test_unknown_price_answers_null_cost_not_zero(
    upstream: FakeUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    models = {"mystery": {"provider": "openai_compatible", "api_base": f"{upstream.base_url}/v1"}}
    async with app_client(write_config(tmp_path, {"models": models})) as c:
        body = (await c.post("/v1/complete", json={"prompt": "x", "model": "mystery"})).json()
    assert body["cost"] is None and body["price_known"] is False


async def test_keys_never_appear_in_models_or_errors(client: httpx.AsyncClient, upstream: FakeUpstream) -> None:
    upstream.script("gpt-4o-mini", Reply(status=401, error_message=f"Incorrect API key {TEST_KEYS['OPENAI_API_KEY']}"))
    upstream.script("gpt-4o", Reply(status=400, error_message=f"bad request for {TEST_KEYS['OPENAI_API_KEY']}"))
    texts = [
        (await client.get("/v1/models")).text,
        (await client.post("/v1/complete", json={"prompt": "x", "model": "gpt-4o-mini"})).text,
        (await client.post("/v1/complete", json={"prompt": "x", "model": "gpt-4o"})).text,
    ]
    assert "[redacted]" in texts[2]
    for text in texts:
        for key in TEST_KEYS.values():
            assert key not in text


async def test_health_and_ready(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health")).json()["status"] == "healthy"
    ready = await client.get("/ready")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"


async def test_ready_is_503_when_no_model_is_usable(
    upstream: FakeUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    models = {"gpt-4o-mini": {"provider": "openai"}}
    async with app_client(write_config(tmp_path, {"models": models})) as c:
        ready = await c.get("/ready")
        health = await c.get("/health")
        complete = await c.post("/v1/complete", json={"prompt": "hi"})
    assert ready.status_code == 503 and health.status_code == 200
    assert complete.status_code == 503
    assert complete.json()["error"]["type"] == "no_model_available"


async def test_unknown_path_and_method_are_json(client: httpx.AsyncClient) -> None:
    missing = await client.get("/v2/nothing")
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found"
    wrong = await client.get("/v1/complete")
    assert wrong.status_code == 405 and wrong.json()["error"]["type"] == "method_not_allowed"
