"""Each SDK's typed exceptions map onto the gateway's error tree (by class and status, never by text)."""

from __future__ import annotations

import anthropic
import httpx
import openai
import pytest
from google.genai import errors as genai_errors

from app.errors import (
    AllModelsFailedError,
    ContextWindowExceededError,
    Failure,
    UpstreamAuthError,
    UpstreamBadRequestError,
    UpstreamConnectionError,
    UpstreamRateLimitError,
    UpstreamServerError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from app.providers.errors import (
    map_anthropic_error,
    map_google_error,
    map_openai_error,
    parse_retry_after,
    sanitize,
)

REQUEST = httpx.Request("POST", "http://127.0.0.1/v1/x")


def _response(status: int, headers: dict[str, str] | None = None, body: dict | None = None) -> httpx.Response:
    return httpx.Response(status, headers=headers or {}, json=body or {}, request=REQUEST)


def _openai(status: int, headers: dict[str, str] | None = None, code: str | None = None) -> openai.APIStatusError:
    body = {"message": "upstream says no", "type": "x", "code": code}
    client = openai.OpenAI(api_key="k", base_url="http://127.0.0.1:1")
    return client._make_status_error("upstream says no", body=body, response=_response(status, headers))


def _anthropic(status: int, kind: str = "api_error") -> anthropic.APIStatusError:
    body = {"type": "error", "error": {"type": kind, "message": "anthropic says no"}}
    client = anthropic.Anthropic(api_key="k", base_url="http://127.0.0.1:1")
    return client._make_status_error("anthropic says no", body=body, response=_response(status))


@pytest.mark.parametrize(
    ("status", "expected", "http_status"),
    [
        (429, UpstreamRateLimitError, 429),
        (401, UpstreamAuthError, 502),
        (403, UpstreamAuthError, 502),
        (400, UpstreamBadRequestError, 400),
        (500, UpstreamServerError, 502),
        (503, UpstreamUnavailableError, 503),
        (529, UpstreamUnavailableError, 503),
        (504, UpstreamTimeoutError, 504),
    ],
)
def test_openai_and_anthropic_status_errors(status: int, expected: type, http_status: int) -> None:
    for error in (
        map_openai_error(_openai(status), provider="openai", model="m"),
        map_anthropic_error(_anthropic(status), provider="anthropic", model="m"),
    ):
        assert type(error) is expected
        assert error.status_code == http_status
        assert error.upstream_status == status


def test_auth_failure_message_is_fixed_and_leaks_nothing() -> None:
    error = map_openai_error(_openai(401), provider="openai", model="m")
    assert error.message == "upstream rejected the credentials"
    assert not error.retryable


def test_rate_limit_carries_retry_after_header() -> None:
    error = map_openai_error(_openai(429, {"retry-after": "7"}), provider="openai", model="m")
    assert isinstance(error, UpstreamRateLimitError)
    assert error.retry_after == 7.0
    assert error.headers == {"Retry-After": "7"}


def test_bad_request_keeps_the_upstream_reason_and_is_not_a_fallback() -> None:
    error = map_openai_error(_openai(400), provider="openai", model="m")
    assert "upstream says no" in error.message
    assert not error.fallback_ok and not error.retryable


def test_openai_context_length_code_is_a_context_window_error() -> None:
    error = map_openai_error(_openai(400, code="context_length_exceeded"), provider="openai", model="m")
    assert isinstance(error, ContextWindowExceededError)
    assert error.fallback_ok and error.status_code == 400


def test_transport_errors() -> None:
    timeout = map_openai_error(openai.APITimeoutError(REQUEST), provider="openai", model="m")
    assert isinstance(timeout, UpstreamTimeoutError) and timeout.status_code == 504
    refused = map_anthropic_error(anthropic.APIConnectionError(request=REQUEST), provider="anthropic", model="m")
    assert isinstance(refused, UpstreamConnectionError) and refused.status_code == 502
    assert isinstance(map_google_error(httpx.ConnectError("x"), provider="google", model="m"), UpstreamConnectionError)
    assert isinstance(map_google_error(TimeoutError(), provider="google", model="m"), UpstreamTimeoutError)


@pytest.mark.parametrize(
    ("code", "status_text", "expected"),
    [
        (429, "RESOURCE_EXHAUSTED", UpstreamRateLimitError),
        (400, "INVALID_ARGUMENT", UpstreamBadRequestError),
        (403, "PERMISSION_DENIED", UpstreamAuthError),
        (500, "INTERNAL", UpstreamServerError),
        (503, "UNAVAILABLE", UpstreamUnavailableError),
    ],
)
def test_google_api_errors(code: int, status_text: str, expected: type) -> None:
    body = {"error": {"code": code, "message": "gemini says no", "status": status_text}}
    exc = genai_errors.APIError(code, body, _response(code, {"Retry-After": "3"}, body))
    error = map_google_error(exc, provider="google", model="m")
    assert type(error) is expected
    if expected is UpstreamRateLimitError:
        assert error.retry_after == 3.0


def test_anthropic_in_stream_error_event_maps_by_error_type() -> None:
    exc = anthropic.APIError("overloaded", REQUEST, body={"type": "error", "error": {"type": "overloaded_error"}})
    assert isinstance(map_anthropic_error(exc, provider="anthropic", model="m"), UpstreamUnavailableError)


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
