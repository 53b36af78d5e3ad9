"""The OpenAI chat completions codec, error answers: OpenAI's ``{"error": {...}}`` bodies, compatible
servers' variants and non-JSON bodies into typed errors (``OpenAICodec.error``)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from app.errors import (
    ContextWindowExceededError,
    UpstreamAuthError,
    UpstreamBadRequestError,
    UpstreamConfigError,
    UpstreamRateLimitError,
    UpstreamServerError,
    UpstreamUnavailableError,
)
from app.providers.base import HttpAnswer
from app.providers.errors import AUTH_MESSAGE, DEFAULT_RETRY_AFTER_S
from app.providers.openai import CODEC
from app.providers.openai_compatible import CODEC as COMPAT
from tests.unit.providers.openai_payloads import COMPAT_TARGET, TARGET


def _answer(status: int, body: bytes | dict[str, Any], headers: dict[str, str] | None = None) -> HttpAnswer:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return HttpAnswer(status, headers or {"content-type": "application/json"}, raw)


def _openai_error(message: str, err_type: str, code: str | None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": err_type, "param": param, "code": code}}


ERROR_CASES = [
    (
        "401 invalid key",
        _answer(
            401, _openai_error("Incorrect API key provided: sk-abc***wxyz.", "invalid_request_error", "invalid_api_key")
        ),
        UpstreamAuthError,
    ),
    (
        "404 model",
        _answer(404, _openai_error("The model `gpt-9` does not exist", "invalid_request_error", "model_not_found")),
        UpstreamConfigError,
    ),
    (
        "400 context",
        _answer(
            400,
            _openai_error(
                "This model's maximum context length is 128000 tokens.",
                "invalid_request_error",
                "context_length_exceeded",
                "messages",
            ),
        ),
        ContextWindowExceededError,
    ),
    (
        "400 string too long",
        _answer(400, _openai_error("string too long", "invalid_request_error", "string_above_max_length")),
        ContextWindowExceededError,
    ),
    (
        "400 plain",
        _answer(400, _openai_error("Invalid value for 'n'.", "invalid_request_error", None, "n")),
        UpstreamBadRequestError,
    ),
    (
        "429",
        _answer(429, _openai_error("Rate limit reached", "requests", "rate_limit_exceeded")),
        UpstreamRateLimitError,
    ),
    (
        "500 html",
        _answer(500, b"<html><body>500 Internal Server Error</body></html>", {"content-type": "text/html"}),
        UpstreamServerError,
    ),
    ("502 empty", _answer(502, b""), UpstreamServerError),
    (
        "503",
        _answer(503, _openai_error("The engine is currently overloaded", "server_error", None)),
        UpstreamUnavailableError,
    ),
    (
        "vllm top-level",
        _answer(400, {"object": "error", "message": "bad", "type": "BadRequestError", "code": 400}),
        UpstreamBadRequestError,
    ),
    ("string error", _answer(400, {"error": "bad things"}), UpstreamBadRequestError),
]


@pytest.mark.parametrize(("answer", "expected"), [c[1:] for c in ERROR_CASES], ids=[c[0] for c in ERROR_CASES])
def test_error_mapping(answer: HttpAnswer, expected: type) -> None:
    error = CODEC.error(answer, TARGET)
    assert type(error) is expected
    assert (error.provider, error.model, error.upstream_status) == ("openai", "gpt", answer.status)
    assert "sk-abc" not in error.message


def test_rate_limit_retry_after() -> None:
    bare = CODEC.error(_answer(429, _openai_error("slow down", "tokens", "rate_limit_exceeded")), TARGET)
    assert isinstance(bare, UpstreamRateLimitError) and bare.retry_after == DEFAULT_RETRY_AFTER_S
    told = CODEC.error(_answer(429, _openai_error("slow", "tokens", None), {"retry-after-ms": "2500"}), TARGET)
    assert isinstance(told, UpstreamRateLimitError) and told.retry_after == 2.5


def test_error_messages_keep_the_reason_but_not_hosts() -> None:
    body = _openai_error(
        "Invalid 'messages[1].content': see https://platform.openai.com/docs", "invalid_request_error", None
    )
    error = COMPAT.error(_answer(400, body), COMPAT_TARGET)
    assert "Invalid 'messages[1].content'" in error.message and "platform.openai.com" not in error.message
    assert error.provider == "openai_compatible"


def test_what_the_orchestrator_reads_from_the_errors() -> None:
    auth = CODEC.error(
        _answer(401, _openai_error("Incorrect API key", "invalid_request_error", "invalid_api_key")), TARGET
    )
    assert auth.message == AUTH_MESSAGE and not auth.retryable
    bad = CODEC.error(_answer(400, _openai_error("Invalid value for 'n'.", "invalid_request_error", None)), TARGET)
    assert "Invalid value for 'n'." in bad.message and not bad.fallback_ok and bad.status_code == 400
    long = CODEC.error(
        _answer(400, _openai_error("too long", "invalid_request_error", "context_length_exceeded")), TARGET
    )
    assert long.fallback_ok and long.status_code == 400
    html = CODEC.error(_answer(500, b"<html>oops</html>", {"content-type": "text/html"}), TARGET)
    assert html.retryable and html.status_code == 502
    # the invalid_api_key code is an auth failure whatever the status
    wrong_key_as_400 = CODEC.error(
        _answer(400, _openai_error("bad key", "invalid_request_error", "invalid_api_key")), TARGET
    )
    assert isinstance(wrong_key_as_400, UpstreamAuthError)
