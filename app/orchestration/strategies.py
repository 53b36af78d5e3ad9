"""The parallel strategies as complete outcomes: race, all, consensus and judge vote."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from app.domain import ChatRequest, Completion
from app.errors import UpstreamError
from app.orchestration.attempt import ModelCaller
from app.orchestration.consensus import select
from app.orchestration.deadline import Deadline
from app.orchestration.judge import judge_request, parse_verdict
from app.orchestration.options import SelectorName
from app.orchestration.parallel import gather, race
from app.orchestration.result import Ledger, Outcome

log = logging.getLogger(__name__)


def candidate(completion: Completion, score: float | None = None, selected: bool = False) -> dict[str, Any]:
    """One answer as listed in the response's ``candidates``."""
    item: dict[str, Any] = {
        "model": completion.model,
        "provider": completion.provider,
        "content": completion.content,
        "tokens": {"input": completion.usage.input_tokens, "output": completion.usage.output_tokens},
        "latency_ms": round(completion.latency_ms, 3),
        "cost": completion.cost,
        "finish_reason": completion.finish_reason,
        "selected": selected,
    }
    if score is not None:
        item["agreement"] = round(score, 4)
    return item


async def run_race(
    caller: ModelCaller, models: Sequence[str], request: ChatRequest, deadline: Deadline, ledger: Ledger
) -> Outcome:
    winner = await race(caller, models, request, deadline, ledger)
    return ledger.outcome(winner, strategy="race")


async def run_all(
    caller: ModelCaller, models: Sequence[str], request: ChatRequest, deadline: Deadline, ledger: Ledger
) -> Outcome:
    """Every answer; the fastest is the main one."""
    answers = await gather(caller, models, request, deadline, ledger)
    fastest = min(answers, key=lambda c: c.latency_ms)
    return ledger.outcome(fastest, strategy="all", candidates=[candidate(c, selected=c is fastest) for c in answers])


def consensus_outcome(answers: list[Completion], selector: SelectorName, ledger: Ledger, **extra: Any) -> Outcome:
    chosen, scores = select(answers, selector)
    best = answers[chosen]
    return ledger.outcome(
        best,
        strategy=extra.pop("strategy", "consensus"),
        selector=selector,
        agreement={c.model: round(s, 4) for c, s in zip(answers, scores, strict=True)},
        candidates=[candidate(c, s, i == chosen) for i, (c, s) in enumerate(zip(answers, scores, strict=True))],
        **extra,
    )


async def run_consensus(
    caller: ModelCaller,
    models: Sequence[str],
    request: ChatRequest,
    deadline: Deadline,
    ledger: Ledger,
    selector: SelectorName,
) -> Outcome:
    answers = await gather(caller, models, request, deadline, ledger)
    return consensus_outcome(answers, selector, ledger)


async def run_vote(
    caller: ModelCaller,
    models: Sequence[str],
    request: ChatRequest,
    deadline: Deadline,
    ledger: Ledger,
    judge: str,
    selector: SelectorName,
) -> Outcome:
    """Every model answers; ``judge`` picks the best. If the judge fails or its reply cannot be read,
    the consensus selector decides and ``judge.fallback`` says why. The judge's call counts in totals."""
    answers = await gather(caller, models, request, deadline, ledger)
    info: dict[str, Any] = {"model": judge, "choice": None, "reply": None, "fallback": None}
    if len(answers) == 1:
        info["fallback"] = "only one model answered; the judge was not asked"
        return consensus_outcome(answers, selector, ledger, strategy="vote", judge=info)
    try:
        verdict_call = await caller.complete(
            judge, judge_request(request.prompt_text, [a.content for a in answers]), deadline, ledger
        )
    except UpstreamError as exc:
        log.info("judge %s failed (%s); falling back to consensus", judge, exc.error_type)
        info["fallback"] = f"the judge failed ({exc.error_type}); chosen by {selector}"
        return consensus_outcome(answers, selector, ledger, strategy="vote", judge=info)
    verdict = parse_verdict(verdict_call.content, len(answers))
    info.update(
        reply=verdict_call.content[:200],
        tokens={"input": verdict_call.usage.input_tokens, "output": verdict_call.usage.output_tokens},
        cost=verdict_call.cost,
    )
    if verdict.choice is None:
        info["fallback"] = f"{verdict.reason}; chosen by {selector}"
        return consensus_outcome(answers, selector, ledger, strategy="vote", judge=info)
    info["choice"] = verdict.choice
    best = answers[verdict.choice - 1]
    outcome = consensus_outcome(answers, selector, ledger, strategy="vote", judge=info)
    extra = dict(outcome.extra)
    extra["candidates"] = [{**c, "selected": c["model"] == best.model} for c in extra["candidates"]]
    return ledger.outcome(best, **extra)
