"""Shared error helpers: Retry-After parsing, message sanitising, the all-models-failed status (each codec's
error mapping is tested in tests/unit/providers/)."""

from __future__ import annotations

import pytest

from app.errors import AllModelsFailedError, Failure
from app.providers.errors import parse_retry_after, sanitize


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"Retry-After": "2"}, 2.0),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, None),
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(headers) == expected


def test_sanitize_redacts_keys_and_bounds_length() -> None:
    text = "Incorrect API key provided: sk-abcdefghijklmnop1234. Also my-secret-value here." + "x" * 1000
    clean = sanitize(text, secrets=("my-secret-value",))
    assert "sk-abcdefghijklmnop1234" not in clean
    assert "my-secret-value" not in clean
    assert len(clean) <= 500


def test_all_models_failed_uses_a_shared_status_or_502() -> None:
    rate = Failure("a", "openai", "rate_limited", "slow down", 429)
    server = Failure("b", "anthropic", "upstream_server_error", "boom", 502)
    assert AllModelsFailedError("x", [rate, rate]).status_code == 429
    assert AllModelsFailedError("x", [rate, server]).status_code == 502
    body = AllModelsFailedError("x", [rate, server]).to_body()
    assert [f["model"] for f in body["error"]["failures"]] == ["a", "b"]


@pytest.mark.parametrize(
    ("text", "gone", "kept"),
    [
        ("upstream connect error to http://10.0.3.7:8080/v1/chat: refused", ["10.0.3.7", "http://"], ["refused"]),
        ("no healthy upstream at vllm-0.inference.svc.cluster.local:8000", ["svc.cluster.local"], ["no healthy"]),
        ("backend 192.168.1.20 timed out", ["192.168.1.20"], ["timed out"]),
        ("failed to reach [fd00::1234:5678]:443", ["fd00::1234:5678"], ["failed to reach"]),
        ("The model gpt-4o-mini does not exist", [], ["gpt-4o-mini", "does not exist"]),
        ("model claude-3-5-sonnet-20241022 is overloaded", [], ["claude-3-5-sonnet-20241022"]),
    ],
)
def test_sanitize_keeps_the_reason_but_not_the_network(text: str, gone: list[str], kept: list[str]) -> None:
    clean = sanitize(text)
    for part in gone:
        assert part not in clean
    for part in kept:
        assert part in clean
