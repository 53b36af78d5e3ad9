"""Routing through the app: ``POST /v1/route`` (dry run) and the route info of ``/v1/complete``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.server import FakeUpstream
from tests.support import app_client, fake_models, write_config

ROUTING = {
    "rules": [
        {
            "name": "legal",
            "target": "claude-3-5-sonnet-20241022",
            "priority": 5,
            "when": {"metadata": {"team": "legal"}},
        }
    ],
    "tasks": {"creative": "claude-3-5-sonnet-20241022", "conversation": "gemini-2.0-flash"},
}


@pytest.fixture
async def client(
    upstream: FakeUpstream, tmp_path: Path, provider_keys: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    monkeypatch.delenv("GEMINI_API_KEY")  # gemini-2.0-flash is unavailable: routing must skip it
    config = {"models": fake_models(upstream.base_url), "routing": ROUTING, "orchestration": {"max_retries": 0}}
    async with app_client(write_config(tmp_path, config)) as c:
        yield c


@pytest.mark.parametrize(
    ("body", "strategy", "model", "reason"),
    [
        ({"prompt": "What is the capital of France?"}, "complexity", "gpt-4o-mini", "simple"),
        ({"prompt": "Fix the bug in this Python function"}, "complexity", "gpt-4o", "code keywords"),
        ({"prompt": "Analyze the trade-offs"}, "complexity", "claude-3-5-sonnet-20241022", "reasoning keywords"),
        ({"prompt": "hi", "metadata": {"team": "legal"}}, "rules", "claude-3-5-sonnet-20241022", "rule legal"),
        ({"prompt": "Write a poem", "routing": "task"}, "task", "claude-3-5-sonnet-20241022", "task creative"),
        ({"prompt": "hi", "task_type": "creative"}, "task", "claude-3-5-sonnet-20241022", "task_type given"),
        ({"prompt": "What is 2+2?", "routing": "cost"}, "cost", "gpt-4o-mini", "needs tier >= 2"),
    ],
)
async def test_dry_run_decides_without_calling_a_model(
    client: httpx.AsyncClient, upstream: FakeUpstream, body: dict[str, Any], strategy: str, model: str, reason: str
) -> None:
    response = await client.post("/v1/route", json=body)
    assert response.status_code == 200, response.text
    decision = response.json()
    assert (decision["strategy"], decision["model"]) == (strategy, model)
    assert reason in decision["reason"]
    assert decision["candidates"][0] == model
    assert response.headers["x-switchyard-route"] == f"{strategy}; model={model}"
    assert upstream.requests == []


async def test_dry_run_reports_skipped_unavailable_models(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/route", json={"prompt": "hello there", "routing": "task"})
    decision = response.json()
    assert decision["skipped"] == [{"model": "gemini-2.0-flash", "reason": decision["skipped"][0]["reason"]}]
    assert "GEMINI_API_KEY" in decision["skipped"][0]["reason"] or "key" in decision["skipped"][0]["reason"]
    assert decision["model"] != "gemini-2.0-flash"
    assert "gemini-2.0-flash skipped" in decision["reason"]


async def test_cost_dry_run_details(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/route", json={"prompt": "Analyze the trade-offs", "routing": "cost", "max_tokens": 100, "max_cost": 1}
    )
    details = response.json()["details"]
    assert details["level"] == "complex" and details["required_tier"] == 4
    assert details["output_tokens"] == 100 and details["max_cost"] == 1
    assert set(details["estimated_cost"]) == {"gpt-4o", "claude-3-5-sonnet-20241022"}


@pytest.mark.parametrize("path", ["/v1/route", "/v1/complete"])
async def test_over_budget_is_422_naming_the_cheapest_cost(
    client: httpx.AsyncClient, upstream: FakeUpstream, path: str
) -> None:
    body = {"prompt": "Analyze the trade-offs", "routing": "cost", "max_cost": 0.000001}
    response = await client.post(path, json=body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["type"] == "budget_exceeded"
    assert error["cheapest_model"] == "gpt-4o" and error["cheapest_cost"] > 0.000001
    assert "cheapest possible is gpt-4o" in error["message"]
    assert upstream.requests == []


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"prompt": "x", "routing": "cost", "max_cost": 0}, "max_cost"),
        ({"prompt": "x", "max_cost": "lots"}, "max_cost"),
        ({"prompt": "x", "routing": "cheapest"}, "routing"),
        ({"prompt": "x", "task_type": "astrology"}, "unknown task_type"),
    ],
)
async def test_bad_routing_input_is_4xx(client: httpx.AsyncClient, body: dict[str, Any], needle: str) -> None:
    for path in ("/v1/route", "/v1/complete"):
        response = await client.post(path, json=body)
        assert 400 <= response.status_code < 500, response.text
        error = response.json()["error"]
        text = error["message"] + " ".join(e.get("field", "") for e in error.get("errors", []))
        assert needle in text


@pytest.mark.parametrize(
    ("body", "strategy", "model"),
    [
        ({"prompt": "Write a Python function to add numbers"}, "complexity", "gpt-4o"),
        ({"prompt": "What is 2+2?", "routing": "cost", "max_cost": 0.01}, "cost", "gpt-4o-mini"),
        ({"prompt": "hello", "routing": "task"}, "task", None),
    ],
)
async def test_complete_answers_with_route_info_and_header(
    client: httpx.AsyncClient, upstream: FakeUpstream, body: dict[str, Any], strategy: str, model: str | None
) -> None:
    planned = (await client.post("/v1/route", json=body)).json()
    response = await client.post("/v1/complete", json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    route = answer["route"]
    assert route["strategy"] == strategy
    assert answer["model"] == route["model"] == planned["model"] == (model or planned["model"])
    assert route["candidates"] == planned["candidates"] and route["reason"] == planned["reason"]
    assert route["skipped"] == planned["skipped"]
    assert response.headers["x-switchyard-route"] == f"{strategy}; model={answer['model']}"
    assert len(upstream.requests) == 1


async def test_rule_conditions_registered_from_python_route_requests(
    upstream: FakeUpstream, tmp_path: Path, provider_keys: dict[str, str]
) -> None:
    """A condition registered in Python (``create_app(conditions=...)``) is usable in the YAML under custom:."""
    from app.main import create_app
    from app.routing.rules import EMPTY_REGISTRY
    from app.settings.settings import Settings

    def shouting(threshold: float):  # the builder gets the YAML argument and returns the predicate
        def predicate(features: Any) -> bool:
            letters = [c for c in features.text if c.isalpha()]
            return bool(letters) and sum(c.isupper() for c in letters) / len(letters) >= threshold

        return predicate

    routing = {"rules": [{"name": "calm", "target": "gpt-4o", "when": {"custom": {"shouting": 0.8}}}]}
    path = write_config(tmp_path, {"models": fake_models(upstream.base_url), "routing": routing})
    app = create_app(Settings(config=path), conditions=EMPTY_REGISTRY.register("shouting", shouting))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as c:
            loud = (await c.post("/v1/route", json={"prompt": "WHY IS THIS BROKEN"})).json()
            calm = (await c.post("/v1/route", json={"prompt": "why is this broken"})).json()
    assert (loud["strategy"], loud["model"]) == ("rules", "gpt-4o") and "calm" in loud["reason"]
    assert calm["strategy"] != "rules"


async def test_dry_run_shows_semantic_task_scores_and_nearest_examples(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/route", json={"prompt": "Écris un poème sur la pluie d'automne", "routing": "task"}
    )
    decision = response.json()
    details = decision["details"]
    assert details["detector"] == "semantic" and details["embedding"] == "wordllama-l2-256"
    assert details["task"] == "creative" and decision["model"] == "claude-3-5-sonnet-20241022"
    assert next(iter(details["scores"])) == "creative"
    assert {"task", "example", "score"} <= set(details["nearest"][0])


async def test_dry_run_shows_the_examples_even_when_keywords_decide(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/route", json={"prompt": "Write a Python function to sort a list", "routing": "task"}
    )
    details = response.json()["details"]
    assert details["detector"] == "keywords" and details["task"] == "code"
    assert details["semantic"]["embedding"] == "wordllama-l2-256" and details["semantic"]["nearest"]
    assert set(details["semantic"]["scores"]) >= {"code", "creative"}


@pytest.fixture(scope="module")
def trained_router(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A learned router trained (with the real default embedding) on synthetic data: the small model fails
    code work, both answer small talk. The data names models "big"/"small"; the catalogue maps them."""
    from app.routing.embedding import load_embedder
    from app.routing.training import train
    from tests.unit.routing.learned_data import samples

    path = tmp_path_factory.mktemp("router") / "router.npz"
    train(samples(), load_embedder("wordllama-l2-256")).save(path)
    return path.read_bytes()


@pytest.fixture
def router_file(tmp_path: Path, trained_router: bytes) -> Path:
    path = tmp_path / "router.npz"
    path.write_bytes(trained_router)
    return path


@pytest.fixture
async def learned_client(
    upstream: FakeUpstream, tmp_path: Path, provider_keys: dict[str, str], router_file: Path
) -> AsyncIterator[httpx.AsyncClient]:
    models = fake_models(
        upstream.base_url, **{"gpt-4o": {"router_name": "big"}, "gpt-4o-mini": {"router_name": "small"}}
    )
    routing = {"auto": "learned", "learned": {"path": router_file.name}}  # relative to the config file
    async with app_client(write_config(tmp_path, {"models": models, "routing": routing})) as c:
        yield c


CODE_PROMPT = (
    "Debug and refactor this C++ module for logging; it must stay thread-safe.\n```\nfor x in xs:\n    f(x)\n```"
)


@pytest.mark.parametrize(
    ("body", "model"),
    [
        ({"prompt": CODE_PROMPT}, "gpt-4o"),
        ({"prompt": "Hello! How is your day going?"}, "gpt-4o-mini"),
        ({"prompt": CODE_PROMPT, "quality_tolerance": 1}, "gpt-4o-mini"),  # anything goes: the cheapest
        ({"prompt": "Hello! How is your day going?", "routing": "learned", "quality_tolerance": 0}, None),
    ],
)
async def test_learned_routing_explains_its_prediction(
    learned_client: httpx.AsyncClient, upstream: FakeUpstream, body: dict[str, Any], model: str | None
) -> None:
    decision = (await learned_client.post("/v1/route", json=body)).json()
    assert decision["strategy"] == "learned"
    details = decision["details"]
    assert set(details["predicted_quality"]) == {"gpt-4o", "gpt-4o-mini"}
    assert details["quality_tolerance"] == body.get("quality_tolerance", 0.05)
    assert decision["model"] == (model or details["eligible"][0]) and "learned:" in decision["reason"]
    answer = await learned_client.post("/v1/complete", json=body)
    assert answer.status_code == 200 and answer.json()["route"]["strategy"] == "learned"
    assert answer.json()["model"] == decision["model"]


async def test_learned_is_a_model_alias_on_chat_completions(learned_client: httpx.AsyncClient) -> None:
    body = {"model": "learned", "messages": [{"role": "user", "content": CODE_PROMPT}]}
    response = await learned_client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    assert response.headers["x-switchyard-route"] == "learned; model=gpt-4o"


async def test_bad_quality_tolerance_is_400(learned_client: httpx.AsyncClient) -> None:
    response = await learned_client.post("/v1/route", json={"prompt": "x", "quality_tolerance": 2})
    assert response.status_code == 400 and "quality_tolerance" in response.text


def test_an_invalid_router_file_stops_startup_with_a_clear_error(upstream: FakeUpstream, tmp_path: Path) -> None:
    from app.errors import ConfigError
    from app.gateway import Gateway
    from app.settings.settings import Settings

    (tmp_path / "broken.npz").write_bytes(b"\x00" * 64)
    routing = {"learned": {"path": "broken.npz"}}
    path = write_config(tmp_path, {"models": fake_models(upstream.base_url), "routing": routing})
    with pytest.raises(ConfigError, match=r"routing\.learned\.path: .*broken\.npz: not a trained router file"):
        Gateway.build(Settings(config=path))
