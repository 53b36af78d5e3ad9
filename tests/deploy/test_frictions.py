"""The small frictions a new user met (issue 16): a body without ``content-type`` is JSON on every route (one
with a non-JSON content type is a 400 that says so), the consensus example's 503 names each unavailable
model and why, ``switchyard serve --workers N`` leaves no metrics directory behind, and the README's sample
``/v1/complete`` answer has the fields the API returns."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.deploy.serve_support import ROOT, free_port, serve_env, serving
from tests.fakes.server import FakeUpstream
from tests.support import app_client, fake_models, write_config

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
BODIES = {
    "/v1/complete": {"prompt": "hi", "model": "gpt-4o-mini"},
    "/v1/chat/completions": CHAT,
    "/v1/messages": {**CHAT, "max_tokens": 16},
    "/v1/route": {"prompt": "hi"},
}


@pytest.fixture
def config(upstream: FakeUpstream, tmp_path: Path, provider_keys: dict[str, str]) -> Path:
    return write_config(tmp_path, {"models": fake_models(upstream.base_url), "orchestration": {"max_retries": 0}})


@pytest.mark.parametrize("path", sorted(BODIES))
async def test_a_body_without_content_type_is_json(config: Path, path: str) -> None:
    async with app_client(config) as client:
        body = json.dumps(BODIES[path]).encode()
        response = await client.post(path, content=body)  # httpx sends bytes without a content-type
        assert "content-type" not in response.request.headers
        assert response.status_code == 200, response.text


@pytest.mark.parametrize("path", ["/v1/complete", "/v1/route"])
@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "text/plain"])
async def test_a_non_json_content_type_is_a_400_that_says_so(config: Path, path: str, content_type: str) -> None:
    """``curl -d`` without ``-H 'content-type: application/json'`` sends a form content type."""
    async with app_client(config) as client:
        body = json.dumps(BODIES[path]).encode()
        response = await client.post(path, content=body, headers={"content-type": content_type})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "unsupported_content_type"
    assert "application/json" in error["message"] and content_type in error["message"]


async def test_an_invalid_json_body_keeps_its_own_error(config: Path) -> None:
    async with app_client(config) as client:
        response = await client.post("/v1/complete", json={"prompt": 3})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "prompt"


async def test_the_consensus_503_names_each_unavailable_model_and_why(
    upstream: FakeUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("OPENAI_API_KEY", "GEMINI_API_KEY", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    models = fake_models(upstream.base_url)
    path = write_config(tmp_path, {"models": models})
    wanted = ["gpt-4o-mini", "gemini-2.0-flash", "claude-3-5-sonnet-20241022"]
    async with app_client(path) as client:
        response = await client.post(
            "/v1/complete", json={"prompt": "Name a prime number", "strategy": "consensus", "models": wanted}
        )
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["type"] == "no_model_available"
    for model, key in zip(wanted, ("OPENAI_API_KEY", "GEMINI_API_KEY", "ANTHROPIC_API_KEY"), strict=True):
        assert re.search(rf"{re.escape(model)}: [^;]*{key}", error["message"]), error["message"]
    assert [s["model"] for s in error["skipped"]] == wanted
    assert all(s["reason"] for s in error["skipped"])


def test_serve_with_workers_removes_its_metrics_directory(upstream: FakeUpstream, tmp_path: Path) -> None:
    """``switchyard serve --workers 2`` makes switchyard-metrics-<pid> in the temp directory, and removes it
    when it stops (SIGTERM)."""
    config = write_config(tmp_path, {"models": fake_models(upstream.base_url)})
    temp = tmp_path / "tmp"
    temp.mkdir()
    port = free_port()
    env = serve_env(
        {
            "TMPDIR": str(temp),
            "SWITCHYARD_CONFIG": str(config),
            "SWITCHYARD_PORT": str(port),
            "SWITCHYARD_WORKERS": "2",
            "SWITCHYARD_STATE_PATH": str(tmp_path / "state.db"),
        }
    )
    with serving(env, port) as server:
        made = list(temp.glob("switchyard-metrics-*"))
        assert [d.name for d in made] == [f"switchyard-metrics-{server.pid}"]
    assert server.returncode == 0
    assert not made[0].exists()


async def test_the_readme_sample_answer_has_the_fields_the_api_returns(config: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### `POST /v1/complete`") :]
    sample = json.loads(re.search(r"```json\n(.*?)```", section, re.DOTALL).group(1))  # type: ignore[union-attr]
    async with app_client(config) as client:
        answer = (await client.post("/v1/complete", json=BODIES["/v1/complete"])).json()
    assert set(sample) == set(answer)
    assert set(sample["route"]) == set(answer["route"])
    assert set(sample["tokens"]) == set(answer["tokens"])


async def test_the_readme_lists_the_fields_of_models_and_ready(config: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    block = readme[readme.index("curl -s localhost:8000/v1/models") :].split("```", 1)[0]
    models_text, ready_text = block.split("curl -s localhost:8000/health")
    listed = set(re.findall(r"\b[a-z][a-z0-9_]+\b", models_text.split("each:", 1)[1]))
    async with app_client(config) as client:
        catalogue = (await client.get("/v1/models")).json()
        ready = (await client.get("/ready")).json()
    assert set(catalogue) == {"object", "models", "data"}
    assert listed == set(catalogue["models"][0])
    ready_keys = re.sub(r':\s*"[^"]*"', "", ready_text.split("# 200", 1)[1])  # drop the values shown
    assert set(re.findall(r'"([a-z_]+)"', ready_keys)) == set(ready)
