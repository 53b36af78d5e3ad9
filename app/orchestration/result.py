"""What an orchestration returns: the answer plus everything the client pays for and should know."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.domain import Completion, Usage
from app.errors import Failure


def sum_cost(costs: list[float | None]) -> float | None:
    """Total cost; None if any part has an unknown price (a partial sum would look too cheap)."""
    if any(c is None for c in costs):
        return None
    return float(sum(c for c in costs if c is not None))


@dataclass(frozen=True, slots=True)
class Outcome:
    """The chosen completion, the other answers made, the failures, and the totals over every call."""

    completion: Completion
    failures: tuple[Failure, ...] = ()
    others: tuple[Completion, ...] = ()
    retries: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def calls(self) -> tuple[Completion, ...]:
        return (self.completion, *self.others)

    @property
    def total_usage(self) -> Usage:
        total = Usage()
        for call in self.calls:
            total = total + call.usage
        return total

    @property
    def total_cost(self) -> float | None:
        return sum_cost([c.cost for c in self.calls])
