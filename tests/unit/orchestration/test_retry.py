"""Backoff maths and retry decisions (pure, with an injected random source)."""

from __future__ import annotations

import pytest

from app.errors import (
    ContextWindowExceededError,
    UpstreamAuthError,
    UpstreamBadRequestError,
    UpstreamRateLimitError,
    UpstreamServerError,
    UpstreamTimeoutError,
)
from app.orchestration.retry import RetryPolicy, backoff_ceiling, backoff_delay, retry_delay

POLICY = RetryPolicy(max_retries=3, base_s=0.5, max_s=4.0, max_retry_after_s=10.0)


def upper(a: float, b: float) -> float:
    """A 'random' source that always draws the top of the range."""
    return b


def lower(a: float, b: float) -> float:
    return a


@pytest.mark.parametrize(("retry", "ceiling"), [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (4, 4.0), (100, 4.0)])
def test_ceiling_doubles_then_caps(retry: int, ceiling: float) -> None:
    assert backoff_ceiling(retry, POLICY) == ceiling


def test_full_jitter_draws_between_zero_and_the_ceiling() -> None:
    seen: list[tuple[float, float]] = []

    def record(a: float, b: float) -> float:
        seen.append((a, b))
        return (a + b) / 2

    assert backoff_delay(2, POLICY, record) == 1.0
    assert seen == [(0.0, 2.0)]
    assert backoff_delay(2, POLICY, lower) == 0.0


@pytest.mark.parametrize(
    ("retry_after", "uniform", "expected"),
    [(3.0, lower, 3.0), (3.0, upper, 3.0), (0.1, upper, 0.5), (None, upper, 0.5), (0.0, lower, 0.0)],
)
def test_retry_after_is_a_floor(retry_after: float | None, uniform, expected: float) -> None:
    assert backoff_delay(0, POLICY, uniform, retry_after) == expected


def _rate_limited(after: float | None) -> UpstreamRateLimitError:
    return UpstreamRateLimitError("slow down", retry_after=after, provider="openai", model="m")


@pytest.mark.parametrize(
    ("error", "retry", "remaining", "expected"),
    [
        (UpstreamServerError("boom"), 0, None, 0.5),
        (UpstreamTimeoutError("slow"), 1, 100.0, 1.0),
        (UpstreamServerError("boom"), 3, None, None),  # budget spent (max_retries=3)
        (UpstreamBadRequestError("bad"), 0, None, None),  # never retried
        (ContextWindowExceededError("long"), 0, None, None),  # fall back, do not retry
        (UpstreamAuthError("key"), 0, None, None),
        (_rate_limited(2.0), 0, None, 2.0),  # Retry-After honoured
        (_rate_limited(2.0), 0, 1.5, None),  # ...unless the deadline comes first
        (_rate_limited(11.0), 0, None, None),  # too long to wait: fall back
        (UpstreamServerError("boom"), 2, 1.0, None),  # a 2s wait would outlast the deadline
        (UpstreamServerError("boom"), 2, 2.5, 2.0),
    ],
)
def test_retry_delay(error, retry: int, remaining: float | None, expected: float | None) -> None:
    assert retry_delay(error, retry, POLICY, remaining, upper) == expected
