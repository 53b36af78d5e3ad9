"""Fallbacks, retries, per-call timeouts, deadlines and circuit breakers: the real SDK providers against the
fake upstream, with scripted failures and delays (timing asserts only with generous margins)."""

from __future__ import annotations

import time

import pytest

from app.errors import (
    AllModelsFailedError,
    DeadlineExceededError,
    UpstreamBadRequestError,
    UpstreamRateLimitError,
    UpstreamServerError,
)
from app.orchestration.options import RunOptions
from app.orchestration.result import Ledger
from tests.fakes.scripts import Reply
from tests.fakes.server import FakeUpstream
from tests.integration.orchestration_harness import GEMINI, LLAMA, MINI, REQUEST, SONNET, Clock, Harness, plan


async def test_falls_back_on_unavailable_and_names_the_failure(harness: Harness, upstream: FakeUpstream) -> None:
    executor = harness.build({"max_retries": 0})
    upstream.script(MINI, Reply(status=503))
    upstream.script(SONNET, Reply(text="from claude"))
    outcome = await executor.execute(plan(MINI, SONNET), REQUEST)
    assert outcome.completion.model == SONNET
    assert outcome.completion.content == "from claude"
    assert [(f.model, f.error_type) for f in outcome.failures] == [(MINI, "upstream_unavailable")]
    assert outcome.extra["strategy"] == "fallback"
    assert outcome.response_fields()["attempts"] == {MINI: 1, SONNET: 1}


async def test_bad_request_is_raised_at_once_without_fallback(harness: Harness, upstream: FakeUpstream) -> None:
    executor = harness.build({"max_retries": 3})
    upstream.script(MINI, Reply(status=400, error_message="temperature is wrong"))
    with pytest.raises(UpstreamBadRequestError):
        await executor.execute(plan(MINI, SONNET), REQUEST)
    assert harness.requests_for(MINI) == 1  # not retried
    assert harness.requests_for(SONNET) == 0  # no fallback


async def test_retries_with_backoff_then_succeeds(harness: Harness, upstream: FakeUpstream) -> None:
    executor = harness.build({"max_retries": 3, "backoff_base_s": 0.1, "backoff_max_s": 1.0})
    upstream.script(MINI, Reply(status=500), Reply(status=529), Reply(text="third time lucky"))
    outcome = await executor.execute(plan(MINI, SONNET), REQUEST)
    assert outcome.completion.content == "third time lucky"
    assert outcome.retries == 2
    assert harness.sleeps == [0.1, 0.2]  # full jitter drawn at the top of [0, base * 2^n]
    assert harness.requests_for(SONNET) == 0
    assert outcome.failures == ()  # the model answered in the end


async def test_retry_after_is_honoured(harness: Harness, upstream: FakeUpstream) -> None:
    executor = harness.build({"max_retries": 1, "backoff_base_s": 0.01, "backoff_max_s": 0.01})
    upstream.script(MINI, Reply(status=429, retry_after=3), Reply(text="ok"))
    outcome = await executor.execute(plan(MINI), REQUEST)
    assert outcome.completion.content == "ok"
    assert harness.sleeps == [3.0]


async def test_long_retry_after_falls_back_instead_of_waiting(harness: Harness, upstream: FakeUpstream) -> None:
    executor = harness.build({"max_retries": 2, "max_retry_after_s": 5})
    upstream.script(MINI, Reply(status=429, retry_after=60))
    outcome = await executor.execute(plan(MINI, GEMINI), REQUEST)
    assert outcome.completion.model == GEMINI
    assert harness.sleeps == []
    assert [f.error_type for f in outcome.failures] == ["rate_limited"]


async def test_retry_budget_is_bounded_then_all_failures_reported(harness: Harness, upstream: FakeUpstream) -> None:
    executor = harness.build({"max_retries": 2, "backoff_base_s": 0.01})
    upstream.script(MINI, *[Reply(status=500)] * 3)
    upstream.script(SONNET, *[Reply(status=503)] * 3)
    with pytest.raises(AllModelsFailedError) as info:
        await executor.execute(plan(MINI, SONNET), REQUEST)
    assert harness.requests_for(MINI) == 3 and harness.requests_for(SONNET) == 3
    assert [(f.model, f.error_type) for f in info.value.failures] == [
        (MINI, "upstream_server_error"),
        (SONNET, "upstream_unavailable"),
    ]
    assert info.value.status_code == 502


async def test_single_model_failure_is_that_error(harness: Harness, upstream: FakeUpstream) -> None:
    executor = harness.build({"max_retries": 0})
    upstream.script(MINI, Reply(status=429, retry_after=1))
    with pytest.raises(UpstreamRateLimitError) as info:
        await executor.execute(plan(MINI), REQUEST)
    assert info.value.headers == {"Retry-After": "1"}


async def test_per_call_timeout_cuts_the_call_and_falls_back(harness: Harness, upstream: FakeUpstream) -> None:
    executor = harness.build({"max_retries": 0}, **{MINI: {"timeout_s": 0.3}})
    upstream.script(MINI, Reply(text="too late", delay_s=10))
    upstream.script(SONNET, Reply(text="in time"))
    started = time.monotonic()
    outcome = await executor.execute(plan(MINI, SONNET), REQUEST)
    assert time.monotonic() - started < 5
    assert outcome.completion.content == "in time"
    assert [f.error_type for f in outcome.failures] == ["upstream_timeout"]
    assert upstream.wait_for_disconnects(1) >= 1  # the fake saw the cut-off call go away
    fields = outcome.response_fields()
    assert fields["cancelled"][0]["model"] == MINI and fields["cancelled"][0]["reason"] == "timeout"
    assert fields["totals_estimated"] is True
    assert outcome.total_usage.input_tokens > outcome.completion.usage.input_tokens


async def test_deadline_cancels_everything_and_answers_504_at_once(harness: Harness, upstream: FakeUpstream) -> None:
    executor = harness.build({"max_retries": 0})
    upstream.script(MINI, Reply(delay_s=20))
    started = time.monotonic()
    with pytest.raises(DeadlineExceededError) as info:
        await executor.execute(plan(MINI, SONNET), REQUEST, RunOptions(timeout_s=0.5))
    assert time.monotonic() - started < 4  # not the 20 s of the slow upstream, nor its 5 s timeout
    assert info.value.status_code == 504
    assert upstream.wait_for_disconnects(1) >= 1
    assert harness.requests_for(SONNET) == 0


async def test_deadline_bounds_the_backoff(harness: Harness, upstream: FakeUpstream) -> None:
    executor = harness.build({"max_retries": 5, "backoff_base_s": 10, "backoff_max_s": 10})
    upstream.script(MINI, Reply(status=500))
    upstream.script(SONNET, Reply(text="fallback"))
    outcome = await executor.execute(plan(MINI, SONNET), REQUEST, RunOptions(timeout_s=5))
    assert harness.sleeps == []  # a 10 s wait cannot fit in a 5 s deadline: fall back instead
    assert outcome.completion.model == SONNET


async def test_default_fallbacks_come_after_the_plan(harness: Harness, upstream: FakeUpstream) -> None:
    executor = harness.build({"max_retries": 0, "default_fallbacks": [LLAMA]})
    upstream.script(MINI, Reply(status=500))
    upstream.script("llama3", Reply(text="local answer"))
    outcome = await executor.execute(plan(MINI), REQUEST)
    assert outcome.completion.model == LLAMA


async def test_breaker_opens_skips_probes_and_closes(harness: Harness, upstream: FakeUpstream) -> None:
    clock = Clock()
    breaker = {"failure_threshold": 2, "cooldown_s": 30, "min_calls": 100}
    executor = harness.build({"max_retries": 0, "breaker": breaker}, clock=clock)
    board = executor.breakers
    upstream.script(MINI, Reply(status=500), Reply(status=500))
    for _ in range(2):
        outcome = await executor.execute(plan(MINI, SONNET), REQUEST)
        assert outcome.completion.model == SONNET
    assert board.state(MINI) == "open"
    assert harness.requests_for(MINI) == 2

    outcome = await executor.execute(plan(MINI, SONNET), REQUEST)
    assert harness.requests_for(MINI) == 2  # skipped, not called
    assert [(f.model, f.error_type) for f in outcome.failures] == [(MINI, "circuit_open")]

    clock.now += 29
    assert board.state(MINI) == "open"
    clock.now += 1
    assert board.state(MINI) == "half_open"
    upstream.script(MINI, Reply(text="recovered"))
    outcome = await executor.execute(plan(MINI, SONNET), REQUEST)
    assert outcome.completion.content == "recovered"
    assert board.state(MINI) == "closed"


async def test_failed_probe_reopens(harness: Harness, upstream: FakeUpstream) -> None:
    clock = Clock()
    executor = harness.build({"max_retries": 2, "breaker": {"failure_threshold": 1, "cooldown_s": 10}}, clock=clock)
    upstream.script(MINI, Reply(status=500))
    ledger = Ledger()
    with pytest.raises(UpstreamServerError):
        await executor.run_chain([MINI], REQUEST, None, ledger)
    assert harness.requests_for(MINI) == 1  # the circuit opened: no retry against an open circuit
    clock.now += 10
    upstream.script(MINI, Reply(status=500))
    with pytest.raises(UpstreamServerError):
        await executor.run_chain([MINI], REQUEST, None, Ledger())
    assert harness.requests_for(MINI) == 2
    assert executor.breakers.state(MINI) == "open"


async def test_bad_requests_do_not_open_the_breaker(harness: Harness, upstream: FakeUpstream) -> None:
    executor = harness.build({"max_retries": 0, "breaker": {"failure_threshold": 1}})
    upstream.script(MINI, Reply(status=400))
    with pytest.raises(UpstreamBadRequestError):
        await executor.execute(plan(MINI), REQUEST)
    assert executor.breakers.state(MINI) == "closed"
