"""Request logs: one JSON line per request with the request id (echoed in ``x-request-id``), route, model,
provider, tokens, cost, latency and outcome; prompts and answers only when switched on; keys never."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.observability.context import annotate, current
from app.observability.logging import JsonFormatter, configure_logging, redact, register_secret
from app.observability.middleware import ObservabilityMiddleware
from tests.fakes.scripts import Reply
from tests.fakes.server import FakeUpstream
from tests.support import app_client, write_config

OPENAI_KEY = "sk-obslog-SECRET-4f1d2c3b4a5968778695a4b3"
VENDOR_KEY = "vendor-secret-Zq81Xw72Lm63"  # a key of no recognisable shape, under a custom variable name
PROMPT = "PROMPT-MARKER-3141 please answer"
ANSWER = "ANSWER-MARKER-2718"


class Lines(logging.Handler):
    """Keeps every formatted line."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines]  # every line must parse

    def access(self) -> list[dict[str, Any]]:
        return [r for r in self.records() if r["logger"] == "switchyard.access"]


@pytest.fixture
def captured() -> Iterator[Lines]:
    handler = configure_logging("info", handler=Lines())
    assert isinstance(handler, Lines)
    try:
        yield handler
    finally:
        logging.getLogger("switchyard").removeHandler(handler)


def config(upstream: FakeUpstream) -> dict[str, Any]:
    return {
        "models": {
            "log-openai": {
                "provider": "openai",
                "model": "gpt-log",
                "api_base": upstream.openai_base_url,
                "api_key_env": "OPENAI_API_KEY",
                "cost_per_1k_input": 1.0,
                "cost_per_1k_output": 2.0,
            },
            "log-vendor": {
                "provider": "openai_compatible",
                "model": "vendor-up",
                "api_base": upstream.openai_base_url,
                "api_key_env": "VENDOR_CREDS",
            },
        },
        "orchestration": {"max_retries": 0},
    }


@pytest.fixture
async def client(
    upstream: FakeUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, captured: Lines
) -> AsyncIterator[httpx.AsyncClient]:
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("VENDOR_CREDS", VENDOR_KEY)
    async with app_client(write_config(tmp_path, config(upstream))) as c:
        yield c


def assert_no_secrets(lines: Lines) -> None:
    assert lines.lines
    for line in lines.lines:
        json.loads(line)
        assert OPENAI_KEY not in line and VENDOR_KEY not in line
        assert "SECRET-4f1d" not in line and "Zq81Xw72" not in line


async def test_one_json_line_per_request_with_the_facts(
    client: httpx.AsyncClient, upstream: FakeUpstream, captured: Lines
) -> None:
    upstream.script("gpt-log", Reply(text=ANSWER, input_tokens=30, output_tokens=10))
    response = await client.post(
        "/v1/complete", json={"prompt": PROMPT, "model": "log-openai"}, headers={"x-request-id": "req-42.a:b"}
    )
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "req-42.a:b"
    [line] = captured.access()
    assert line["request_id"] == "req-42.a:b"
    assert line["level"] == "info" and line["method"] == "POST" and line["path"] == "/v1/complete"
    assert line["status"] == 200 and line["outcome"] == "success"
    assert (line["route"], line["model"], line["provider"]) == ("specific", "log-openai", "openai")
    assert (line["input_tokens"], line["output_tokens"]) == (30, 10)
    assert line["cost"] == pytest.approx((30 * 1.0 + 10 * 2.0) / 1000)
    assert line["latency_ms"] > 0
    assert "prompt" not in line and "answer" not in line
    assert all(PROMPT not in raw and ANSWER not in raw for raw in captured.lines)
    assert_no_secrets(captured)


async def test_generated_ids_are_unique_and_returned(client: httpx.AsyncClient, captured: Lines) -> None:
    ids = []
    for bad in (None, "has spaces", "x" * 300, 'quote"d'):
        headers = {"x-request-id": bad} if bad else {}
        response = await client.get("/v1/models", headers=headers)
        assert response.status_code == 200
        ids.append(response.headers["x-request-id"])
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert len(set(ids)) == len(ids)
    assert [line["request_id"] for line in captured.access()] == ids
    assert all(line["route"] is None and line["outcome"] == "success" for line in captured.access())


async def test_errors_are_logged_with_their_type_and_no_key(
    client: httpx.AsyncClient, upstream: FakeUpstream, captured: Lines
) -> None:
    upstream.valid_keys = {"some-other-key"}  # the fake answers 401 "Incorrect API key provided: sk-...7a3b"
    failed = await client.post("/v1/complete", json={"prompt": PROMPT, "model": "log-openai"})
    assert failed.status_code >= 400
    vendor = await client.post("/v1/complete", json={"prompt": PROMPT, "model": "log-vendor"})
    assert vendor.status_code >= 400
    invalid = await client.post("/v1/complete", json={"prompt": ""})
    assert invalid.status_code == 400
    too_big = await client.post("/v1/complete", content=b"x" * (33 * 1024 * 1024))
    assert too_big.status_code == 413
    lines = captured.access()
    assert len(lines) == 4
    assert [line["request_id"] for line in lines] == [
        r.headers["x-request-id"] for r in (failed, vendor, invalid, too_big)
    ]
    assert lines[0]["outcome"] == failed.json()["error"]["type"] == "upstream_auth_error"
    assert lines[0]["route"] == "specific" and lines[0]["status"] == failed.status_code
    assert lines[1]["outcome"] == "upstream_auth_error"
    assert (lines[2]["outcome"], lines[2]["status"]) == ("invalid_request_error", 400)
    assert (lines[3]["outcome"], lines[3]["status"]) == ("payload_too_large", 413)
    assert [r.api_key for r in upstream.requests] == [OPENAI_KEY, VENDOR_KEY]  # the keys really were used
    assert_no_secrets(captured)


async def test_probes_are_not_logged_at_info(client: httpx.AsyncClient, captured: Lines) -> None:
    assert (await client.get("/health")).status_code == 200
    assert (await client.get("/metrics")).status_code == 200
    assert captured.access() == []


async def test_prompts_and_answers_logged_only_when_switched_on(
    upstream: FakeUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, captured: Lines
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("VENDOR_CREDS", VENDOR_KEY)
    upstream.script("gpt-log", Reply(text=ANSWER, input_tokens=3, output_tokens=1))
    async with app_client(write_config(tmp_path, config(upstream)), log_prompts=True) as client:
        response = await client.post("/v1/complete", json={"prompt": PROMPT, "model": "log-openai"})
    assert response.status_code == 200
    [line] = captured.access()
    assert (line["prompt"], line["answer"]) == (PROMPT, ANSWER)
    assert_no_secrets(captured)


async def test_middleware_context_and_unhandled_errors() -> None:
    """Pure ASGI: the context is current inside the app; an exception still yields one 5xx line."""
    seen: list[str | None] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        ctx = current()
        seen.append(ctx.request_id if ctx else None)
        annotate(route="rules", model="m1")
        with pytest.raises(TypeError):
            annotate(routee="typo")  # unknown fields fail loudly
        if scope["path"] == "/boom":
            raise RuntimeError("kaboom")
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    handler = configure_logging("info", handler=Lines())
    try:
        wrapped = ObservabilityMiddleware(app)
        transport = httpx.ASGITransport(app=wrapped, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            ok = await client.get("/fine", headers={"x-request-id": "abc"})
            boom = await client.get("/boom")
        assert ok.status_code == 204 and ok.headers["x-request-id"] == "abc"
        assert boom.status_code == 500
        lines = handler.access()  # type: ignore[attr-defined]
        assert [(x["route"], x["model"], x["status"], x["outcome"]) for x in lines] == [
            ("rules", "m1", 204, "success"),
            ("rules", "m1", 500, "internal_error"),
        ]
        assert seen[0] == "abc" and seen[1] == lines[1]["request_id"]
        assert current() is None  # not leaked past the request
        annotate(route="ignored")  # outside a request: a no-op
    finally:
        logging.getLogger("switchyard").removeHandler(handler)


def test_formatter_redacts_registered_and_key_shaped_secrets() -> None:
    register_secret("custom-credential-value-99")
    record = logging.LogRecord(
        "switchyard.x",
        logging.WARNING,
        __file__,
        1,
        "upstream said %s / %s / %s",
        ("custom-credential-value-99", "sk-ant-api03-abcdefghijklmnopqrstuv", "Bearer abcdefghijklmnop"),
        None,
    )
    line = JsonFormatter().format(record)
    data = json.loads(line)
    assert data["level"] == "warning" and data["logger"] == "switchyard.x"
    assert "custom-credential" not in line and "abcdefghijklmnop" not in line
    assert data["msg"].count("[REDACTED]") == 3
    assert redact("a normal sentence about keys") == "a normal sentence about keys"
