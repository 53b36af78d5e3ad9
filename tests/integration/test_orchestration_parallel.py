"""Race, all, consensus, judge vote and hedging: the real SDK providers against the fake upstream."""

from __future__ import annotations

import time

import pytest

from app.errors import AllModelsFailedError, DeadlineExceededError, ModelNotFoundError
from app.orchestration.options import HedgeOptions, RunOptions
from tests.fakes.scripts import Reply
from tests.fakes.server import FakeUpstream
from tests.integration.orchestration_harness import GEMINI, LLAMA, MINI, REQUEST, SONNET, Harness, plan


def parallel(*models: str):
    return plan(*models, strategy="parallel")


async def test_race_first_success_wins_and_losers_are_cancelled(harness: Harness, upstream: FakeUpstream) -> None:
    executor = harness.build({"max_retries": 0})
    upstream.script(MINI, Reply(text="fast", delay_s=0.05))
    upstream.script(SONNET, Reply(text="slow", delay_s=10))
    upstream.script(GEMINI, Reply(text="slower", delay_s=10))
    started = time.monotonic()
    outcome = await executor.execute(parallel(MINI, SONNET, GEMINI), REQUEST, RunOptions(strategy="race"))
    assert time.monotonic() - started < 5
    assert outcome.completion.content == "fast"
    assert upstream.wait_for_disconnects(2) == 2  # both losers' connections were closed
    cancelled = outcome.response_fields()["cancelled"]
    assert sorted(c["model"] for c in cancelled) == sorted([SONNET, GEMINI])
    assert all(c["reason"] == "cancelled" and c["estimated"] for c in cancelled)
    # the totals include the losers' (estimated) prompt tokens
    assert outcome.total_usage.input_tokens == outcome.completion.usage.input_tokens + sum(
        c["tokens"]["input"] for c in cancelled
    )


async def test_race_a_fast_failure_does_not_win(harness: Harness, upstream: FakeUpstream) -> None:
    executor = harness.build({"max_retries": 0})
    upstream.script(MINI, Reply(status=500))
    upstream.script(SONNET, Reply(text="slower but right", delay_s=0.3))
    outcome = await executor.execute(parallel(MINI, SONNET), REQUEST)
    assert outcome.extra["strategy"] == "race"
    assert outcome.completion.content == "slower but right"
    assert [(f.model, f.error_type) for f in outcome.failures] == [(MINI, "upstream_server_error")]


async def test_race_all_fail_is_502_with_every_failure(harness: Harness, upstream: FakeUpstream) -> None:
    executor = harness.build({"max_retries": 0})
    upstream.script(MINI, Reply(status=500))
    upstream.script(SONNET, Reply(status=529))
    upstream.script(GEMINI, Reply(status=401))
    with pytest.raises(AllModelsFailedError) as info:
        await executor.execute(parallel(MINI, SONNET, GEMINI), REQUEST)
    assert info.value.status_code == 502
    assert sorted((f.model, f.error_type) for f in info.value.failures) == sorted(
        [(MINI, "upstream_server_error"), (SONNET, "upstream_unavailable"), (GEMINI, "upstream_auth_error")]
    )


async def test_all_returns_every_answer_and_failure(harness: Harness, upstream: FakeUpstream) -> None:
    executor = harness.build({"max_retries": 0})
    upstream.script(MINI, Reply(text="one", input_tokens=10, output_tokens=1))
    upstream.script(SONNET, Reply(text="two", input_tokens=10, output_tokens=2, delay_s=0.1))
    upstream.script(GEMINI, Reply(status=503))
    outcome = await executor.execute(parallel(MINI, SONNET, GEMINI), REQUEST, RunOptions(strategy="all"))
    candidates = outcome.extra["candidates"]
    assert [c["model"] for c in candidates] == [MINI, SONNET]
    assert [c["content"] for c in candidates] == ["one", "two"]
    assert [(f.model, f.error_type) for f in outcome.failures] == [(GEMINI, "upstream_unavailable")]
    assert outcome.total_usage.input_tokens == 20 and outcome.total_usage.output_tokens == 3
    assert upstream.disconnects == 0


async def test_consensus_picks_the_answer_the_others_agree_with(harness: Harness, upstream: FakeUpstream) -> None:
    executor = harness.build({"max_retries": 0})
    upstream.script(MINI, Reply(text="The capital of France is Paris."))
    upstream.script(SONNET, Reply(text="Berlin is the capital of France, said with a much longer sentence here."))
    upstream.script(GEMINI, Reply(text="Paris is the capital of France."))
    outcome = await executor.execute(parallel(MINI, SONNET, GEMINI), REQUEST, RunOptions(strategy="consensus"))
    assert outcome.completion.model in (MINI, GEMINI)
    agreement = outcome.extra["agreement"]
    assert agreement[SONNET] < min(agreement[MINI], agreement[GEMINI])
    assert outcome.extra["selector"] == "agreement"
    assert sum(c["selected"] for c in outcome.extra["candidates"]) == 1

    upstream.script(MINI, Reply(text="short"))
    upstream.script(SONNET, Reply(text="the longest answer of them all"))
    upstream.script(GEMINI, Reply(text="medium answer"))
    longest = await executor.execute(
        parallel(MINI, SONNET, GEMINI), REQUEST, RunOptions(strategy="consensus", selector="longest")
    )
    assert longest.completion.model == SONNET


async def test_vote_judge_picks_and_is_paid_for(harness: Harness, upstream: FakeUpstream) -> None:
    executor = harness.build({"max_retries": 0})
    upstream.script(MINI, Reply(text="answer A", input_tokens=5, output_tokens=2))
    upstream.script(SONNET, Reply(text="answer B", input_tokens=5, output_tokens=2))
    upstream.script("llama3", Reply(text="The best is **Response 2**.", input_tokens=40, output_tokens=6))
    outcome = await executor.execute(parallel(MINI, SONNET), REQUEST, RunOptions(strategy="vote", judge=LLAMA))
    assert outcome.completion.model == SONNET
    judge = outcome.extra["judge"]
    assert judge["model"] == LLAMA and judge["choice"] == 2 and judge["fallback"] is None
    assert outcome.total_usage.input_tokens == 50 and outcome.total_usage.output_tokens == 10
    judge_body = next(r for r in upstream.requests if r.model == "llama3").body
    assert "answer A" in str(judge_body) and "answer B" in str(judge_body)


@pytest.mark.parametrize(
    ("judge_reply", "reason"),
    [
        (Reply(text="I cannot decide."), "no response number"),
        (Reply(text="5"), "outside"),
        (Reply(status=500), "failed"),
    ],
)
async def test_vote_falls_back_to_consensus_and_says_so(
    harness: Harness, upstream: FakeUpstream, judge_reply: Reply, reason: str
) -> None:
    executor = harness.build({"max_retries": 0})
    upstream.script(MINI, Reply(text="Paris is the capital of France."))
    upstream.script(SONNET, Reply(text="Lyon, probably, or somewhere else entirely."))
    upstream.script(GEMINI, Reply(text="The capital of France is Paris."))
    upstream.script("llama3", judge_reply)
    outcome = await executor.execute(parallel(MINI, SONNET, GEMINI), REQUEST, RunOptions(strategy="vote", judge=LLAMA))
    judge = outcome.extra["judge"]
    assert judge["choice"] is None and reason in judge["fallback"]
    assert outcome.completion.model in (MINI, GEMINI)  # chosen by agreement


async def test_hedge_sends_the_second_model_after_the_delay(harness: Harness, upstream: FakeUpstream) -> None:
    executor = harness.build({"max_retries": 0})
    upstream.script(MINI, Reply(text="primary, late", delay_s=10))
    upstream.script(SONNET, Reply(text="hedge, quick"))
    started = time.monotonic()
    outcome = await executor.execute(plan(MINI, SONNET), REQUEST, RunOptions(hedge=HedgeOptions(delay_s=0.2)))
    assert time.monotonic() - started < 5
    assert outcome.completion.model == SONNET
    hedge = outcome.extra["hedge"]
    assert hedge["hedged"] is True and hedge["hedge_model"] == SONNET and hedge["delay_source"] == "request"
    assert upstream.wait_for_disconnects(1) == 1  # the primary was cancelled
    assert [c["model"] for c in outcome.response_fields()["cancelled"]] == [MINI]


async def test_hedge_not_sent_when_the_primary_is_fast(harness: Harness, upstream: FakeUpstream) -> None:
    executor = harness.build({"max_retries": 0})
    upstream.script(MINI, Reply(text="primary"))
    outcome = await executor.execute(plan(MINI, SONNET), REQUEST, RunOptions(hedge=HedgeOptions(delay_s=3)))
    assert outcome.completion.model == MINI
    assert outcome.extra["hedge"]["hedged"] is False
    assert harness.requests_for(SONNET) == 0


async def test_hedge_primary_can_still_win(harness: Harness, upstream: FakeUpstream) -> None:
    executor = harness.build({"max_retries": 0})
    upstream.script(MINI, Reply(text="primary", delay_s=0.4))
    upstream.script(SONNET, Reply(text="hedge", delay_s=10))
    outcome = await executor.execute(plan(MINI, SONNET), REQUEST, RunOptions(hedge=HedgeOptions(delay_s=0.1)))
    assert outcome.completion.model == MINI
    assert outcome.extra["hedge"]["hedged"] is True
    assert upstream.wait_for_disconnects(1) == 1


async def test_hedge_failure_before_the_delay_falls_back_at_once(harness: Harness, upstream: FakeUpstream) -> None:
    executor = harness.build({"max_retries": 0})
    upstream.script(MINI, Reply(status=503))
    upstream.script(SONNET, Reply(text="fallback"))
    started = time.monotonic()
    outcome = await executor.execute(plan(MINI, SONNET), REQUEST, RunOptions(hedge=HedgeOptions(delay_s=30)))
    assert time.monotonic() - started < 10
    assert outcome.completion.model == SONNET
    assert [f.error_type for f in outcome.failures] == ["upstream_unavailable"]


async def test_deadline_cancels_a_whole_race(harness: Harness, upstream: FakeUpstream) -> None:
    executor = harness.build({"max_retries": 0})
    for model in (MINI, SONNET, GEMINI):
        upstream.script(model, Reply(delay_s=20))
    started = time.monotonic()
    with pytest.raises(DeadlineExceededError):
        await executor.execute(parallel(MINI, SONNET, GEMINI), REQUEST, RunOptions(timeout_s=0.5))
    assert time.monotonic() - started < 4
    assert upstream.wait_for_disconnects(3) == 3


async def test_a_gateway_error_in_a_task_is_not_an_exception_group(harness: Harness, upstream: FakeUpstream) -> None:
    executor = harness.build({"max_retries": 0})
    upstream.script(MINI, Reply(delay_s=10))
    with pytest.raises(ModelNotFoundError):
        await executor.execute(parallel(MINI, "not-in-the-catalogue"), REQUEST)
    upstream.wait_idle(timeout=5)  # the sibling call (10 s upstream) was cancelled, not left running
