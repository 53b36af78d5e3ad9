"""Property test of ``POST /v1/responses``: whatever a client sends (odd input items and content parts, odd
values of every field, streamed or not, to a translated and to the pass-through target), the answer is a
2xx or an error in OpenAI's shape, never a 500 or a 422."""

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
from tests.support import app_client, fake_models, write_config

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3),
    max_leaves=8,
)
ODD = JSON | st.sampled_from(["", "auto", "none", "required", "swy1.!!", "swy1.eyJwIjoxfQ", "data:", "https://x"])
PART = st.fixed_dictionaries(
    {
        "type": st.sampled_from(
            ["input_text", "output_text", "input_image", "input_file", "refusal", "input_audio", "x"]
        )
    },
    optional={"text": ODD, "image_url": ODD, "file_data": ODD, "file_id": ODD, "file_url": ODD, "detail": ODD},
)
ITEM = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["message", "function_call", "function_call_output", "reasoning", "item_reference"]),
        "role": st.sampled_from(["user", "assistant", "system", "developer", "tool", "x"]),
        "content": ODD | st.lists(PART, max_size=3),
        "call_id": ODD,
        "name": ODD,
        "arguments": ODD,
        "output": ODD | st.lists(PART, max_size=2),
        "summary": ODD,
        "encrypted_content": ODD,
        "id": ODD,
    },
)
FIELDS: dict[str, Any] = {
    "input": ODD | st.lists(ITEM, min_size=1, max_size=4),
    "instructions": ODD,
    "tools": ODD
    | st.lists(
        st.fixed_dictionaries(
            {"type": st.sampled_from(["function", "web_search"])},
            optional={"name": ODD, "parameters": ODD, "strict": ODD},
        ),
        max_size=2,
    ),
    "tool_choice": ODD,
    "text": ODD | st.fixed_dictionaries({}, optional={"format": ODD, "verbosity": ODD}),
    "reasoning": ODD | st.fixed_dictionaries({}, optional={"effort": ODD, "summary": ODD}),
    "max_output_tokens": ODD,
    "temperature": ODD,
    "top_p": ODD,
    "metadata": ODD,
    "store": ODD,
    "stream": st.booleans(),
    "previous_response_id": ODD,
    "include": ODD,
    "parallel_tool_calls": ODD,
}


@st.composite
def bodies(draw: st.DrawFn) -> dict[str, Any]:
    body: dict[str, Any] = {"model": draw(st.sampled_from(["gpt-4o-mini", "claude-3-5-sonnet-20241022", "auto"]))}
    body["input"] = "hello"
    for name in draw(st.lists(st.sampled_from(sorted(FIELDS)), max_size=4, unique=True)):
        body[name] = draw(FIELDS[name])
    return body


@pytest.fixture(scope="module")
def config_path(tmp_path_factory: pytest.TempPathFactory, fake_upstream: FakeUpstream) -> Path:
    return write_config(tmp_path_factory.mktemp("responses-fuzz"), {"models": fake_models(fake_upstream.base_url)})


@pytest.fixture
async def client(config_path: Path, provider_keys: dict[str, str], tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(config_path, state_path=tmp_path / "state.db") as c:
        yield c


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies())
async def test_never_500(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
    response = await client.post(
        "/v1/responses", content=json.dumps(body), headers={"content-type": "application/json"}
    )
    assert response.status_code < 500 or response.status_code in (502, 503, 504), response.text
    assert response.status_code != 422, response.text
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        assert "response.completed" in response.text or "response.incomplete" in response.text, response.text
        return
    data = response.json()
    if response.status_code >= 400:
        error = data["error"]
        assert isinstance(error["message"], str) and isinstance(error["type"], str) and {"param", "code"} <= set(error)
    else:
        assert data["object"] == "response"
