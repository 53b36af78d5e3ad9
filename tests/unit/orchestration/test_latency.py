"""p95 tracking and the hedge delay choice."""

from __future__ import annotations

import pytest

from app.orchestration.hedge import hedge_delay
from app.orchestration.latency import LatencyTracker, percentile
from app.orchestration.options import HedgeOptions
from app.settings.orchestration import OrchestrationConfig


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [([1.0], 0.95, 1.0), ([float(i) for i in range(1, 101)], 0.95, 95.0), ([3.0, 1.0, 2.0], 0.5, 2.0)],
)
def test_percentile_nearest_rank(values: list[float], q: float, expected: float) -> None:
    assert percentile(values, q) == expected


def test_tracker_window_is_bounded() -> None:
    tracker = LatencyTracker(size=3)
    for v in (10.0, 1.0, 2.0, 3.0):
        tracker.observe("m", v)
    assert tracker.count("m") == 3
    assert tracker.p95("m") == 3.0
    assert tracker.p95("m", min_samples=4) is None
    assert tracker.p95("other") is None


def test_hedge_delay_sources() -> None:
    config = OrchestrationConfig(hedge_delay_s=1.5, hedge_min_samples=2)
    tracker = LatencyTracker()
    assert hedge_delay("m", HedgeOptions(), config, tracker).source == "config"
    tracker.observe("m", 0.2)
    assert hedge_delay("m", HedgeOptions(), config, tracker).seconds == 1.5  # one sample is not enough
    tracker.observe("m", 0.4)
    delay = hedge_delay("m", HedgeOptions(), config, tracker)
    assert (delay.seconds, delay.source) == (0.4, "p95")
    assert hedge_delay("m", HedgeOptions(delay_s=0.1), config, tracker).source == "request"
    no_p95 = OrchestrationConfig(hedge_delay_s=1.5, hedge_use_p95=False, hedge_min_samples=1)
    assert hedge_delay("m", HedgeOptions(), no_p95, tracker).seconds == 1.5
