"""Property test for ``POST /v1/embeddings``: whatever JSON a client sends (random mutations of a valid
request, non-JSON numbers spliced in, arbitrary bytes), the answer is JSON, never a 500, every error in
OpenAI's shape, a validation failure a 400; valid requests reach the fake upstream and succeed."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fakes.server import FakeUpstream
from tests.support import app_client, write_config

SCALAR = st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=False) | st.text(max_size=12)
JSON = st.recursive(
    SCALAR,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=10,
)
INPUTS = (
    JSON
    | st.text(max_size=20)
    | st.lists(st.text(max_size=8), max_size=5)
    | st.lists(st.integers(-3, 2**33), max_size=5)
    | st.lists(st.lists(st.integers(-3, 100_000), max_size=3), max_size=3)
)
FIELDS = {
    "input": INPUTS,
    "model": JSON | st.sampled_from(["embed-compat", "embed-gemini", "chat", "auto", "", "nope"]),
    "dimensions": JSON | st.integers(-2, 70_000),
    "encoding_format": JSON | st.sampled_from(["float", "base64", "int8", ""]),
    "user": JSON,
    "task_type": JSON | st.sampled_from(["clustering", "RETRIEVAL_QUERY", "x"]),
    "extra_field": JSON,
}
VALID = {"model": "embed-compat", "input": ["hello", "world"], "dimensions": 4}


@st.composite
def mutated(draw: st.DrawFn) -> Any:
    body: Any = dict(VALID)
    for _ in range(draw(st.integers(1, 3))):
        action = draw(st.sampled_from(["set", "set", "drop", "replace"]))
        if action == "set":
            name = draw(st.sampled_from(sorted(FIELDS)))
            body[name] = draw(FIELDS[name])
        elif action == "drop" and body:
            body.pop(draw(st.sampled_from(sorted(body))))
        elif action == "replace":
            return draw(JSON)
    return body


@pytest.fixture(scope="module")
def config_path(tmp_path_factory: pytest.TempPathFactory, fake_upstream: FakeUpstream) -> Path:
    base = fake_upstream.base_url
    models = {
        "embed-compat": {"provider": "openai_compatible", "api_base": f"{base}/v1", "kind": "embedding"},
        "embed-gemini": {"provider": "google", "api_base": base, "api_key_env": "FUZZ_GEMINI_KEY", "kind": "embedding"},
        "chat": {"provider": "openai_compatible", "api_base": f"{base}/v1"},
    }
    return write_config(tmp_path_factory.mktemp("embeddings-fuzz"), {"models": models})


@pytest.fixture
async def client(config_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[httpx.AsyncClient]:
    monkeypatch.setenv("FUZZ_GEMINI_KEY", "AIzaFuzz0123456789abcdefghij")
    async with app_client(config_path) as c:
        yield c


def check(response: httpx.Response) -> None:
    assert response.status_code != 500, response.text
    assert response.status_code < 500 or response.status_code in (502, 503, 504), response.text
    body = response.json()
    if response.status_code >= 400:
        error = body["error"]
        assert isinstance(error["type"], str) and isinstance(error["message"], str)
        assert {"param", "code"} <= set(error), error
        assert response.status_code != 422
    else:
        assert body["object"] == "list" and body["data"]


FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(body=mutated())
async def test_mutated_requests_never_500(client: httpx.AsyncClient, body: Any) -> None:
    check(await client.post("/v1/embeddings", content=json.dumps(body), headers={"content-type": "application/json"}))


@FUZZ
@given(
    splice=st.sampled_from([b"NaN", b"Infinity", b"-Infinity", b'"\\ud800"', b"\xff\xfe", b"1e999"]),
    where=st.sampled_from(["input", "dimensions", "model", "user", "extra_field"]),
    nested=st.booleans(),
)
async def test_non_json_values_are_400(client: httpx.AsyncClient, splice: bytes, where: str, nested: bool) -> None:
    marker: Any = ["@@"] if nested else "@@"
    raw = json.dumps({**VALID, where: marker}).encode().replace(b'"@@"', splice)
    response = await client.post("/v1/embeddings", content=raw, headers={"content-type": "application/json"})
    check(response)
    assert response.status_code == 400, response.text


@FUZZ
@given(raw=st.binary(max_size=64))
async def test_arbitrary_bytes_never_500(client: httpx.AsyncClient, raw: bytes) -> None:
    check(await client.post("/v1/embeddings", content=raw, headers={"content-type": "application/json"}))
