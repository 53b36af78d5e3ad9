"""The one error tree of Switchyard.

Every failure that can reach a client is a ``GatewayError`` with an HTTP status and a stable ``type``.
Providers translate their SDK's typed exceptions into the ``UpstreamError`` branch; nothing else in the
gateway ever looks at a vendor exception or at error text.

```
GatewayError (500 internal_error)
├── InvalidRequestError (400 invalid_request_error)
│   ├── ModelNotFoundError (404 model_not_found)
│   ├── PayloadTooLargeError (413 payload_too_large)
│   └── UnprocessableError (422 unprocessable)
│       ├── BudgetExceededError (422 budget_exceeded)
│       └── MissingVariableError (422 missing_variable)
├── ConfigError (500 config_error)                       never sent to clients at run time
├── AuthenticationError (401 authentication_error)       missing, unknown, revoked or expired key
├── KeyBudgetExceededError (402 key_budget_exceeded)     the key's budget for the period is spent
├── PermissionDeniedError (403 permission_denied)        a model or route outside the key's rights
├── KeyNotFoundError (404 key_not_found)                 no virtual key with that id
├── RateLimitExceededError (429 rate_limit_exceeded, Retry-After)  rpm, tpm, max_parallel, failed logins
├── StateUnavailableError (503 state_unavailable)        the key store cannot be reached (unknown key)
├── NoModelAvailableError (503 no_model_available)
├── CapacityError (503 capacity_exceeded, Retry-After)   a local queue is full
├── DeadlineExceededError (504 deadline_exceeded)        the request's overall deadline passed
└── UpstreamError (502 upstream_error)                   provider, model, retryable, fallback_ok
    ├── UpstreamRateLimitError (429 rate_limited, Retry-After)
    ├── UpstreamAuthError (502 upstream_auth_error)
    ├── UpstreamTimeoutError (504 upstream_timeout)
    ├── UpstreamUnavailableError (503 upstream_unavailable)  overloaded (529) or 503
    ├── UpstreamConnectionError (502 upstream_connection_error)
    ├── UpstreamServerError (502 upstream_server_error)
    ├── UpstreamConfigError (502 upstream_model_not_found)   upstream 404: the catalogue entry is wrong
    ├── UpstreamBadRequestError (400 upstream_bad_request)
    │   └── ContextWindowExceededError (400 context_window_exceeded)
    ├── UpstreamStreamError (502 upstream_stream_error)   the stream broke after it started
    └── AllModelsFailedError (502 all_models_failed)       every candidate failed; carries each failure
```
"""

from __future__ import annotations

from typing import Any, ClassVar

from app.records import record


class GatewayError(Exception):
    """Base of every error that the gateway turns into an HTTP answer."""

    status_code: int = 500
    error_type: str = "internal_error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = {k: v for k, v in details.items() if v is not None}

    @property
    def headers(self) -> dict[str, str]:
        """Extra response headers (Retry-After on rate limits and capacity errors)."""
        return {}

    def to_body(self) -> dict[str, Any]:
        """The JSON error body: ``{"error": {"type", "message", ...details}}``."""
        return {"error": {"type": self.error_type, "message": self.message, **self.details}}


class InvalidRequestError(GatewayError):
    status_code = 400
    error_type = "invalid_request_error"


class ModelNotFoundError(InvalidRequestError):
    status_code = 404
    error_type = "model_not_found"


class PayloadTooLargeError(InvalidRequestError):
    status_code = 413
    error_type = "payload_too_large"


class UnprocessableError(InvalidRequestError):
    status_code = 422
    error_type = "unprocessable"


class BudgetExceededError(UnprocessableError):
    error_type = "budget_exceeded"


class MissingVariableError(UnprocessableError):
    error_type = "missing_variable"


class ConfigError(GatewayError):
    """The configuration file is invalid: names the file, the key and the reason."""

    error_type = "config_error"

    def __init__(self, path: str, key: str, reason: str) -> None:
        super().__init__(f"{path}: {key}: {reason}")
        self.path, self.key, self.reason = path, key, reason


class NoModelAvailableError(GatewayError):
    status_code = 503
    error_type = "no_model_available"


class _RetryAfterMixin:
    retry_after: float | None = None

    @property
    def headers(self) -> dict[str, str]:
        if self.retry_after is None:
            return {}
        return {"Retry-After": str(max(1, round(self.retry_after)))}


class _RetryAfterError(_RetryAfterMixin, GatewayError):
    """A refusal the client may retry after ``retry_after`` seconds (the ``Retry-After`` header)."""

    def __init__(self, message: str, retry_after: float | None = 1.0, **details: Any) -> None:
        super().__init__(message, **details)
        self.retry_after = retry_after


class AuthenticationError(GatewayError):
    """No key, or a key that is unknown, revoked or expired (never says which key)."""

    status_code = 401
    error_type = "authentication_error"


class KeyBudgetExceededError(GatewayError):
    """The virtual key's budget for its period is spent (or held by its requests in flight)."""

    status_code = 402
    error_type = "key_budget_exceeded"


class PermissionDeniedError(GatewayError):
    """The key may not do this: a model outside its ``models``, or a management call without the master key."""

    status_code = 403
    error_type = "permission_denied"


class KeyNotFoundError(GatewayError):
    status_code = 404
    error_type = "key_not_found"


class RateLimitExceededError(_RetryAfterError):
    """A key's rpm, tpm or max_parallel limit, or too many failed authentications from one address."""

    status_code = 429
    error_type = "rate_limit_exceeded"


class StateUnavailableError(_RetryAfterError):
    """The shared state store is unreachable and the key is not known from before."""

    status_code = 503
    error_type = "state_unavailable"


class CapacityError(_RetryAfterError):
    """A bounded local queue (for example the in-process model's) is full."""

    status_code = 503
    error_type = "capacity_exceeded"


class DeadlineExceededError(GatewayError):
    status_code = 504
    error_type = "deadline_exceeded"


class UpstreamError(GatewayError):
    """A provider call failed. ``retryable``: the same call may succeed later; ``fallback_ok``: another
    model may succeed where this one failed."""

    status_code = 502
    error_type = "upstream_error"
    retryable: ClassVar[bool] = True
    fallback_ok: ClassVar[bool] = True

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        model: str | None = None,
        upstream_status: int | None = None,
        **details: Any,
    ) -> None:
        super().__init__(message, provider=provider, model=model, upstream_status=upstream_status, **details)
        self.provider = provider
        self.model = model
        self.upstream_status = upstream_status


class UpstreamRateLimitError(_RetryAfterMixin, UpstreamError):
    status_code = 429
    error_type = "rate_limited"

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after
        if retry_after is not None:
            self.details["retry_after"] = retry_after


class UpstreamAuthError(UpstreamError):
    error_type = "upstream_auth_error"
    retryable = False


class UpstreamTimeoutError(UpstreamError):
    status_code = 504
    error_type = "upstream_timeout"


class UpstreamUnavailableError(UpstreamError):
    status_code = 503
    error_type = "upstream_unavailable"


class UpstreamConnectionError(UpstreamError):
    error_type = "upstream_connection_error"


class UpstreamServerError(UpstreamError):
    error_type = "upstream_server_error"


class UpstreamConfigError(UpstreamError):
    """The upstream does not know the model (404): a configuration error, not retried; another model
    may still answer."""

    error_type = "upstream_model_not_found"
    retryable = False


class UpstreamBadRequestError(UpstreamError):
    status_code = 400
    error_type = "upstream_bad_request"
    retryable = False
    fallback_ok = False


class ContextWindowExceededError(UpstreamBadRequestError):
    """The prompt is too long for this model; a model with a larger window may take it."""

    error_type = "context_window_exceeded"
    fallback_ok = True


class UpstreamStreamError(UpstreamError):
    error_type = "upstream_stream_error"


@record(slots=True)
class Failure:
    """One failed attempt, as reported to the client."""

    model: str
    provider: str
    error_type: str
    message: str
    status_code: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "provider": self.provider,
            "type": self.error_type,
            "message": self.message,
            "status_code": self.status_code,
        }

    @classmethod
    def from_error(cls, model: str, provider: str, error: GatewayError) -> Failure:
        return cls(model, provider, error.error_type, error.message, error.status_code)


class AllModelsFailedError(UpstreamError):
    error_type = "all_models_failed"

    def __init__(self, message: str, failures: list[Failure]) -> None:
        super().__init__(message, failures=[f.to_dict() for f in failures])
        self.failures = failures
        statuses = {f.status_code for f in failures}
        if len(statuses) == 1 and (only := statuses.pop()) in (429, 503, 504):
            self.status_code = only
