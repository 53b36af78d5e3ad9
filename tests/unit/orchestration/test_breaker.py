"""The circuit breaker state machine on an injected clock."""

from __future__ import annotations

from app.errors import (
    ContextWindowExceededError,
    UpstreamBadRequestError,
    UpstreamRateLimitError,
    UpstreamServerError,
    UpstreamTimeoutError,
)
from app.orchestration.breaker import BreakerBoard, CircuitBreaker, CircuitOpenError, counts_as_failure
from app.settings.orchestration import BreakerConfig


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(clock: Clock, **kw: object) -> tuple[CircuitBreaker, list[tuple[str, str]]]:
    changes: list[tuple[str, str]] = []
    config = BreakerConfig(**{"failure_threshold": 3, "min_calls": 100, "cooldown_s": 10.0, **kw})
    return CircuitBreaker("m", config, clock, lambda m, s: changes.append((m, s))), changes


def test_opens_after_a_run_of_failures_and_probes_after_cooldown() -> None:
    clock = Clock()
    breaker, changes = make(clock)
    for _ in range(2):
        assert breaker.allow()
        breaker.record_failure()
    assert breaker.state == "closed"
    breaker.record_success()  # a success resets the run
    for _ in range(3):
        assert breaker.allow()
        breaker.record_failure()
    assert breaker.state == "open"
    assert not breaker.allow()
    clock.now += 9.9
    assert breaker.state == "open" and breaker.retry_in > 0
    clock.now += 0.1
    assert breaker.state == "half_open"
    assert breaker.allow()  # the one probe
    assert not breaker.allow()  # a second caller waits for the probe
    breaker.record_success()
    assert breaker.state == "closed"
    assert changes == [("m", "open"), ("m", "half_open"), ("m", "closed")]


def test_failed_probe_reopens_for_another_cooldown() -> None:
    clock = Clock()
    breaker, changes = make(clock, failure_threshold=1)
    breaker.record_failure()
    clock.now += 10
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state == "open"
    clock.now += 5
    assert breaker.state == "open"
    clock.now += 5
    assert breaker.state == "half_open"
    assert changes == [("m", "open"), ("m", "half_open"), ("m", "open"), ("m", "half_open")]


def test_released_probe_lets_the_next_caller_probe() -> None:
    clock = Clock()
    breaker, _ = make(clock, failure_threshold=1)
    breaker.record_failure()
    clock.now += 10
    assert breaker.allow()
    breaker.release()  # the probe was cancelled: no verdict
    assert breaker.state == "half_open"
    assert breaker.allow()


def test_opens_on_error_rate_in_the_window() -> None:
    clock = Clock()
    breaker, _ = make(clock, failure_threshold=100, min_calls=4, error_rate_threshold=0.5, window_s=60.0)
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    assert breaker.state == "closed"  # 3 calls < min_calls
    breaker.record_success()
    assert breaker.state == "closed"  # 2 of 4 is 50%, but a success cannot open it
    breaker.record_failure()
    assert breaker.state == "open"  # 3 of 5


def test_old_calls_leave_the_window() -> None:
    clock = Clock()
    breaker, _ = make(clock, failure_threshold=100, min_calls=4, error_rate_threshold=0.5, window_s=60.0)
    for _ in range(3):
        breaker.record_failure()
    clock.now += 61
    breaker.record_success()
    breaker.record_success()
    breaker.record_failure()
    assert breaker.snapshot()["window_calls"] == 3
    assert breaker.state == "closed"


def test_disabled_breaker_never_blocks() -> None:
    clock = Clock()
    breaker, changes = make(clock, enabled=False, failure_threshold=1)
    for _ in range(5):
        breaker.record_failure()
        assert breaker.allow()
    assert changes == []


def test_board_reports_circuit_open_for_routing() -> None:
    clock = Clock()
    board = BreakerBoard(BreakerConfig(failure_threshold=1, cooldown_s=5.0), clock)
    assert board.state("a") == "closed" and board.unavailable_reason("a") is None
    board.get("a").record_failure()
    assert board.is_open("a") and board.unavailable_reason("a") == "circuit open"
    clock.now += 5
    assert not board.is_open("a") and board.state("a") == "half_open"


def test_which_errors_count() -> None:
    assert counts_as_failure(UpstreamServerError("x"))
    assert counts_as_failure(UpstreamTimeoutError("x"))
    assert counts_as_failure(UpstreamRateLimitError("x"))
    assert not counts_as_failure(UpstreamBadRequestError("x"))
    assert not counts_as_failure(ContextWindowExceededError("x"))
    assert not counts_as_failure(CircuitOpenError("x"))
