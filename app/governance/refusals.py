"""The errors access control answers with: 401 for a bad key, and the store's refusals of a request or a
reservation as 401, 402 or 429 (with ``Retry-After``)."""

from __future__ import annotations

from app.errors import AuthenticationError, GatewayError, KeyBudgetExceededError, RateLimitExceededError
from app.governance.keys import rfc3339
from app.observability.metrics import record_auth_failure, record_key_rejection
from app.state.records import Admission, KeyRecord

AUTH_MESSAGES = {
    "missing": ("missing API key: send Authorization: Bearer <key> or x-api-key: <key>", "missing_api_key"),
    "invalid": ("invalid API key", "invalid_api_key"),
    "revoked": ("this API key has been revoked", "revoked_api_key"),
    "expired": ("this API key has expired", "expired_api_key"),
}


def auth_error(reason: str) -> AuthenticationError:
    """The 401 for ``reason`` (a key of ``AUTH_MESSAGES``), counted in the metrics."""
    record_auth_failure(reason)
    message, code = AUTH_MESSAGES[reason]
    return AuthenticationError(message, code=code)


def refusal(record: KeyRecord, a: Admission, label: str) -> GatewayError:
    """The error for the store's refusal ``a`` of a request or reservation of ``record`` (metrics ``label``)."""
    reason = a.refusal or "refused"
    record_key_rejection(label, reason)
    if reason in ("missing", "revoked", "expired"):
        return auth_error("invalid" if reason == "missing" else reason)
    if reason == "budget":
        budget = record.budget_usd or 0.0
        if a.spent >= budget:
            message = f"this key's budget of ${budget:g} is spent for the current period"
            resets = None if record.period_s is None else rfc3339(a.period_start + record.period_s)
        else:
            message = f"this key's remaining budget (of ${budget:g}) is held by its requests in flight"
            resets = None
        return KeyBudgetExceededError(message, budget_usd=budget, spent_usd=round(a.spent, 9), period_resets_at=resets)
    limits = {
        "rpm": f"rate limit exceeded: {record.rpm} requests per minute",
        "tpm": f"rate limit exceeded: {record.tpm} tokens per minute",
        "parallel": f"rate limit exceeded: at most {record.max_parallel} requests in flight",
    }
    return RateLimitExceededError(limits.get(reason, "rate limit exceeded"), a.retry_after or 1.0, limit=reason)
