"""Circuit breakers, one per model, on an injectable clock.

States: ``closed`` (calls flow) -> ``open`` after ``failure_threshold`` failures in a row, or when at least
``min_calls`` calls ended in the last ``window_s`` seconds (counted in slices of 1% of it) and the share of
failures among them reached ``error_rate_threshold``. ``open`` -> ``half_open`` once ``cooldown_s`` has
passed (seen lazily, on the next look): one probe call is let through; its success closes the circuit, its
failure reopens it for another cooldown. Only errors that say something about the model's health count as
failures: a bad request (400) or a cancelled call (a race loser, a passed deadline) count as neither failure
nor success.

Transitions decided *here* (opened by failures, closed by a successful probe) are reported to the board's
``on_transition`` hook with the seconds the circuit stays open, so they can be shared with other worker
processes (``breaker_sync.py``); transitions learnt from elsewhere are applied with ``apply_open`` /
``apply_close``, which do not report back.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Literal

from app.errors import UpstreamBadRequestError, UpstreamError, UpstreamUnavailableError
from app.settings.orchestration import BreakerConfig

State = Literal["closed", "half_open", "open"]
Clock = Callable[[], float]
OnChange = Callable[[str, State], None]
OnTransition = Callable[[str, State, float], None]  # (model, "open" | "closed", seconds open)
WINDOW_SLICES = 100  # the error-rate window is counted in slices of 1% of window_s


class CircuitOpenError(UpstreamUnavailableError):
    """The model's circuit is open: it was not called."""

    error_type = "circuit_open"
    retryable = False


def counts_as_failure(error: UpstreamError) -> bool:
    """Does ``error`` say the model is unhealthy? Client-side bad requests do not."""
    return not isinstance(error, UpstreamBadRequestError | CircuitOpenError)


class CircuitBreaker:
    """The state machine of one model's circuit."""

    def __init__(
        self,
        model: str,
        config: BreakerConfig,
        clock: Clock = time.monotonic,
        on_change: OnChange | None = None,
        on_transition: OnTransition | None = None,
    ) -> None:
        self.model, self.config, self._clock, self._on_change = model, config, clock, on_change
        self._on_transition = on_transition
        self._state: State = "closed"
        self._opened_at = 0.0
        self._consecutive = 0
        # the window's calls counted per slice of window_s / WINDOW_SLICES: [slice index, calls, failures]
        # (memory and time per call do not grow with the request rate, as a list of every call did)
        self._window: deque[list[int]] = deque()
        self._slice_s = config.window_s / WINDOW_SLICES
        self._probe_in_flight = False

    @property
    def state(self) -> State:
        """The current state (an open circuit whose cooldown has passed reads as half-open)."""
        if self._state == "open" and self._clock() - self._opened_at >= self.config.cooldown_s:
            self._set("half_open")
        return self._state

    @property
    def retry_in(self) -> float:
        """Seconds until an open circuit lets a probe through (0 when not open)."""
        if self.state != "open":
            return 0.0
        return max(0.0, self._opened_at + self.config.cooldown_s - self._clock())

    def allow(self) -> bool:
        """May a call be made now? In half-open state only one probe at a time is let through."""
        if not self.config.enabled:
            return True
        state = self.state
        if state == "closed":
            return True
        if state == "half_open" and not self._probe_in_flight:
            self._probe_in_flight = True
            return True
        return False

    def record_success(self) -> None:
        self._probe_in_flight = False
        self._consecutive = 0
        self._remember(failed=False)
        if self._state != "closed":
            self._window.clear()
            self._set("closed")
            self._report("closed", 0.0)

    def record_failure(self) -> None:
        self._probe_in_flight = False
        self._consecutive += 1
        self._remember(failed=True)
        if not self.config.enabled:
            return
        if self._state == "half_open" or self._should_open():
            self._opened_at = self._clock()
            self._set("open")
            self._report("open", self.config.cooldown_s)

    def release(self) -> None:
        """A call ended without a verdict (cancelled, or a client error): free the probe slot."""
        self._probe_in_flight = False

    def apply_open(self, seconds: float) -> bool:
        """Another worker opened this circuit for ``seconds`` more: be open at least that long (not reported
        back). Returns whether anything changed."""
        if not self.config.enabled or seconds <= 0 or (self.state == "open" and self.retry_in >= seconds):
            return False
        self._opened_at = self._clock() - self.config.cooldown_s + seconds
        self._set("open")
        return True

    def apply_close(self) -> bool:
        """Another worker's probe succeeded: close this circuit (not reported back). Returns whether it was
        not closed."""
        if self._state == "closed":
            return False
        self._consecutive = 0
        self._window.clear()
        self._set("closed")
        return True

    def snapshot(self) -> dict[str, object]:
        """State for ``/v1/models`` and ``/ready``."""
        failures, calls = self._window_counts()
        return {
            "state": self.state,
            "consecutive_failures": self._consecutive,
            "window_calls": calls,
            "window_failures": failures,
            "retry_in_s": round(self.retry_in, 3),
        }

    def _remember(self, failed: bool) -> None:
        index = int(self._clock() // self._slice_s)
        window = self._window
        if window and window[-1][0] == index:
            counts = window[-1]
            counts[1] += 1
            counts[2] += failed
            return
        window.append([index, 1, int(failed)])
        self._trim()

    def _trim(self) -> None:
        """Drop the slices that ended before the window's start (a call counts up to one slice longer)."""
        horizon = self._clock() - self.config.window_s
        window, slice_s = self._window, self._slice_s
        while window and (window[0][0] + 1) * slice_s <= horizon:
            window.popleft()

    def _window_counts(self) -> tuple[int, int]:
        self._trim()
        return sum(counts[2] for counts in self._window), sum(counts[1] for counts in self._window)

    def _should_open(self) -> bool:
        if self._state == "open":
            return False
        if self._consecutive >= self.config.failure_threshold:
            return True
        failures, calls = self._window_counts()
        return calls >= self.config.min_calls and failures / calls >= self.config.error_rate_threshold

    def _report(self, state: State, seconds: float) -> None:
        if self._on_transition is not None:
            self._on_transition(self.model, state, seconds)

    def _set(self, state: State) -> None:
        if state == self._state:
            return
        self._state = state
        if self._on_change is not None:
            self._on_change(self.model, state)


class BreakerBoard:
    """The breakers of every model, created on first use with one shared policy and clock. ``on_transition``
    (settable after construction) hears every locally decided open/close."""

    def __init__(self, config: BreakerConfig, clock: Clock = time.monotonic, on_change: OnChange | None = None) -> None:
        self.config, self.clock, self._on_change = config, clock, on_change
        self.on_transition: OnTransition | None = None
        self._breakers: dict[str, CircuitBreaker] = {}

    def get(self, model: str) -> CircuitBreaker:
        breaker = self._breakers.get(model)
        if breaker is None:
            breaker = CircuitBreaker(model, self.config, self.clock, self._on_change, self._transition)
            self._breakers[model] = breaker
        return breaker

    def state(self, model: str) -> State:
        breaker = self._breakers.get(model)
        return breaker.state if breaker is not None else "closed"

    def is_open(self, model: str) -> bool:
        return self.config.enabled and self.state(model) == "open"

    def unavailable_reason(self, model: str) -> str | None:
        """``"circuit open"`` for routing's ``ModelInfo.unavailable_reason``, else None."""
        return "circuit open" if self.is_open(model) else None

    def snapshot(self, model: str) -> dict[str, object]:
        return self.get(model).snapshot()

    def _transition(self, model: str, state: State, seconds: float) -> None:
        if self.on_transition is not None:
            self.on_transition(model, state, seconds)
