"""``POST /v1/embeddings`` through the app (ASGI) against the fake upstream: the official ``openai`` client
and raw HTTP as callers; OpenAI-, Gemini- and OpenAI-compatible-backed embedding models; pass-through,
translation, base64, dimensions, token arrays, split batches, fallbacks, typed upstream errors and the
catalogue rule that chat never routes to an embedding model."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, get_args

import httpx
import numpy as np
import openai
import pytest

from app.domain import ChatRequest, Message
from app.errors import GatewayError
from app.main import create_app
from app.routing.base import RouteInput, RoutingMode
from app.settings.settings import Settings
from tests.fakes.embeddings_wire import vector
from tests.fakes.scripts import Reply
from tests.fakes.server import FakeUpstream
from tests.support import fake_models, write_config

GEMINI_PRICE_PER_TOKEN = 0.15 / 1_000_000  # gemini-embedding-001 in the genai-prices table
COMPAT_PRICE_PER_1K = 0.0001


def embedding_models(base_url: str) -> dict[str, dict[str, Any]]:
    return {
        "text-embedding-3-small": {
            "provider": "openai",
            "api_base": f"{base_url}/v1",
            "kind": "embedding",
            "timeout_s": 5,
            "fallbacks": ["compat-embed"],
        },
        "gemini-embedding-001": {"provider": "google", "api_base": base_url, "kind": "embedding", "timeout_s": 5},
        "text-embedding-004": {"provider": "google", "api_base": base_url, "kind": "embedding", "timeout_s": 5},
        "compat-embed": {
            "provider": "openai_compatible",
            "model": "nomic-embed-text",
            "api_base": f"{base_url}/v1",
            "kind": "embedding",
            "timeout_s": 5,
            "cost_per_1k_input": COMPAT_PRICE_PER_1K,
        },
    }


@pytest.fixture
async def app(upstream: FakeUpstream, tmp_path: Path, provider_keys: dict[str, str]) -> AsyncIterator[Any]:
    models = {**fake_models(upstream.base_url), **embedding_models(upstream.base_url)}
    path = write_config(tmp_path, {"models": models, "orchestration": {"max_retries": 0}})
    application = create_app(Settings(config=path))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: Any) -> AsyncIterator[openai.AsyncOpenAI]:
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app))
    async with openai.AsyncOpenAI(base_url="http://gateway/v1", api_key="unused", http_client=http, max_retries=0) as c:
        yield c


@pytest.fixture
async def raw(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as c:
        yield c


def embedding_calls(upstream: FakeUpstream) -> list[Any]:
    return [r for r in upstream.requests if "mbed" in r.path]


# --- OpenAI-backed: the body passes through, the answer comes back as sent ---------------------------------


async def test_openai_float_passes_through(raw: httpx.AsyncClient, upstream: FakeUpstream) -> None:
    body = {"model": "text-embedding-3-small", "input": "hello world", "encoding_format": "float", "dimensions": 6}
    response = await raw.post("/v1/embeddings", json={**body, "x_custom": {"keep": True}})
    assert response.status_code == 200, response.text
    assert response.headers["x-switchyard-route"] == "specific; model=text-embedding-3-small"
    assert response.headers["x-switchyard-provider"] == "openai"
    answer = response.json()
    assert answer["object"] == "list" and "switchyard" not in answer  # the upstream's own answer
    assert answer["data"][0]["embedding"] == vector("hello world", 6)
    assert answer["usage"] == {"prompt_tokens": 2, "total_tokens": 2}
    assert "x-switchyard-ignored-params" not in response.headers  # the unknown field was forwarded
    (call,) = embedding_calls(upstream)
    assert call.path == "/v1/embeddings"
    assert call.body == {**body, "x_custom": {"keep": True}}  # only the model replaced (the same id here)
    assert call.api_key == "sk-test-openai-0123456789"


async def test_openai_does_not_get_the_gemini_task_type(raw: httpx.AsyncClient, upstream: FakeUpstream) -> None:
    body = {"model": "compat-embed", "input": "x", "task_type": "CLUSTERING"}
    response = await raw.post("/v1/embeddings", json=body)
    assert response.status_code == 200, response.text
    assert response.headers["x-switchyard-ignored-params"] == "task_type"
    assert embedding_calls(upstream)[0].body == {"model": "nomic-embed-text", "input": "x"}


async def test_sdk_default_base64_and_list_input(client: openai.AsyncOpenAI, upstream: FakeUpstream) -> None:
    texts = ["first text", "second one here", "third"]
    result = await client.embeddings.create(model="text-embedding-3-small", input=texts, dimensions=5)
    assert [d.index for d in result.data] == [0, 1, 2]
    for text, item in zip(texts, result.data, strict=True):
        assert item.embedding == vector(text, 5)
    assert result.usage.prompt_tokens == 6
    (call,) = embedding_calls(upstream)
    assert call.body["encoding_format"] == "base64"  # the SDK's default, forwarded as sent


async def test_base64_is_little_endian_float32(raw: httpx.AsyncClient) -> None:
    for model in ("text-embedding-3-small", "gemini-embedding-001", "compat-embed"):
        body = {"model": model, "input": ["alpha", "beta"], "encoding_format": "base64", "dimensions": 7}
        response = await raw.post("/v1/embeddings", json=body)
        assert response.status_code == 200, (model, response.text)
        for text, item in zip(["alpha", "beta"], response.json()["data"], strict=True):
            decoded = np.frombuffer(base64.b64decode(item["embedding"]), dtype="<f4")
            assert decoded.tolist() == vector(text, 7), model


async def test_token_arrays_to_openai(client: openai.AsyncOpenAI, upstream: FakeUpstream) -> None:
    one = await client.embeddings.create(model="text-embedding-3-small", input=[1, 2, 3], dimensions=4)
    assert one.data[0].embedding == vector([1, 2, 3], 4)
    assert one.usage.prompt_tokens == 3
    many = await client.embeddings.create(model="text-embedding-3-small", input=[[5, 6], [7]], dimensions=4)
    assert [d.embedding for d in many.data] == [vector([5, 6], 4), vector([7], 4)]
    assert embedding_calls(upstream)[-1].body["input"] == [[5, 6], [7]]


# --- Gemini-backed: translated to batchEmbedContents --------------------------------------------------------


async def test_gemini_translation(raw: httpx.AsyncClient, upstream: FakeUpstream) -> None:
    body = {"model": "gemini-embedding-001", "input": ["one two", "three"], "dimensions": 4, "user": "u-1"}
    response = await raw.post("/v1/embeddings", json={**body, "task_type": "retrieval_document", "x_other": 1})
    assert response.status_code == 200, response.text
    assert response.headers["x-switchyard-provider"] == "google"
    assert response.headers["x-switchyard-ignored-params"] == "user,x_other"
    answer = response.json()
    assert [d["embedding"] for d in answer["data"]] == [vector("one two", 4), vector("three", 4)]
    assert answer["model"] == "gemini-embedding-001"
    assert answer["usage"] == {"prompt_tokens": 3, "total_tokens": 3}  # estimated: Gemini reports none
    assert answer["switchyard"]["usage"]["estimated"] is True
    assert answer["switchyard"]["cost"] == pytest.approx(3 * GEMINI_PRICE_PER_TOKEN)
    (call,) = embedding_calls(upstream)
    assert call.path == "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    assert call.api_key == "AIzaTest0123456789abcdefghij"
    assert call.body["requests"][0] == {
        "model": "models/gemini-embedding-001",
        "content": {"parts": [{"text": "one two"}]},
        "outputDimensionality": 4,
        "taskType": "RETRIEVAL_DOCUMENT",
    }


async def test_gemini_refuses_token_arrays(raw: httpx.AsyncClient, upstream: FakeUpstream) -> None:
    response = await raw.post("/v1/embeddings", json={"model": "text-embedding-004", "input": [1, 2]})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == "input" and "text-embedding-004" in error["message"]
    assert "token arrays" in error["message"]
    assert embedding_calls(upstream) == []


async def test_gemini_batch_split_in_order(raw: httpx.AsyncClient, upstream: FakeUpstream) -> None:
    texts = [f"text number {i}" for i in range(250)]
    response = await raw.post("/v1/embeddings", json={"model": "text-embedding-004", "input": texts, "dimensions": 3})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert [d["index"] for d in answer["data"]] == list(range(250))
    assert [d["embedding"] for d in answer["data"]] == [vector(t, 3) for t in texts]
    assert answer["usage"]["prompt_tokens"] == 750
    assert answer["switchyard"]["calls"] == 3
    sizes = sorted(len(r.body["requests"]) for r in embedding_calls(upstream))
    assert sizes == [50, 100, 100]


async def test_openai_batch_of_3000_split_in_order(raw: httpx.AsyncClient, upstream: FakeUpstream) -> None:
    texts = [f"item {i}" for i in range(3000)]
    body = {"model": "text-embedding-3-small", "input": texts, "dimensions": 2, "encoding_format": "base64"}
    response = await raw.post("/v1/embeddings", json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert len(answer["data"]) == 3000
    assert [d["index"] for d in answer["data"]] == list(range(3000))
    for text, item in zip(texts[::97], answer["data"][::97], strict=True):
        assert np.frombuffer(base64.b64decode(item["embedding"]), dtype="<f4").tolist() == vector(text, 2)
    assert answer["usage"] == {"prompt_tokens": 6000, "total_tokens": 6000}  # summed over the calls
    calls = embedding_calls(upstream)
    assert sorted(len(c.body["input"]) for c in calls) == [952, 2048]
    assert all(c.body["dimensions"] == 2 and c.body["encoding_format"] == "base64" for c in calls)


# --- OpenAI-compatible --------------------------------------------------------------------------------------


async def test_compatible_server_model_replaced_and_cost(raw: httpx.AsyncClient, upstream: FakeUpstream) -> None:
    response = await raw.post("/v1/embeddings", json={"model": "compat-embed", "input": ["a b c d"]})
    assert response.status_code == 200, response.text
    assert response.headers["x-switchyard-provider"] == "openai_compatible"
    assert response.json()["model"] == "nomic-embed-text"  # the server's answer, as sent
    (call,) = embedding_calls(upstream)
    assert call.body == {"model": "nomic-embed-text", "input": ["a b c d"]}
    assert call.api_key is None  # no key configured for the server: no Authorization header


async def test_base64_encoded_by_the_gateway_when_the_server_ignores_it(
    raw: httpx.AsyncClient, upstream: FakeUpstream
) -> None:
    def floats(body: dict[str, Any]) -> dict[str, Any]:
        for item in body["data"]:
            item["embedding"] = list(np.frombuffer(base64.b64decode(item["embedding"]), dtype="<f4").astype(float))
        return body

    upstream.script("nomic-embed-text", Reply(body_transform=floats))
    body = {"model": "compat-embed", "input": "hi there", "encoding_format": "base64", "dimensions": 3}
    response = await raw.post("/v1/embeddings", json=body)
    assert response.status_code == 200, response.text
    item = response.json()["data"][0]["embedding"]
    assert isinstance(item, str)
    assert np.frombuffer(base64.b64decode(item), dtype="<f4").tolist() == vector("hi there", 3)


# --- fallbacks and upstream errors ---------------------------------------------------------------------------


async def test_fallback_to_another_embedding_model(raw: httpx.AsyncClient, upstream: FakeUpstream) -> None:
    upstream.script("text-embedding-3-small", Reply(status=503))
    response = await raw.post(
        "/v1/embeddings", json={"model": "text-embedding-3-small", "input": "x y", "dimensions": 4}
    )
    assert response.status_code == 200, response.text
    assert response.headers["x-switchyard-route"] == "specific; model=compat-embed"
    assert response.headers["x-switchyard-provider"] == "openai_compatible"
    assert response.json()["data"][0]["embedding"] == vector("x y", 4)
    assert [c.model for c in embedding_calls(upstream)] == ["text-embedding-3-small", "nomic-embed-text"]


@pytest.mark.parametrize(
    ("model", "reply", "status", "error_type"),
    [
        ("text-embedding-004", Reply(status=429, retry_after=7), 429, "rate_limited"),
        ("text-embedding-004", Reply(status=401), 502, "upstream_auth_error"),
        ("text-embedding-004", Reply(body_transform=lambda body: {"embeddings": body["embeddings"][:0]}), 502, None),
        ("compat-embed", Reply(status=400, error_message="input is too long"), 400, "upstream_bad_request"),
        ("compat-embed", Reply(truncate_body=20), 502, None),
    ],
)
async def test_upstream_errors_are_typed(
    raw: httpx.AsyncClient, upstream: FakeUpstream, model: str, reply: Reply, status: int, error_type: str | None
) -> None:
    upstream.script("nomic-embed-text" if model == "compat-embed" else model, reply)
    response = await raw.post("/v1/embeddings", json={"model": model, "input": "text"})
    assert response.status_code == status, response.text
    error = response.json()["error"]
    if error_type is not None:
        assert error["type"] == error_type
    if status == 429:
        assert response.headers["retry-after"] == "7"
    assert "Traceback" not in response.text and "127.0.0.1" not in response.text


# --- validation: OpenAI-shaped 400s -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"model": "text-embedding-3-small"}, "input", "missing_required_parameter"),
        ({"input": "x"}, "model", "missing_required_parameter"),
        ({"model": "text-embedding-3-small", "input": ""}, "input", "empty_string"),
        ({"model": "text-embedding-3-small", "input": []}, "input", "empty_array"),
        ({"model": "text-embedding-3-small", "input": ["a", ""]}, "input.1", "empty_string"),
        ({"model": "text-embedding-3-small", "input": ["a", 3]}, "input.1", "invalid_type"),
        ({"model": "text-embedding-3-small", "input": [[1], []]}, "input.1", "empty_array"),
        ({"model": "text-embedding-3-small", "input": [[1], [-1]]}, "input.1.0", "invalid_value"),
        ({"model": "text-embedding-3-small", "input": [1, True]}, "input.1", "invalid_type"),
        ({"model": "text-embedding-3-small", "input": [1.5]}, "input.0", "invalid_type"),
        ({"model": "text-embedding-3-small", "input": {"text": "x"}}, "input", "invalid_type"),
        ({"model": "text-embedding-3-small", "input": ["x"] * 16_385}, "input", "array_above_max_length"),
        ({"model": "text-embedding-3-small", "input": "x", "encoding_format": "int8"}, "encoding_format", None),
        ({"model": "text-embedding-3-small", "input": "x", "dimensions": 0}, "dimensions", "integer_below_min_value"),
        ({"model": "text-embedding-3-small", "input": "x", "dimensions": "4"}, "dimensions", "invalid_type"),
        ({"model": "text-embedding-3-small", "input": "x", "task_type": "poems"}, "task_type", "unsupported_value"),
        ({"model": "auto", "input": "x"}, "model", "model_not_supported"),
        ({"model": "gpt-4o-mini", "input": "x"}, "model", "model_not_supported"),
    ],
)
async def test_bad_requests_are_400(
    raw: httpx.AsyncClient, upstream: FakeUpstream, body: dict[str, Any], param: str, code: str | None
) -> None:
    response = await raw.post("/v1/embeddings", json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    if code is not None:
        assert error["code"] == code
    assert embedding_calls(upstream) == []


async def test_chat_model_refusal_names_it(raw: httpx.AsyncClient) -> None:
    response = await raw.post("/v1/embeddings", json={"model": "gpt-4o-mini", "input": "x"})
    message = response.json()["error"]["message"]
    assert "gpt-4o-mini" in message and "chat model" in message and "text-embedding-3-small" in message


async def test_non_finite_numbers_and_unknown_models(raw: httpx.AsyncClient) -> None:
    nan = b'{"model": "text-embedding-3-small", "input": "x", "dimensions": NaN}'
    response = await raw.post("/v1/embeddings", content=nan, headers={"content-type": "application/json"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_json"
    response = await raw.post("/v1/embeddings", json={"model": "no-such-model", "input": "x"})
    assert response.status_code == 404 and response.json()["error"]["type"] == "model_not_found"


# --- chat never routes to an embedding model ----------------------------------------------------------------


async def test_chat_never_picks_an_embedding_model(app: Any, raw: httpx.AsyncClient, upstream: FakeUpstream) -> None:
    gateway = app.state.gateway
    request = ChatRequest(messages=(Message(role="user", content="hello"),))
    decision = gateway.plan(RouteInput(request=request, mode="parallel"))
    assert decision.models and not any(gateway.config.models[m].embeds for m in decision.models)
    for mode in get_args(RoutingMode):  # every strategy, those added later too
        if mode == "specific":
            continue
        try:
            plan = gateway.plan(RouteInput(request=request, mode=mode))
        except GatewayError:
            continue  # a strategy this catalogue cannot run (no learned router file...): nothing picked
        assert not any(gateway.config.models[m].embeds for m in plan.models), mode
    response = await raw.post(
        "/v1/chat/completions",
        json={"model": "text-embedding-3-small", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert response.status_code == 400
    assert "text-embedding-3-small" in response.json()["error"]["message"]
    assert upstream.requests == []


@pytest.mark.parametrize(
    "reply",
    [
        Reply(socket_fault="reset"),
        Reply(socket_fault="close"),
        Reply(socket_fault="non_http"),
        Reply(socket_fault="reset_mid_body"),
        Reply(raw_body=b"<html>bad gateway</html>", status=502, content_type="text/html"),
        Reply(error_in_200=500),
    ],
    ids=["reset", "close", "non_http", "reset_mid_body", "html_502", "error_in_200"],
)
@pytest.mark.parametrize("model", ["text-embedding-004", "compat-embed"])
async def test_faults_below_http_are_typed(
    raw: httpx.AsyncClient, upstream: FakeUpstream, reply: Reply, model: str
) -> None:
    upstream.script("nomic-embed-text" if model == "compat-embed" else model, reply)
    response = await raw.post("/v1/embeddings", json={"model": model, "input": "text"})
    assert response.status_code == 502, response.text
    assert response.json()["error"]["type"].startswith("upstream_")
    assert response.json()["error"]["provider"] in ("google", "openai_compatible")
