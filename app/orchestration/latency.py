"""Recent successful-call latencies per model, for hedging on the observed p95."""

from __future__ import annotations

import math
from collections import deque


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) by the nearest-rank method; ``values`` must not be empty."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


class LatencyTracker:
    """A bounded window of the last ``size`` latencies (seconds) of each model."""

    def __init__(self, size: int = 200) -> None:
        self.size = size
        self._samples: dict[str, deque[float]] = {}

    def observe(self, model: str, seconds: float) -> None:
        self._samples.setdefault(model, deque(maxlen=self.size)).append(seconds)

    def count(self, model: str) -> int:
        return len(self._samples.get(model, ()))

    def p95(self, model: str, min_samples: int = 1) -> float | None:
        """The model's p95 latency, or None with fewer than ``min_samples`` observations."""
        samples = self._samples.get(model)
        if not samples or len(samples) < min_samples:
            return None
        return percentile(list(samples), 0.95)
