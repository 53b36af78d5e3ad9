"""Virtual keys: their secrets (``sk-sy-`` + 256 random bits, stored only as SHA-256), the management API's
request bodies, and how a key is shown (never its secret, except once at creation)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from app.state.records import RATE_WINDOW_S, KeyRecord, KeyUsage

KEY_PREFIX = "sk-sy-"
BudgetPeriod = Literal["1h", "1d", "7d", "30d"]
MAX_METADATA_BYTES = 16 * 1024


def new_secret() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def new_key_id() -> str:
    return "key_" + secrets.token_hex(8)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogateescape")).hexdigest()


def same_hash(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def hint_of(secret: str) -> str:
    return f"{KEY_PREFIX}...{secret[-4:]}"


def rfc3339(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _Limits(BaseModel):
    model_config = ConfigDict(extra="forbid")

    models: list[str] | None = Field(default=None, description="Catalogue models the key may use; null: all.")
    rpm: int | None = Field(default=None, ge=1, description="Requests per minute (sliding window).")
    tpm: int | None = Field(default=None, ge=1, description="Tokens per minute (sliding window).")
    max_parallel: int | None = Field(default=None, ge=1, description="Requests in flight at once.")
    budget_usd: float | None = Field(default=None, ge=0, allow_inf_nan=False, description="Spend limit per period.")
    budget_period: BudgetPeriod | None = Field(default=None, description="1h, 1d, 7d or 30d; null: lifetime.")
    expires_at: AwareDatetime | None = Field(default=None, description="RFC 3339; the key stops working then.")
    metadata: dict[str, Any] | None = None

    @field_validator("models")
    @classmethod
    def _models(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            value = list(dict.fromkeys(v.strip() for v in value))
            if not all(value):
                raise ValueError("model names must not be empty")
        return value

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and len(orjson.dumps(value)) > MAX_METADATA_BYTES:
            raise ValueError(f"metadata must be at most {MAX_METADATA_BYTES} bytes of JSON")
        return value

    def record_fields(self, fields: set[str]) -> dict[str, Any]:
        """The given fields as ``KeyRecord`` values."""
        out: dict[str, Any] = {}
        for name in fields:
            value = getattr(self, name)
            if name == "models":
                value = None if value is None else tuple(value)
            elif name == "expires_at":
                value = None if value is None else value.timestamp()
            elif name == "metadata":
                value = dict(value or {})
            out[name] = value
        return out


class KeyCreate(_Limits):
    """``POST /v1/keys``."""

    name: str = Field(min_length=1, max_length=128)

    def record(self, key_id: str, secret: str, now: float) -> KeyRecord:
        fields = self.record_fields(set(_Limits.model_fields))
        return KeyRecord(
            id=key_id,
            name=self.name,
            secret_hash=hash_secret(secret),
            created_at=now,
            hint=hint_of(secret),
            **fields,
        )


class KeyUpdate(_Limits):
    """``PATCH /v1/keys/{id}``: only the fields given change; null clears a limit."""

    name: str | None = Field(default=None, min_length=1, max_length=128)

    @model_validator(mode="after")
    def _name_not_null(self) -> KeyUpdate:
        if "name" in self.model_fields_set and self.name is None:
            raise ValueError("name cannot be null")
        return self

    def changes(self) -> dict[str, Any]:
        return self.record_fields(set(self.model_fields_set))


def key_view(record: KeyRecord, *, secret: str | None = None, usage: KeyUsage | None = None) -> dict[str, Any]:
    """A key as the management API shows it."""
    view: dict[str, Any] = {"id": record.id, "object": "api_key"}
    if secret is not None:
        view["key"] = secret
    view.update(
        name=record.name,
        key_hint=record.hint,
        models=None if record.models is None else list(record.models),
        rpm=record.rpm,
        tpm=record.tpm,
        max_parallel=record.max_parallel,
        budget_usd=record.budget_usd,
        budget_period=record.budget_period,
        expires_at=rfc3339(record.expires_at),
        metadata=record.metadata,
        created_at=rfc3339(record.created_at),
        revoked=record.revoked_at is not None,
        revoked_at=rfc3339(record.revoked_at),
    )
    if usage is not None:
        period_end = None if record.period_s is None else usage.period_start + record.period_s
        remaining = None if record.budget_usd is None else max(0.0, record.budget_usd - usage.spent_usd)
        view.update(
            spend_usd=usage.spent_usd,
            spend_period_start=rfc3339(usage.period_start),
            spend_period_end=rfc3339(period_end),
            budget_remaining_usd=remaining,
            reserved_usd=usage.reserved_usd,
            total_spend_usd=usage.total_spend_usd,
            spend_by_model=usage.spend_by_model,
            usage={
                "window_s": RATE_WINDOW_S,
                "requests_in_window": usage.requests_in_window,
                "tokens_in_window": usage.tokens_in_window,
                "parallel": usage.parallel,
            },
        )
    return view
