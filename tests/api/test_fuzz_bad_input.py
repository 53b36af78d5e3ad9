"""Property test: whatever JSON a client sends, the gateway answers a JSON body and never a 500.

Bodies are random JSON values, random mutations of valid requests (fields dropped, retyped or set to odd
values; chat messages with odd content parts), and raw bytes (non-finite numbers, lone surrogates, invalid
UTF-8), against every POST endpoint. The upstream is the fake server, so valid requests succeed. Every
error is in OpenAI's shape (``message``, ``type``, ``param``, ``code``), and a validation error is a 400.
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
PART = st.fixed_dictionaries(
    {"type": st.sampled_from(["text", "image_url", "file", "input_audio", "refusal", "video"])},
    optional={
        "text": ODD,
        "image_url": ODD
        | st.fixed_dictionaries(
            {
                "url": st.sampled_from(
                    ["data:image/png;base64,AAAA", "data:", "https://x", "ftp://x", "data:image/png,xx"]
                )
            }
        ),
        "file": ODD | st.fixed_dictionaries({}, optional={"file_data": ODD, "file_id": ODD, "filename": ODD}),
        "cache_control": ODD,
    },
)
MESSAGE = st.fixed_dictionaries(
    {"role": st.sampled_from(["system", "developer", "user", "assistant", "tool", "function", "wizard"])},
    optional={
        "content": ODD | st.lists(PART, max_size=3),
        "tool_calls": ODD,
        "tool_call_id": ODD,
        "refusal": ODD,
        "annotations": ODD,
        "audio": ODD,
        "name": ODD,
    },
)
CHAT_ODD = {
    "messages": st.lists(MESSAGE, min_size=1, max_size=3),
    "response_format": ODD
    | st.fixed_dictionaries(
        {"type": st.sampled_from(["text", "json_object", "json_schema"])}, optional={"json_schema": ODD}
    ),
    "tool_choice": ODD | st.sampled_from(["auto", "none", "required"]),
    "logit_bias": ODD | st.dictionaries(st.sampled_from(["1", "x", "99"]), ODD, max_size=2),
}

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
        "response_format",
        "parallel_tool_calls",
        "seed",
        "presence_penalty",
        "frequency_penalty",
        "logprobs",
        "top_logprobs",
        "logit_bias",
        "reasoning_effort",
        "verbosity",
        "service_tier",
        "store",
        "modalities",
        "audio",
        "web_search_options",
        "prediction",
    }
)


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, Any]:
    path = draw(st.sampled_from(sorted(VALID)))
    body: Any = dict(VALID[path])
    for _ in range(draw(st.integers(0, 3))):
        action = draw(st.sampled_from(["set", "drop", "replace"]))
        if action == "set":
            name = draw(st.sampled_from(FIELDS))
            odd = CHAT_ODD.get(name, ODD) if path == "/v1/chat/completions" else ODD
            body[name] = draw(odd)
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
        error = body["error"]
        assert isinstance(error["type"], str) and isinstance(error["message"], str)
        assert {"param", "code"} <= set(error), error
    assert response.status_code != 422 or body["error"]["type"] != "invalid_request_error", body


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(case=mutated())
async def test_mutated_requests_never_500(client: httpx.AsyncClient, case: tuple[str, Any]) -> None:
    path, body = case
    _check(await client.post(path, content=json.dumps(body), headers={"content-type": "application/json"}))


SPLICES = [
    b"NaN",
    b"Infinity",
    b"-Infinity",
    b'"\\ud800"',
    b'"\\udfff x"',
    b"\xff\xfe",
    b"1e999",
    b"12345678901234567890123",
]


@FUZZ
@given(path=st.sampled_from(sorted(VALID)), splice=st.sampled_from(SPLICES), where=st.sampled_from(FIELDS))
async def test_non_json_values_in_a_valid_body_are_400(
    client: httpx.AsyncClient, path: str, splice: bytes, where: str
) -> None:
    raw = json.dumps({**VALID[path], where: "@@"}).encode().replace(b'"@@"', splice)
    response = await client.post(path, content=raw, headers={"content-type": "application/json"})
    _check(response)
    not_json = splice in (b"NaN", b"Infinity", b"-Infinity", b"\xff\xfe") or b"ud" in splice
    if not_json and path == "/v1/chat/completions":
        assert response.status_code == 400, response.text


@FUZZ
@given(path=st.sampled_from(sorted(VALID)), raw=st.binary(max_size=64))
async def test_arbitrary_bytes_never_500(client: httpx.AsyncClient, path: str, raw: bytes) -> None:
    _check(await client.post(path, content=raw, headers={"content-type": "application/json"}))
