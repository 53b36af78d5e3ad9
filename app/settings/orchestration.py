"""The ``orchestration:`` and ``pipelines:`` sections of the gateway YAML (validated with pydantic).

With no ``orchestration:`` section the defaults below apply. Cross references (model names) are checked by
``check_references`` from ``GatewayConfig``'s validator.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.orchestration.template import TemplateSyntaxError, variables

Selector = Literal["agreement", "longest", "shortest", "cheapest"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BreakerConfig(_Strict):
    """Per-model circuit breaker: opens after ``failure_threshold`` failures in a row, or when at least
    ``min_calls`` calls in the last ``window_s`` seconds failed at a rate of ``error_rate_threshold`` or
    more; after ``cooldown_s`` one probe call is let through (half-open); its success closes the circuit."""

    enabled: bool = True
    failure_threshold: int = Field(default=5, ge=1)
    error_rate_threshold: float = Field(default=0.5, gt=0, le=1)
    min_calls: int = Field(default=10, ge=1)
    window_s: float = Field(default=60.0, gt=0)
    cooldown_s: float = Field(default=30.0, gt=0)


class OrchestrationConfig(_Strict):
    """Retries, deadlines, fallbacks, hedging and judging defaults."""

    default_fallbacks: tuple[str, ...] = Field(
        default=(), description="Models tried, in order, after a plan's own models have all failed."
    )
    max_retries: int = Field(default=2, ge=0, le=10, description="Retries of one model on retryable errors.")
    backoff_base_s: float = Field(default=0.25, ge=0, description="First backoff ceiling (full jitter).")
    backoff_max_s: float = Field(default=8.0, ge=0, description="Largest backoff ceiling.")
    max_retry_after_s: float = Field(
        default=30.0, ge=0, description="A Retry-After longer than this is not waited for: fall back instead."
    )
    request_timeout_s: float = Field(default=120.0, gt=0, description="Overall deadline of one request.")
    max_request_timeout_s: float = Field(
        default=600.0, gt=0, description="Largest deadline a request may ask for with timeout_s."
    )
    hedge_delay_s: float = Field(default=2.0, gt=0, description="Hedge when no answer arrived by then.")
    hedge_use_p95: bool = Field(default=True, description="Use the primary's observed p95 latency instead.")
    hedge_min_samples: int = Field(default=20, ge=1, description="Latencies needed before p95 is trusted.")
    judge_model: str | None = Field(default=None, description="Default judge of strategy 'vote'.")
    consensus_selector: Selector = "agreement"
    breaker: BreakerConfig = BreakerConfig()

    @model_validator(mode="after")
    def _deadlines(self) -> OrchestrationConfig:
        if self.request_timeout_s > self.max_request_timeout_s:
            raise ValueError("request_timeout_s must not exceed max_request_timeout_s")
        if self.backoff_base_s > self.backoff_max_s:
            raise ValueError("backoff_base_s must not exceed backoff_max_s")
        return self


class PipelineStep(_Strict):
    """One step: a model (or a routing mode) answers ``prompt_template``; the answer is stored under
    ``output_key`` for later steps and the response."""

    name: str = Field(min_length=1, max_length=100)
    model: str | None = None
    routing: Literal["auto", "task"] | None = None
    task_type: str | None = None
    prompt_template: str = Field(min_length=1)
    system: str | None = None
    output_key: str | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)

    @property
    def key(self) -> str:
        return self.output_key or self.name

    @model_validator(mode="after")
    def _valid(self) -> PipelineStep:
        if self.model and self.routing:
            raise ValueError("give either model or routing, not both")
        try:
            variables(self.prompt_template)
        except TemplateSyntaxError as exc:
            raise ValueError(f"prompt_template: {exc}") from None
        return self


class PipelineConfig(_Strict):
    """A named sequence of steps; ``inputs`` lists the variables callers must give (derived if omitted)."""

    description: str = ""
    inputs: tuple[str, ...] | None = None
    timeout_s: float | None = Field(default=None, gt=0, description="Deadline of a run (default: request's).")
    steps: tuple[PipelineStep, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _variables_defined(self) -> PipelineConfig:
        produced: set[str] = set()
        for step in self.steps:
            for name in variables(step.prompt_template):
                if name in produced:
                    continue
                if self.inputs is not None and name not in self.inputs:
                    later = any(s.key == name for s in self.steps)
                    why = "comes from a later step" if later else "is neither an input nor an earlier output"
                    raise ValueError(f"step {step.name!r}: template variable {name!r} {why}")
            if step.key in produced:
                raise ValueError(f"step {step.name!r}: output_key {step.key!r} is already used")
            produced.add(step.key)
        return self

    def required_inputs(self) -> tuple[str, ...]:
        """Variables a caller must supply: declared inputs, else every variable no earlier step produces."""
        if self.inputs is not None:
            return self.inputs
        produced: set[str] = set()
        needed: dict[str, None] = {}
        for step in self.steps:
            for name in variables(step.prompt_template):
                if name not in produced:
                    needed.setdefault(name, None)
            produced.add(step.key)
        return tuple(needed)


def check_references(
    orchestration: OrchestrationConfig,
    pipelines: dict[str, PipelineConfig],
    models: Collection[str],
    embedding_models: Collection[str] = (),
) -> None:
    """Every model named by these sections must be one of the catalogue's chat ``models`` (``ValueError``
    names the key; ``embedding_models`` are named as such)."""

    def check(where: str, name: str) -> None:
        if name in embedding_models:
            raise ValueError(f"{where} names {name!r}, an embedding model (a chat model is needed)")
        if name not in models:
            raise ValueError(f"{where} names unknown model {name!r}")

    for name in orchestration.default_fallbacks:
        check("orchestration.default_fallbacks", name)
    if orchestration.judge_model:
        check("orchestration.judge_model", orchestration.judge_model)
    for pipeline_name, pipeline in pipelines.items():
        for step in pipeline.steps:
            if step.model:
                check(f"pipelines.{pipeline_name}.steps.{step.name}.model", step.model)
