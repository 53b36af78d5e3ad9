"""Retry decisions and exponential backoff with full jitter, honouring ``Retry-After``.

Backoff before retry ``n`` (0-based) is drawn uniformly from ``[0, min(max_s, base_s * 2**n)]`` ("full
jitter", as in the AWS architecture blog's analysis). A rate limit's ``Retry-After`` is a floor: we wait at
least that long. A retry is skipped (the caller moves on to the next model) when the wait would not end
before the request's deadline, or when ``Retry-After`` is longer than ``max_retry_after_s``.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from app.errors import UpstreamError, UpstreamRateLimitError
from app.records import record
from app.settings.orchestration import OrchestrationConfig

Uniform = Callable[[float, float], float]
"""A source of uniform random numbers in ``[a, b]``, injectable for deterministic tests."""


@record(slots=True)
class RetryPolicy:
    max_retries: int = 2
    base_s: float = 0.25
    max_s: float = 8.0
    max_retry_after_s: float = 30.0

    @classmethod
    def from_config(cls, config: OrchestrationConfig) -> RetryPolicy:
        return cls(config.max_retries, config.backoff_base_s, config.backoff_max_s, config.max_retry_after_s)


def backoff_ceiling(retry: int, policy: RetryPolicy) -> float:
    """The upper bound of the jittered wait before retry number ``retry`` (0-based)."""
    return min(policy.max_s, policy.base_s * (2.0 ** min(retry, 62)))


def backoff_delay(
    retry: int, policy: RetryPolicy, uniform: Uniform = random.uniform, retry_after: float | None = None
) -> float:
    """Seconds to wait before retry ``retry``: full jitter, but never less than ``retry_after``."""
    jittered = uniform(0.0, backoff_ceiling(retry, policy))
    return max(jittered, retry_after or 0.0)


def retry_delay(
    error: UpstreamError,
    retry: int,
    policy: RetryPolicy,
    remaining_s: float | None,
    uniform: Uniform = random.uniform,
) -> float | None:
    """How long to wait before retrying after ``error``, or None when the call must not be retried:
    the error is not retryable, the retry budget is spent, ``Retry-After`` is too long, or the wait would
    outlast the request's deadline (``remaining_s``; None means no deadline)."""
    if not error.retryable or retry >= policy.max_retries:
        return None
    retry_after = error.retry_after if isinstance(error, UpstreamRateLimitError) else None
    if retry_after is not None and retry_after > policy.max_retry_after_s:
        return None
    delay = backoff_delay(retry, policy, uniform, retry_after)
    if remaining_s is not None and delay >= remaining_s:
        return None
    return delay
