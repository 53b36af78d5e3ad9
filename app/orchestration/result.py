"""What an orchestration returns: the answer plus everything the client pays for and should know.

Totals count every call made for the request: the answer, the other answers (losers that finished, the
candidates of consensus, the judge) and the calls that were cut off. A call cut off mid-flight (a race or
hedge loser cancelled, a per-call timeout, the request deadline) has no usage report from its provider; it
is counted as a ``Charge`` with the prompt's *estimated* input tokens (``app.tokens`` heuristic; the
prompt was sent, so providers may bill it) and 0 output tokens, flagged ``estimated``. Failed calls that
got an error answer (4xx/5xx) are counted as 0: providers do not bill them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.domain import Completion, Usage
from app.errors import Failure
from app.records import record


def sum_cost(costs: list[float | None]) -> float | None:
    """Total cost; None if any part has an unknown price (a partial sum would look too cheap)."""
    if any(c is None for c in costs):
        return None
    return float(sum(c for c in costs if c is not None))


@record(slots=True)
class Charge:
    """A call that produced no completion but may be billed: ``reason`` is cancelled or timeout."""

    model: str
    provider: str
    usage: Usage
    cost: float | None
    reason: str
    estimated: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "provider": self.provider,
            "reason": self.reason,
            "tokens": {"input": self.usage.input_tokens, "output": self.usage.output_tokens},
            "cost": self.cost,
            "estimated": self.estimated,
        }


@record(slots=True)
class Outcome:
    """The chosen completion, the other answers made, the failures, and the totals over every call."""

    completion: Completion
    failures: tuple[Failure, ...] = ()
    others: tuple[Completion, ...] = ()
    retries: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    charges: tuple[Charge, ...] = ()

    @property
    def calls(self) -> tuple[Completion, ...]:
        return (self.completion, *self.others)

    @property
    def total_usage(self) -> Usage:
        total = Usage()
        for call in self.calls:
            total = total + call.usage
        for charge in self.charges:
            total = total + charge.usage
        return total

    @property
    def total_cost(self) -> float | None:
        return sum_cost([c.cost for c in self.calls] + [c.cost for c in self.charges])

    def response_fields(self) -> dict[str, Any]:
        """The orchestration fields of the ``/v1/complete`` response (strategy, retries, candidates...)."""
        fields: dict[str, Any] = {
            "strategy": self.extra.get("strategy"),
            "retries": self.retries,
            "attempts": dict(self.extra.get("attempts", {})),
            "cancelled": [c.to_dict() for c in self.charges],
            "totals_estimated": any(c.estimated for c in self.charges),
        }
        for key in ("candidates", "agreement", "selector", "judge", "hedge"):
            if key in self.extra:
                fields[key] = self.extra[key]
        return fields


@dataclass
class Ledger:
    """Mutable record of one request's calls, shared by the concurrent parts of an orchestration."""

    completions: list[Completion] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    charges: list[Charge] = field(default_factory=list)
    attempts: dict[str, int] = field(default_factory=dict)
    retries: int = 0

    def attempted(self, model: str) -> None:
        self.attempts[model] = self.attempts.get(model, 0) + 1

    def outcome(self, chosen: Completion, **extra: Any) -> Outcome:
        """The outcome with ``chosen`` as the answer; every other completion is counted under ``others``."""
        others = tuple(c for c in self.completions if c is not chosen)
        info = {"attempts": dict(self.attempts), **extra}
        return Outcome(chosen, tuple(self.failures), others, self.retries, info, tuple(self.charges))

    @property
    def total_usage(self) -> Usage:
        total = Usage()
        for part in [*(c.usage for c in self.completions), *(c.usage for c in self.charges)]:
            total = total + part
        return total

    @property
    def total_cost(self) -> float | None:
        return sum_cost([c.cost for c in self.completions] + [c.cost for c in self.charges])
