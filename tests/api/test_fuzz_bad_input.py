"""Property test: whatever JSON a client sends, the gateway answers a JSON body and never a 500.

Bodies are random JSON values, and random mutations of valid requests (fields dropped, retyped or set to
odd values), against every POST endpoint. The upstream is the fake server, so valid requests succeed.
"""

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

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
ODD = JSON | st.sampled_from(["", " ", "\u0000", "auto", "specific", "race", "-1", "1e309", "local", "compat"])

VALID = {
    "/v1/complete": {"prompt": "hello", "routing": "auto", "max_tokens": 5, "temperature": 0.5},
    "/v1/chat/completions": {"model": "compat", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 5},
    "/v1/route": {"prompt": "hello", "routing": "cost", "max_cost": 0.01},
    "/v1/pipelines/echo": {"inputs": {"topic": "x"}},
}
FIELDS = sorted(
    {
        "prompt",
        "messages",
        "routing",
        "model",
        "models",
        "task_type",
        "max_tokens",
        "temperature",
        "top_p",
        "stop",
        "stream",
        "strategy",
        "judge",
        "hedge",
        "timeout_s",
        "max_cost",
        "tools",
        "tool_choice",
        "n",
        "inputs",
        "selector",
        "metadata",
        "system",
        "stream_options",
        "max_completion_tokens",
        "user",
    }
)


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, Any]:
    path = draw(st.sampled_from(sorted(VALID)))
    body: Any = dict(VALID[path])
    for _ in range(draw(st.integers(0, 3))):
        action = draw(st.sampled_from(["set", "drop", "replace"]))
        if action == "set":
            body[draw(st.sampled_from(FIELDS))] = draw(ODD)
        elif action == "drop" and body:
            body.pop(draw(st.sampled_from(sorted(body))))
        elif action == "replace":
            body = draw(JSON)
            break
    return path, body


@pytest.fixture(scope="module")
def config_path(tmp_path_factory: pytest.TempPathFactory, fake_upstream: FakeUpstream) -> Path:
    models = {
        "compat": {
            "provider": "openai_compatible",
            "api_base": f"{fake_upstream.base_url}/v1",
            "timeout_s": 5,
            "cost_per_1k_input": 0.001,
            "cost_per_1k_output": 0.002,
            "tier": 3,
        }
    }
    pipelines = {
        "echo": {"inputs": ["topic"], "steps": [{"name": "s", "model": "compat", "prompt_template": "{topic}"}]}
    }
    return write_config(tmp_path_factory.mktemp("fuzz"), {"models": models, "pipelines": pipelines})


@pytest.fixture
async def client(config_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(config_path) as c:
        yield c


def _check(response: httpx.Response) -> None:
    assert response.status_code != 500, response.text
    assert response.status_code < 500 or response.status_code in (502, 503, 504), response.text
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        return
    body = response.json()
    if response.status_code >= 400:
        assert isinstance(body["error"]["type"], str) and isinstance(body["error"]["message"], str)


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(case=mutated())
async def test_mutated_requests_never_500(client: httpx.AsyncClient, case: tuple[str, Any]) -> None:
    path, body = case
    _check(await client.post(path, content=json.dumps(body), headers={"content-type": "application/json"}))


@FUZZ
@given(path=st.sampled_from(sorted(VALID)), raw=st.binary(max_size=64))
async def test_arbitrary_bytes_never_500(client: httpx.AsyncClient, path: str, raw: bytes) -> None:
    _check(await client.post(path, content=raw, headers={"content-type": "application/json"}))
