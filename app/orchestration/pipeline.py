"""Named multi-step pipelines: each step's prompt is a template over the inputs and earlier outputs.

Every template variable is checked against the caller's inputs before any model is called (a missing one
is a 422 naming it); steps whose model is fixed are checked for availability up front too. Each step is
planned by routing (a fixed ``model`` with its fallbacks, or ``auto``/``task`` routing on the rendered
prompt) and executed with retries and fallbacks; the whole run shares one deadline.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from app.domain import ChatRequest, Completion, Message
from app.errors import InvalidRequestError, MissingVariableError, NoModelAvailableError
from app.orchestration.deadline import Deadline, request_timeout
from app.orchestration.executor import Executor
from app.orchestration.result import Charge, Ledger, sum_cost
from app.orchestration.template import render, variables
from app.records import record
from app.routing.base import RouteDecision, RouteInput
from app.settings.orchestration import PipelineConfig, PipelineStep

Planner = Callable[[RouteInput], RouteDecision]


class PipelineNotFoundError(InvalidRequestError):
    status_code = 404
    error_type = "pipeline_not_found"


@record(slots=True)
class StepResult:
    step: PipelineStep
    completion: Completion
    ledger: Ledger
    route_reason: str

    def to_dict(self) -> dict[str, Any]:
        c, ledger = self.completion, self.ledger
        total = ledger.total_usage
        return {
            "name": self.step.name,
            "output_key": self.step.key,
            "model": c.model,
            "provider": c.provider,
            "output": c.content,
            "tokens": {"input": c.usage.input_tokens, "output": c.usage.output_tokens},
            "latency_ms": round(c.latency_ms, 3),
            "cost": c.cost,
            "finish_reason": c.finish_reason,
            "route": self.route_reason,
            "retries": ledger.retries,
            "attempts": dict(ledger.attempts),
            "failures": [f.to_dict() for f in ledger.failures],
            "total_tokens": {"input": total.input_tokens, "output": total.output_tokens},
            "total_cost": ledger.total_cost,
        }


@record(slots=True)
class PipelineRun:
    name: str
    steps: tuple[StepResult, ...]
    outputs: dict[str, str]
    latency_ms: float

    @property
    def charges(self) -> list[Charge]:
        return [c for s in self.steps for c in s.ledger.charges]

    def to_dict(self) -> dict[str, Any]:
        input_tokens = sum(s.ledger.total_usage.input_tokens for s in self.steps)
        output_tokens = sum(s.ledger.total_usage.output_tokens for s in self.steps)
        return {
            "pipeline": self.name,
            "output": self.steps[-1].completion.content,
            "outputs": self.outputs,
            "steps": [s.to_dict() for s in self.steps],
            "total_tokens": {"input": input_tokens, "output": output_tokens},
            "total_cost": sum_cost([s.ledger.total_cost for s in self.steps]),
            "latency_ms": round(self.latency_ms, 3),
            "cancelled": [c.to_dict() for c in self.charges],
        }


def check_inputs(pipeline: PipelineConfig, inputs: Mapping[str, str]) -> None:
    """422 naming the first template variable that neither the inputs nor an earlier step provide."""
    known = set(inputs)
    for step in pipeline.steps:
        for name in variables(step.prompt_template):
            if name not in known:
                raise MissingVariableError(
                    f"missing input variable {name!r} (used by step {step.name!r})",
                    variable=name,
                    step=step.name,
                    required=list(pipeline.required_inputs()),
                )
        known.add(step.key)


def check_models(pipeline: PipelineConfig, executor: Executor) -> None:
    """503 before any call when a step's fixed model and all its fallbacks are unusable."""
    for step in pipeline.steps:
        if step.model is None:
            continue
        entry = executor.registry.entry(step.model)
        candidates = [step.model, *entry.target.config.fallbacks, *executor.config.default_fallbacks]
        if not any(executor.registry.is_available(n) and not executor.breakers.is_open(n) for n in candidates):
            why = entry.unavailable_reason or "circuit open"
            raise NoModelAvailableError(
                f"step {step.name!r}: model {step.model!r} is unavailable ({why})",
                step=step.name,
                model=step.model,
            )


def step_request(step: PipelineStep, values: Mapping[str, str]) -> ChatRequest:
    messages: list[Message] = []
    if step.system:
        messages.append(Message("system", step.system))
    messages.append(Message("user", render(step.prompt_template, values)))
    return ChatRequest(messages=tuple(messages), max_tokens=step.max_tokens, temperature=step.temperature)


def step_input(step: PipelineStep, request: ChatRequest) -> RouteInput:
    if step.model is not None:
        return RouteInput(request=request, mode="specific", model=step.model)
    return RouteInput(request=request, mode=step.routing or "auto", task_type=step.task_type)


async def run_pipeline(
    name: str,
    pipeline: PipelineConfig,
    inputs: Mapping[str, str],
    *,
    plan: Planner,
    executor: Executor,
    timeout_s: float | None = None,
) -> PipelineRun:
    """Run every step in order; 422 for a missing variable and 503 for an unusable fixed model, both
    before any call; 504 when the run's deadline passes."""
    check_inputs(pipeline, inputs)
    check_models(pipeline, executor)
    budget = request_timeout(timeout_s or pipeline.timeout_s, executor.config)
    deadline = Deadline.after(budget, executor.clock)
    started = time.perf_counter()
    values: dict[str, str] = dict(inputs)
    results: list[StepResult] = []
    all_calls = Ledger()

    async def steps() -> None:
        for step in pipeline.steps:
            request = step_request(step, values)
            decision = plan(step_input(step, request))
            ledger = Ledger()
            try:
                chain = executor.chain(decision.models, request)
                completion = await executor.run_chain(chain, request, deadline, ledger)
            finally:
                all_calls.failures.extend(ledger.failures)
                all_calls.retries += ledger.retries
            values[step.key] = completion.content
            results.append(StepResult(step, completion, ledger, decision.reason))

    await executor.guarded(deadline, all_calls, steps)
    outputs = {r.step.key: r.completion.content for r in results}
    return PipelineRun(name, tuple(results), outputs, (time.perf_counter() - started) * 1000.0)
