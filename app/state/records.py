"""What the state store keeps and answers: virtual-key records and the results of governance operations.

Times are Unix seconds (floats). A key's budget period is fixed-length and anchored: the current period is
``anchor + k * period`` for the largest ``k`` that is not in the future (``anchor`` is the key's creation,
or the moment its ``budget_period`` last changed). A key with no period has one lifetime period.
"""

from __future__ import annotations

import math
from dataclasses import asdict, field, replace
from typing import Any, Literal

from app.records import record

PERIODS: dict[str, float] = {"1h": 3600.0, "1d": 86400.0, "7d": 7 * 86400.0, "30d": 30 * 86400.0}
RATE_WINDOW_S = 60.0  # rpm and tpm are counted over a sliding window of this length
WINDOW_SLICES = 60
"""A rate window is kept as this many slices per window length (1 s of a 60 s window): each slice holds the
requests or tokens counted in it and the time of its latest event, and counts until that time plus the window.
Reading and updating a window costs at most ``WINDOW_SLICES + 1`` rows whatever the key's traffic, where a log
of single events cost one row per request of the last minute (120,000 at 2,000 req/s). Counts are exact; an
event counts for up to one slice longer than the window (never shorter: a limit never lets more through), and
a retry-after is the time until enough of the window has left it, at most the window."""

Refusal = Literal["missing", "revoked", "expired", "rpm", "tpm", "parallel", "budget"]


def window_slice(now: float, window_s: float) -> int:
    """The index of the slice of a ``window_s`` rate window that holds time ``now``."""
    return math.floor(now * WINDOW_SLICES / window_s)


def window_retry(slices: list[tuple[int, float]], limit: int, now: float, window_s: float) -> float | None:
    """None while the live ``slices`` ((amount, latest event time), oldest first) hold less than ``limit``;
    else the seconds until enough of them have left the window that they do."""
    used = sum(amount for amount, _ in slices)
    if used < limit:
        return None
    for amount, latest in slices:
        used -= amount
        if used < limit:
            return latest + window_s - now
    return window_s


def period_seconds(period: str | None) -> float | None:
    return None if period is None else PERIODS[period]


def period_start(anchor: float, period_s: float | None, now: float) -> float:
    """The start of the period that contains ``now`` (``anchor`` for a lifetime budget)."""
    if period_s is None or now <= anchor:
        return anchor
    return anchor + math.floor((now - anchor) / period_s) * period_s


@record(slots=True)
class KeyRecord:
    """A virtual key as stored: its limits and the SHA-256 of its secret (never the secret)."""

    id: str
    name: str
    secret_hash: str
    created_at: float
    models: tuple[str, ...] | None = None  # None: every model
    rpm: int | None = None
    tpm: int | None = None
    max_parallel: int | None = None
    budget_usd: float | None = None
    budget_period: str | None = None  # "1h" | "1d" | "7d" | "30d" | None (lifetime)
    expires_at: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    revoked_at: float | None = None
    period_anchor: float = 0.0  # see the module docstring; 0: created_at
    hint: str = ""  # the secret's last characters, to tell keys apart in listings

    @property
    def anchor(self) -> float:
        return self.period_anchor or self.created_at

    @property
    def period_s(self) -> float | None:
        return period_seconds(self.budget_period)

    def is_expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def permits(self, model: str) -> bool:
        return self.models is None or model in self.models

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["models"] = None if self.models is None else list(self.models)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> KeyRecord:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        models = known.get("models")
        known["models"] = None if models is None else tuple(models)
        known["metadata"] = dict(known.get("metadata") or {})
        return cls(**known)

    def with_changes(self, changes: dict[str, Any], now: float) -> KeyRecord:
        """This record with ``changes`` applied; a new ``budget_period`` starts a new period now."""
        updated = replace(self, **changes)
        if "budget_period" in changes and changes["budget_period"] != self.budget_period:
            updated = replace(updated, period_anchor=now)
        return updated


@record(slots=True)
class Admission:
    """The answer of ``admit`` and ``reserve``: ``ok``, or the refusal and when to retry."""

    ok: bool
    refusal: Refusal | None = None
    retry_after: float | None = None
    spent: float = 0.0  # settled spend in the current period
    reserved: float = 0.0  # held by calls in flight
    period_start: float = 0.0
    leased: bool = False  # admit took a max_parallel lease (release it when the request ends)


@record(slots=True)
class KeyUsage:
    """A key's spend and current usage, for ``GET /v1/keys/{id}``."""

    period_start: float
    spent_usd: float
    reserved_usd: float
    total_spend_usd: float
    spend_by_model: dict[str, float]
    requests_in_window: int
    tokens_in_window: int
    parallel: int


def refused(refusal: Refusal, retry_after: float | None = None, **kw: Any) -> Admission:
    return Admission(False, refusal, retry_after, **kw)
