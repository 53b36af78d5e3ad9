"""Breaker sharing's pure logic on injected clocks: the breaker's hooks, transitions' encoding, applying
other workers' transitions, and the rate-limited warning (no Redis here)."""

from __future__ import annotations

import json
import logging

import pytest

from app.orchestration.breaker import BreakerBoard
from app.orchestration.breaker_sync import BreakerSync, RateLimitedWarning, Transition, decode
from app.settings.orchestration import BreakerConfig

MODELS = ("a", "b")


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def board(mono: Clock, **kw: object) -> BreakerBoard:
    return BreakerBoard(BreakerConfig(**{"failure_threshold": 2, "cooldown_s": 10.0, **kw}), mono)


def make_sync(mono: Clock, wall: Clock, origin: str = "me", **kw: object) -> BreakerSync:
    return BreakerSync("redis://unused", board(mono, **kw), MODELS, wall=wall, origin=origin)


def test_only_local_decisions_are_reported() -> None:
    mono = Clock(100.0)
    b = board(mono)
    heard: list[tuple[str, str, float]] = []
    b.on_transition = lambda m, s, secs: heard.append((m, s, secs))
    breaker = b.get("a")
    breaker.record_failure()
    breaker.record_failure()
    assert heard == [("a", "open", 10.0)]
    mono.now += 10  # lazily half-open: not shared (every worker sees it from its own until)
    assert breaker.state == "half_open" and len(heard) == 1
    assert breaker.allow()
    breaker.record_success()
    assert heard[-1] == ("a", "closed", 0.0)
    assert breaker.apply_open(5.0) and breaker.apply_close()  # applied ones are not reported back
    assert len(heard) == 2


def test_apply_open_keeps_the_later_until_and_apply_close_resets() -> None:
    mono = Clock(100.0)
    breaker = board(mono).get("a")
    assert breaker.apply_open(4.0)
    assert breaker.state == "open" and breaker.retry_in == pytest.approx(4.0)
    assert not breaker.allow()
    assert not breaker.apply_open(2.0)  # already open for longer
    assert breaker.retry_in == pytest.approx(4.0)
    assert breaker.apply_open(8.0) and breaker.retry_in == pytest.approx(8.0)
    assert not breaker.apply_open(0.0) and not breaker.apply_open(-3.0)
    mono.now += 8
    assert breaker.state == "half_open"
    breaker.record_failure()  # counts toward the local run again after a close
    assert breaker.apply_close() and breaker.state == "closed" and breaker.allow()
    assert breaker.snapshot()["consecutive_failures"] == 0
    assert not breaker.apply_close()


def test_apply_open_is_ignored_when_breakers_are_disabled() -> None:
    breaker = board(Clock(0.0), enabled=False).get("a")
    assert not breaker.apply_open(5.0)
    assert breaker.state == "closed"


def test_transition_round_trips_as_message_and_hash_fields() -> None:
    t = Transition("a", "open", 1010.5, 1000.25, "host:1:abc")
    assert decode(t.encode(), MODELS) == t
    assert decode(t.encode().encode(), MODELS) == t
    assert all(isinstance(v, str) for v in t.fields().values())
    assert decode(t.fields(), MODELS) == t
    assert t.ttl_ms() == int((10.25 + 3600) * 1000)


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        "[]",
        json.dumps({"model": "a", "state": "open", "until": 1, "at": 1}),  # no origin
        json.dumps({"model": "zzz", "state": "open", "until": 1, "at": 1, "origin": "x"}),  # not in catalogue
        json.dumps({"model": "a", "state": "half_open", "until": 1, "at": 1, "origin": "x"}),
        json.dumps({"model": "a", "state": "open", "until": "soon", "at": 1, "origin": "x"}),
        json.dumps({"model": "a", "state": "open", "until": "nan", "at": 1, "origin": "x"}),
        json.dumps({"model": "a", "state": "open", "until": 1, "at": 1, "origin": 7}),
    ],
)
def test_malformed_or_foreign_messages_are_dropped(raw: str) -> None:
    assert decode(raw, MODELS) is None


def test_local_transitions_are_queued_latest_per_model() -> None:
    mono, wall = Clock(100.0), Clock(5000.0)
    sync = make_sync(mono, wall)
    breaker = sync.board.get("a")
    breaker.record_failure()
    breaker.record_failure()
    assert sync.pending() == {"a": Transition("a", "open", 5010.0, 5000.0, "me")}
    mono.now += 10
    wall.now += 10
    assert breaker.allow()
    breaker.record_success()
    assert sync.pending() == {"a": Transition("a", "closed", 5010.0, 5010.0, "me")}
    sync.local("not-in-catalogue", "open", 10.0)
    assert set(sync.pending()) == {"a"}


def test_remote_open_uses_the_shared_wall_clock_until() -> None:
    mono, wall = Clock(100.0), Clock(5000.0)  # the clocks of two processes differ; only wall time is shared
    sync = make_sync(mono, wall)
    assert sync.apply(Transition("a", "open", 5007.0, 4997.0, "other"))
    breaker = sync.board.get("a")
    assert breaker.state == "open" and breaker.retry_in == pytest.approx(7.0)
    mono.now += 7
    assert breaker.state == "half_open"
    assert not sync.apply(Transition("b", "open", 4999.0, 4989.0, "other"))  # already over
    assert sync.board.state("b") == "closed"


def test_own_stale_and_unknown_transitions_are_not_applied() -> None:
    mono, wall = Clock(100.0), Clock(5000.0)
    sync = make_sync(mono, wall)
    assert not sync.apply(Transition("a", "open", 5010.0, 5000.0, "me"))  # our own echo
    assert not sync.apply(Transition("zzz", "open", 5010.0, 5000.0, "other"))
    assert sync.apply(Transition("a", "open", 5010.0, 5000.0, "other"))
    assert not sync.apply(Transition("a", "closed", 4999.0, 4999.0, "other"))  # older than the open
    assert sync.board.state("a") == "open"
    wall.now = 5001.0
    sync.board.get("a").apply_close()
    breaker = sync.board.get("a")
    breaker.record_failure()
    breaker.record_failure()  # we open it locally at 5001
    assert not sync.apply(Transition("a", "closed", 5000.5, 5000.5, "other"))  # a close from before our open
    assert sync.board.state("a") == "open"
    assert sync.apply(Transition("a", "closed", 5002.0, 5002.0, "other"))
    assert sync.board.state("a") == "closed"


def test_rate_limited_warning(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock(0.0)
    warn = RateLimitedWarning(logging.getLogger("test.sync"), interval_s=30.0, clock=clock)
    with caplog.at_level(logging.WARNING, logger="test.sync"):
        assert warn("down %s", 1)
        clock.now = 29.0
        assert not warn("down %s", 2) and not warn("down %s", 3)
        clock.now = 30.0
        assert warn("down %s", 4)
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["down 1", "down 4 (2 similar warnings suppressed)"]
