"""Errors answered by the pure-ASGI guards before the app runs are in the caller's protocol."""

from __future__ import annotations

import orjson
import pytest

from app.api.errors import asgi_error, speaks_anthropic
from app.api.request_guard import ShuttingDownError
from app.errors import PayloadTooLargeError, RateLimitExceededError


@pytest.mark.parametrize(
    ("path", "headers", "anthropic"),
    [
        ("/v1/messages", [], True),
        ("/v1/messages/count_tokens", [], True),
        ("/v1/models", [(b"anthropic-version", b"2023-06-01")], True),
        ("/v1/models", [], False),
        ("/v1/chat/completions", [], False),
        ("/v1/messagesx", [], False),
    ],
)
def test_who_speaks_anthropic(path: str, headers: list[tuple[bytes, bytes]], anthropic: bool) -> None:
    assert speaks_anthropic({"path": path, "headers": headers}) is anthropic


def test_anthropic_callers_get_anthropic_statuses_and_types() -> None:
    scope = {"path": "/v1/messages", "headers": []}
    start, body = asgi_error(scope, ShuttingDownError("the gateway is shutting down"), ((b"connection", b"close"),))
    assert start["status"] == 529  # Anthropic's overloaded
    assert orjson.loads(body["body"])["error"]["type"] == "overloaded_error"
    assert (b"connection", b"close") in start["headers"]
    start, body = asgi_error(scope, PayloadTooLargeError("too big"))
    assert start["status"] == 413 and orjson.loads(body["body"])["error"]["type"] == "request_too_large"


def test_openai_callers_get_the_gateway_shape_with_retry_after() -> None:
    start, body = asgi_error({"path": "/v1/chat/completions", "headers": []}, RateLimitExceededError("slow", 2.4))
    assert start["status"] == 429 and (b"retry-after", b"2") in start["headers"]
    error = orjson.loads(body["body"])["error"]
    assert error["type"] == "rate_limit_exceeded" and error["message"] == "slow"
