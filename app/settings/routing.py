"""The ``routing:`` section of the gateway YAML. Every default is the original design's behaviour.

```yaml
routing:
  auto: complexity            # strategy of routing "auto" when no rule matches: complexity | cost | task
  default_model: gpt-4o-mini  # rule router's answer when no rule matches (else complexity.simple)
  rules:                      # highest priority first; ties in file order; all `when` conditions must hold
    - {name: big-code, priority: 10, target: gpt-4o, when: {has_code: true, min_tokens: 800}}
  complexity: {simple: gpt-4o-mini, code: gpt-4o, complex: claude-3-5-sonnet-20241022,
               long_prompt_tokens: 1200, extra_complex_keywords: [audit],
               weights: {length: 0.3, reasoning: 0.2, code_work: 0.2, code_exercise: 0.05, ...}}
  cost: {default_max_cost: 0.05, expected_output_tokens: 512, tiers: {simple: 2, code: 3, complex: 4}}
  tasks: {code: gpt-4o, creative: claude-3-5-sonnet-20241022, ...}
  task_keywords: {legal: [contract, clause]}  # adds a task or replaces a task's keywords
  preference: [gpt-4o-mini, ...]
  embedding: {model: auto, max_tokens: null, preload: false}  # auto | none | wordllama-l2-256 | use-multilingual-v3
  semantic: {enabled: true, combine: keywords_first, floor: 0.1, k: 5, examples: {legal: ["Review this NDA clause"]}}
  learned: {path: router.npz, quality_tolerance: 0.05, candidates: [gpt-4o-mini, gpt-4o]}
  feedback: {enabled: false, keep_prompts: false, ttl_s: 2592000}
```
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.routing.keywords import CODE_KEYWORDS, COMPLEX_KEYWORDS

ORIGINAL_SIMPLE = "gpt-4o-mini"
ORIGINAL_CODE = "gpt-4o"
ORIGINAL_COMPLEX = "claude-3-5-sonnet-20241022"

Level = Literal["simple", "code", "complex"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScoreWeights(_Strict):
    """Weights of the graded complexity score's signals (``app.routing.signals``); they are normalised."""

    length: float = Field(default=0.30, ge=0)
    reasoning: float = Field(default=0.20, ge=0)
    questions: float = Field(default=0.10, ge=0)
    steps: float = Field(default=0.10, ge=0)
    constraints: float = Field(default=0.10, ge=0)
    math: float = Field(default=0.10, ge=0)
    code_work: float = Field(default=0.20, ge=0)
    code_exercise: float = Field(default=0.05, ge=0)


class ComplexityConfig(_Strict):
    """Targets per level (complex beats code beats simple) and the signals' thresholds and keywords."""

    simple: str = ORIGINAL_SIMPLE
    code: str = ORIGINAL_CODE
    complex: str = ORIGINAL_COMPLEX
    long_prompt_tokens: int = Field(
        default=1200, gt=0, description="Estimated prompt tokens from which a prompt counts as complex."
    )
    complex_keywords: tuple[str, ...] = COMPLEX_KEYWORDS
    code_keywords: tuple[str, ...] = CODE_KEYWORDS
    extra_complex_keywords: tuple[str, ...] = ()
    extra_code_keywords: tuple[str, ...] = ()
    weights: ScoreWeights = ScoreWeights()

    @property
    def all_complex_keywords(self) -> tuple[str, ...]:
        return self.complex_keywords + self.extra_complex_keywords

    @property
    def all_code_keywords(self) -> tuple[str, ...]:
        return self.code_keywords + self.extra_code_keywords

    def target(self, level: str) -> str:
        return {"complex": self.complex, "code": self.code}.get(level, self.simple)


#: The name the first version used; kept so that existing imports work.
ComplexityTargets = ComplexityConfig


class LevelTiers(_Strict):
    """The minimum quality tier a request of each complexity level needs."""

    simple: int = Field(default=2, ge=1, le=5)
    code: int = Field(default=3, ge=1, le=5)
    complex: int = Field(default=4, ge=1, le=5)

    def of(self, level: str) -> int:
        return {"complex": self.complex, "code": self.code}.get(level, self.simple)


class CostConfig(_Strict):
    """Cost-optimised routing: the cheapest model of a sufficient tier that fits the budget."""

    default_max_cost: float | None = Field(
        default=None, gt=0, description="USD budget per request when the request gives no max_cost."
    )
    expected_output_tokens: int = Field(
        default=512, ge=1, description="Output tokens assumed when the request has no max_tokens."
    )
    tiers: LevelTiers = LevelTiers()


def _original_task_table() -> dict[str, str]:
    return {
        "code": ORIGINAL_CODE,
        "analysis": ORIGINAL_CODE,
        "creative": ORIGINAL_COMPLEX,
        "translation": ORIGINAL_SIMPLE,
        "summarization": ORIGINAL_SIMPLE,
        "conversation": ORIGINAL_SIMPLE,
    }


class ConditionConfig(_Strict):
    """A rule condition: every field that is set must hold (an empty condition always holds)."""

    regex: str | None = Field(default=None, description="Python regex searched in the user text.")
    keywords: tuple[str, ...] | None = Field(default=None, description="Any of these, on word boundaries.")
    all_keywords: tuple[str, ...] | None = Field(default=None, description="All of these.")
    min_words: int | None = Field(default=None, ge=0)
    max_words: int | None = Field(default=None, ge=0)
    min_tokens: int | None = Field(default=None, ge=0, description="Estimated input tokens.")
    max_tokens: int | None = Field(default=None, ge=0)
    has_code: bool | None = Field(default=None, description="Fenced or recognisable code present.")
    min_messages: int | None = Field(default=None, ge=0)
    max_messages: int | None = Field(default=None, ge=0)
    metadata: dict[str, str] | None = Field(default=None, description="Request metadata equal to these.")
    task: str | None = Field(default=None, description="The detected (or given) task.")
    complexity: Level | None = None
    min_complexity_score: float | None = Field(
        default=None, ge=0, description="Graded complexity score at least this (0..1; complex prompts are 1+)."
    )
    any: tuple[ConditionConfig, ...] | None = Field(default=None, description="At least one holds.")
    not_: ConditionConfig | None = Field(default=None, alias="not", description="This does not hold.")
    custom: dict[str, Any] | None = Field(
        default=None, description="Conditions registered from Python: name -> argument."
    )

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("regex")
    @classmethod
    def _regex_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regex: {exc}") from None
        return value


class RuleConfig(_Strict):
    name: str = Field(min_length=1)
    target: str = Field(min_length=1)
    priority: int = 0
    when: ConditionConfig = ConditionConfig()


class EmbeddingConfig(_Strict):
    """The in-process embedding model shared by semantic task routing and the learned router
    (``app.routing.embedding``): ``auto`` is ``wordllama-l2-256`` when its package is installed, else none
    (keyword heuristics); naming a model whose package is missing is a startup error."""

    model: Literal["auto", "none", "wordllama-l2-256", "use-multilingual-v3"] = "auto"
    max_tokens: int | None = Field(
        default=None,
        ge=8,
        le=8192,
        description="Only the head of a prompt is embedded: tokens (default 512), words for USE (default 128).",
    )
    preload: bool = Field(
        default=False,
        description="Load the model at startup instead of on the first request routed by task or learned router.",
    )


class SemanticConfig(_Strict):
    """Semantic task routing: tasks defined by example prompts (``app.routing.semantic``). With ``combine:
    keywords_first`` (default) the keyword detector decides when any task keyword fires and the examples
    decide when none does (or when a task defined only by examples is nearest); ``sum`` adds
    ``keyword_weight`` per keyword hit to the similarity of every task and lets the sum decide."""

    enabled: bool = True
    combine: Literal["keywords_first", "sum"] = Field(
        default="keywords_first", description="How keyword hits and example similarity are combined."
    )
    floor: float = Field(default=0.1, ge=-1, le=1, description="Below this score a prompt is 'conversation'.")
    keyword_weight: float = Field(
        default=0.05, ge=0, le=1, description="Weight of each keyword hit (at most 5) added to a task's score."
    )
    k: int = Field(default=5, ge=1, le=20, description="A task's score: mean similarity of its k nearest examples.")
    examples: dict[str, tuple[str, ...]] = Field(
        default_factory=dict, description="Per task: example prompts added to the built-in ones (or a new task)."
    )
    replace_examples: bool = Field(default=False, description="Use only the configured examples.")


class LearnedConfig(_Strict):
    """The learned quality-cost router (``app.routing.learned``), trained by ``switchyard router train``."""

    path: Path | None = Field(default=None, description="The trained router file (.npz).")
    quality_tolerance: float = Field(
        default=0.05, ge=0, le=1, description="Pick the cheapest model predicted within this of the best."
    )
    candidates: tuple[str, ...] = Field(
        default=(), description="Catalogue models it may choose (default: every model the file knows)."
    )


class FeedbackConfig(_Strict):
    """``POST /v1/feedback``: scores recorded against each request's routing decision (shared state store)."""

    enabled: bool = Field(
        default=True, description="Record every answered request's decision (one background store write)."
    )
    keep_prompts: bool = Field(default=False, description="Store the prompt with the decision (for training).")
    ttl_s: float = Field(default=30 * 86400, gt=0, description="How long decisions and feedback are kept.")


class RoutingConfig(_Strict):
    """Routing defaults. With no ``routing:`` section these are the original design's."""

    auto: Literal["complexity", "cost", "task", "learned"] = Field(
        default="complexity", description="Strategy of routing 'auto' when no rule matches."
    )
    default_model: str | None = Field(default=None, description="Used when a strategy has no better idea.")
    rules: tuple[RuleConfig, ...] = ()
    complexity: ComplexityConfig = ComplexityConfig()
    cost: CostConfig = CostConfig()
    tasks: dict[str, str] = Field(default_factory=_original_task_table)
    task_keywords: dict[str, tuple[str, ...]] = Field(
        default_factory=dict, description="Per task: keywords replacing the built-in ones (or a new task)."
    )
    preference: tuple[str, ...] = Field(
        default=(),
        description="Order in which to try other models when a chosen one is unavailable.",
    )
    embedding: EmbeddingConfig = EmbeddingConfig()
    semantic: SemanticConfig = SemanticConfig()
    learned: LearnedConfig = LearnedConfig()
    feedback: FeedbackConfig = FeedbackConfig()


def check_routing_references(routing: RoutingConfig, models: Mapping[str, object]) -> None:
    """Explicitly written rule targets must be configured models (a typo is a config error)."""
    for name in routing.learned.candidates:
        if name not in models:
            raise ValueError(f"routing.learned.candidates names unknown model {name!r}")
    for index, rule in enumerate(routing.rules):
        if rule.target not in models:
            raise ValueError(f"routing.rules.{index}.target names unknown model {rule.target!r}")
    names = [rule.name for rule in routing.rules]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"routing.rules has duplicate names: {', '.join(duplicates)}")
