"""``GET /v1/pipelines`` and ``POST /v1/pipelines/{name}`` through the app, against the fake upstream."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.fakes.scripts import Reply
from tests.fakes.server import FakeUpstream
from tests.support import app_client, fake_models, write_config

MINI, SONNET, LLAMA = "gpt-4o-mini", "claude-3-5-sonnet-20241022", "compat-llama"

PIPELINES = {
    "research": {
        "description": "queries, synthesis, summary",
        "inputs": ["topic"],
        "steps": [
            {"name": "queries", "model": MINI, "prompt_template": "Questions about {topic}", "output_key": "queries"},
            {
                "name": "synthesis",
                "model": SONNET,
                "prompt_template": "Topic {topic}. Answer: {queries}",
                "output_key": "synthesis",
            },
            {"name": "summary", "model": LLAMA, "prompt_template": "Summarise: {synthesis}", "output_key": "summary"},
        ],
    },
    "routed": {
        "steps": [
            {
                "name": "draft",
                "routing": "task",
                "task_type": "translation",
                "prompt_template": "Say hi to {name} in {style} style",
            },
            {"name": "polish", "model": MINI, "prompt_template": "Polish: {draft}"},
        ]
    },
    "keyless": {"steps": [{"name": "only", "model": "keyless", "prompt_template": "{x}"}]},
}


@pytest.fixture
async def client(
    upstream: FakeUpstream, tmp_path: Path, provider_keys: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    monkeypatch.delenv("SWITCHYARD_TEST_NO_SUCH_KEY", raising=False)
    models = fake_models(
        upstream.base_url,
        keyless={
            "provider": "openai",
            "api_base": f"{upstream.base_url}/v1",
            "api_key_env": "SWITCHYARD_TEST_NO_SUCH_KEY",
        },
    )
    config = {"models": models, "pipelines": PIPELINES, "orchestration": {"max_retries": 0}}
    async with app_client(write_config(tmp_path, config)) as c:
        yield c


async def test_list_pipelines(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/pipelines")
    assert response.status_code == 200
    pipelines = {p["name"]: p for p in response.json()["pipelines"]}
    assert set(pipelines) == {"research", "routed", "keyless"}
    assert pipelines["research"]["inputs"] == ["topic"]
    assert [s["name"] for s in pipelines["research"]["steps"]] == ["queries", "synthesis", "summary"]
    assert pipelines["routed"]["inputs"] == ["name", "style"]
    assert pipelines["routed"]["steps"][0]["routing"] == "task"


async def test_run_research_pipeline(client: httpx.AsyncClient, upstream: FakeUpstream) -> None:
    upstream.script(MINI, Reply(text="Q1? Q2?", input_tokens=5, output_tokens=2))
    upstream.script(SONNET, Reply(text="Deep synthesis.", input_tokens=9, output_tokens=3))
    upstream.script("llama3", Reply(text="- short summary", input_tokens=4, output_tokens=3))
    response = await client.post("/v1/pipelines/research", json={"inputs": {"topic": "tidal power"}})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["pipeline"] == "research"
    assert body["outputs"] == {"queries": "Q1? Q2?", "synthesis": "Deep synthesis.", "summary": "- short summary"}
    assert body["output"] == "- short summary"
    steps = body["steps"]
    assert [(s["name"], s["model"]) for s in steps] == [("queries", MINI), ("synthesis", SONNET), ("summary", LLAMA)]
    assert [s["tokens"] for s in steps] == [
        {"input": 5, "output": 2},
        {"input": 9, "output": 3},
        {"input": 4, "output": 3},
    ]
    assert all(s["latency_ms"] > 0 for s in steps)
    assert body["total_tokens"] == {"input": 18, "output": 8}
    assert body["total_cost"] == pytest.approx(sum(s["cost"] for s in steps))
    # each step's prompt carried the inputs and the earlier outputs
    prompts = {r.model: str(r.body) for r in upstream.requests}
    assert "Questions about tidal power" in prompts[MINI]
    assert "Topic tidal power. Answer: Q1? Q2?" in prompts[SONNET]
    assert "Summarise: Deep synthesis." in prompts["llama3"]


async def test_missing_variable_is_422_before_any_call(client: httpx.AsyncClient, upstream: FakeUpstream) -> None:
    response = await client.post("/v1/pipelines/routed", json={"inputs": {"name": "Ada"}})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["type"] == "missing_variable"
    assert error["variable"] == "style" and "'style'" in error["message"]
    assert upstream.requests == []


async def test_unknown_pipeline_is_404(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/pipelines/nope", json={"inputs": {}})
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "pipeline_not_found"


async def test_bad_body_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/pipelines/research", json={"inputs": {"topic": 3}})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "inputs.topic"
    response = await client.post("/v1/pipelines/research", json={"topic": "x"})
    assert response.status_code == 400


async def test_unavailable_step_model_is_503_before_any_call(client: httpx.AsyncClient, upstream: FakeUpstream) -> None:
    response = await client.post("/v1/pipelines/keyless", json={"inputs": {"x": "1"}})
    assert response.status_code == 503
    assert "keyless" in response.json()["error"]["message"]
    assert upstream.requests == []


async def test_step_falls_back_and_routing_steps_run(client: httpx.AsyncClient, upstream: FakeUpstream) -> None:
    upstream.script(MINI, Reply(status=503), Reply(text="polished"))
    response = await client.post("/v1/pipelines/routed", json={"inputs": {"name": "Ada", "style": "pirate"}})
    assert response.status_code == 200, response.text
    steps = response.json()["steps"]
    first, second = steps
    # the task-routed draft went to gpt-4o-mini (translation, as in the original design), failed, fell back
    assert first["failures"][0]["model"] == MINI and first["model"] != MINI
    assert second["output"] == "polished" and second["model"] == MINI


async def test_pipeline_deadline_is_504(client: httpx.AsyncClient, upstream: FakeUpstream) -> None:
    upstream.script(MINI, Reply(text="Q?"))
    upstream.script(SONNET, Reply(delay_s=20))
    started = time.monotonic()
    response = await client.post("/v1/pipelines/research", json={"inputs": {"topic": "t"}, "timeout_s": 0.5})
    assert time.monotonic() - started < 4
    assert response.status_code == 504
    assert response.json()["error"]["type"] == "deadline_exceeded"
    assert upstream.wait_for_disconnects(1) == 1
