"""``POST /v1/feedback``: a score recorded against an answered request's routing decision in the shared
state store (the embedded SQLite store here), and ``switchyard router train --from-feedback`` on it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.cli import main
from app.routing.learned import LearnedRouter
from tests.fakes.server import FakeUpstream
from tests.support import app_client, fake_models, write_config


def config(upstream: FakeUpstream, tmp_path: Path, **feedback: Any) -> Path:
    routing = {"feedback": {"enabled": True, **feedback}, "tasks": {"creative": "gpt-4o"}}
    return write_config(tmp_path, {"models": fake_models(upstream.base_url), "routing": routing})


async def complete(client: httpx.AsyncClient, body: dict[str, Any]) -> str:
    response = await client.post("/v1/complete", json=body)
    assert response.status_code == 200, response.text
    return response.headers["x-request-id"]


async def test_feedback_is_recorded_against_the_decision_and_model(
    upstream: FakeUpstream, tmp_path: Path, provider_keys: dict[str, str]
) -> None:
    state = tmp_path / "state.db"
    async with app_client(config(upstream, tmp_path), state_path=state) as client:
        request_id = await complete(client, {"prompt": "Write a poem about rain", "routing": "task"})
        response = await client.post("/v1/feedback", json={"request_id": request_id, "score": 0.75, "comment": "ok"})
        assert response.status_code == 200, response.text
        assert response.json() == {"request_id": request_id, "recorded": True, "model": "gpt-4o", "strategy": "task"}
        gateway = client._transport.app.state.gateway  # type: ignore[attr-defined]
        store = await gateway.state_store()
        from app.routing.feedback import export_rows

        (row,) = await export_rows(store)
    assert row["request_id"] == request_id and row["score"] == 0.75 and row["comment"] == "ok"
    assert row["strategy"] == "task" and row["model"] == "gpt-4o" and row["details"]["task"] == "creative"
    assert "prompt" not in row  # prompts are kept only when the operator enables it


async def test_unknown_request_and_bad_scores_are_4xx(
    upstream: FakeUpstream, tmp_path: Path, provider_keys: dict[str, str]
) -> None:
    async with app_client(config(upstream, tmp_path), state_path=tmp_path / "state.db") as client:
        missing = await client.post("/v1/feedback", json={"request_id": "nope-123", "score": 1})
        assert missing.status_code == 404 and missing.json()["error"]["type"] == "request_not_found"
        for body in ({"request_id": "x", "score": 1.5}, {"request_id": "x"}, {"request_id": "a b", "score": 1}):
            bad = await client.post("/v1/feedback", json=body)
            assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error", body


async def test_feedback_is_on_by_default_and_can_be_switched_off(
    upstream: FakeUpstream, tmp_path: Path, provider_keys: dict[str, str]
) -> None:
    path = write_config(tmp_path, {"models": fake_models(upstream.base_url)})
    async with app_client(path, state_path=tmp_path / "state.db") as client:
        request_id = await complete(client, {"prompt": "hello"})
        response = await client.post("/v1/feedback", json={"request_id": request_id, "score": 1})
    assert response.status_code == 200 and response.json()["recorded"] is True
    off = write_config(
        tmp_path, {"models": fake_models(upstream.base_url), "routing": {"feedback": {"enabled": False}}}
    )
    async with app_client(off, state_path=tmp_path / "off.db") as client:
        request_id = await complete(client, {"prompt": "hello"})
        response = await client.post("/v1/feedback", json={"request_id": request_id, "score": 1})
    assert response.status_code == 404 and response.json()["error"]["type"] == "feedback_disabled"
    assert not (tmp_path / "off.db").exists()  # nothing was written for it


async def test_train_from_feedback_with_kept_prompts(
    upstream: FakeUpstream, tmp_path: Path, provider_keys: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "state.db"
    path = config(upstream, tmp_path, keep_prompts=True)
    async with app_client(path, state_path=state) as client:
        for i, (prompt, model, score) in enumerate(
            [("Write a poem about rain", "gpt-4o", 1.0), ("hi there", "gpt-4o-mini", 1.0)] * 3
        ):
            request_id = await complete(client, {"prompt": f"{prompt} #{i}", "model": model})
            response = await client.post("/v1/feedback", json={"request_id": request_id, "score": score})
            assert response.status_code == 200
    monkeypatch.setenv("SWITCHYARD_STATE_PATH", str(state))
    out, export = tmp_path / "router.npz", tmp_path / "feedback.jsonl"
    args = ["router", "train", "--from-feedback", "--export", str(export), "--out", str(out), "--config", str(path)]
    assert await asyncio.to_thread(main, args) == 0  # the CLI runs its own event loop
    rows = [json.loads(line) for line in export.read_text().splitlines()]
    assert len(rows) == 6 and rows[0]["prompt"] == "Write a poem about rain #0" and rows[0]["model"] == "gpt-4o"
    assert set(LearnedRouter.load(out).models) == {"gpt-4o", "gpt-4o-mini"}


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
async def test_decisions_and_feedback_are_shared_through_either_store(
    upstream: FakeUpstream, tmp_path: Path, provider_keys: dict[str, str], kind: str
) -> None:
    """Two gateways (two workers or replicas) on one store: feedback sent to the other one finds the
    decision, and the export lists it once."""
    from app.routing.feedback import export_rows
    from tests.governance.support import REDIS, RedisServer

    if kind == "redis" and REDIS is None:
        pytest.skip("redis-server not installed (apt-get install redis-server)")
    server = RedisServer().start() if kind == "redis" else None
    try:
        store_settings: dict[str, Any] = {"state_path": tmp_path / "state.db"}
        if server is not None:
            store_settings["redis_url"] = server.url
        path = config(upstream, tmp_path)
        async with app_client(path, **store_settings) as first, app_client(path, **store_settings) as second:
            request_id = await complete(first, {"prompt": "Summarize this paragraph for me", "routing": "task"})
            await first._transport.app.state.gateway.feedback_log.drain()  # type: ignore[attr-defined]
            response = await second.post("/v1/feedback", json={"request_id": request_id, "score": 0.5})
            assert response.status_code == 200, response.text
            gateway = second._transport.app.state.gateway  # type: ignore[attr-defined]
            rows = await export_rows(await gateway.state_store())
        assert [(r["request_id"], r["score"], r["strategy"]) for r in rows] == [(request_id, 0.5, "task")]
    finally:
        if server is not None:
            server.stop()
