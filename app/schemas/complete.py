"""``POST /v1/complete``: the original service's request and response, extended.

Bad input is a 400 naming the field: numbers must be finite (the JSON body may say ``NaN`` or ``Infinity``,
which Python's parser accepts), and text must be valid Unicode (a lone UTF-16 surrogate escape such as
``"\ud800"`` cannot be sent to any model).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from app.domain import ChatRequest, Message
from app.orchestration.options import HedgeOptions, RunOptions

MAX_PROMPT_CHARS = 1_000_000
STRICT = ConfigDict(extra="forbid", allow_inf_nan=False)


def _valid_unicode(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise PydanticCustomError(
            "invalid_value", "the text holds a lone UTF-16 surrogate escape, which is not valid Unicode"
        ) from None
    return value


Text = Annotated[str, AfterValidator(_valid_unicode)]
"""A string that is valid Unicode (every text field of the request)."""


class ChatMessageIn(BaseModel):
    model_config = STRICT

    role: Literal["system", "user", "assistant"]
    content: Text = Field(max_length=MAX_PROMPT_CHARS)


class HedgeIn(BaseModel):
    """Hedging choices; ``delay_s`` overrides the configured delay and the observed p95."""

    model_config = STRICT

    delay_s: float | None = Field(default=None, gt=0, le=600)


class CompleteRequest(BaseModel):
    """Either ``prompt`` or ``messages``; ``routing`` picks how the model is chosen."""

    model_config = STRICT

    prompt: Text | None = Field(default=None, max_length=MAX_PROMPT_CHARS)
    messages: list[ChatMessageIn] | None = Field(default=None, min_length=1, max_length=1000)
    system: Text | None = Field(default=None, max_length=MAX_PROMPT_CHARS, description="System prompt.")
    routing: Literal["auto", "specific", "parallel", "task", "cost", "complexity", "rules", "learned"] = "auto"
    model: Text | None = Field(default=None, min_length=1, max_length=200)
    task_type: Text | None = Field(default=None, min_length=1, max_length=50)
    max_cost: float | None = Field(default=None, gt=0, description="USD budget for routing 'cost'.")
    quality_tolerance: float | None = Field(
        default=None, ge=0, le=1, allow_inf_nan=False, description="Learned routing: cheapest within this of best."
    )
    models: list[Text] | None = Field(default=None, min_length=1, max_length=16)
    max_tokens: int | None = Field(default=None, ge=1, le=1_000_000)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    stop: list[Text] | None = Field(default=None, max_length=4)
    metadata: dict[Text, Text] | None = Field(default=None, max_length=32)
    strategy: Literal["race", "all", "consensus", "vote"] | None = Field(
        default=None, description="Parallel strategy (implies routing 'parallel'); default race."
    )
    judge: Text | None = Field(default=None, min_length=1, max_length=200, description="Judge of 'vote'.")
    selector: Literal["agreement", "longest", "shortest", "cheapest"] | None = Field(
        default=None, description="How consensus (and a vote whose judge fails) picks the answer."
    )
    hedge: bool | HedgeIn | None = Field(default=None, description="Hedge the primary model with the next.")
    timeout_s: float | None = Field(default=None, gt=0, description="Overall deadline of this request.")
    stream: bool = Field(default=False, description="Answer as Server-Sent Events (delta, done or error).")

    @field_validator("prompt")
    @classmethod
    def _prompt_not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("prompt must not be empty")
        return value

    @model_validator(mode="after")
    def _one_input(self) -> CompleteRequest:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("give exactly one of 'prompt' or 'messages'")
        if self.messages is not None and not any(m.role == "user" and m.content.strip() for m in self.messages):
            raise ValueError("messages must contain a non-empty user message")
        if self.routing == "specific" and not self.model:
            raise ValueError("routing 'specific' requires 'model'")
        return self

    @model_validator(mode="after")
    def _orchestration_choices(self) -> CompleteRequest:
        parallel_only = [f for f in ("strategy", "judge", "selector") if getattr(self, f) is not None]
        if parallel_only and self.routing == "auto" and "routing" not in self.model_fields_set:
            self.routing = "parallel"
        if parallel_only and self.routing != "parallel":
            raise ValueError(f"'{parallel_only[0]}' needs routing 'parallel'")
        if self.judge is not None and self.strategy != "vote":
            raise ValueError("'judge' needs strategy 'vote'")
        if self.selector is not None and self.strategy not in ("consensus", "vote"):
            raise ValueError("'selector' needs strategy 'consensus' or 'vote'")
        if self.hedge not in (None, False) and self.routing == "parallel":
            raise ValueError("'hedge' applies to single-answer routing, not 'parallel'")
        return self

    @model_validator(mode="after")
    def _stream_choices(self) -> CompleteRequest:
        if self.stream and (self.strategy not in (None, "race") or self.hedge not in (None, False)):
            raise ValueError("'stream' supports single-answer routing and strategy 'race' only")
        return self

    def run_options(self) -> RunOptions:
        """The orchestration choices of this request."""
        hedge: HedgeOptions | None = None
        if self.hedge is True:
            hedge = HedgeOptions()
        elif isinstance(self.hedge, HedgeIn):
            hedge = HedgeOptions(delay_s=self.hedge.delay_s)
        return RunOptions(
            strategy=self.strategy,
            judge=self.judge,
            selector=self.selector,
            hedge=hedge,
            timeout_s=self.timeout_s,
        )

    def to_chat_request(self) -> ChatRequest:
        messages: list[Message] = []
        if self.system:
            messages.append(Message("system", self.system))
        if self.prompt is not None:
            messages.append(Message("user", self.prompt))
        else:
            messages.extend(Message(m.role, m.content) for m in self.messages or ())
        return ChatRequest(
            messages=tuple(messages),
            max_tokens=self.max_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            stop=tuple(self.stop or ()),
            metadata=dict(self.metadata or {}),
        )


class Tokens(BaseModel):
    input: int
    output: int


class RouteInfo(BaseModel):
    strategy: str
    model: str | None
    reason: str
    candidates: list[str]
    skipped: list[dict[str, str]] = []


class CompleteResponse(BaseModel):
    content: str
    model: str
    provider: str
    tokens: Tokens
    latency_ms: float
    cost: float | None
    route: RouteInfo
    finish_reason: str | None = None
    upstream_model: str | None = None
    failures: list[dict[str, Any]] = []
    total_tokens: Tokens
    total_cost: float | None
    price_known: bool = True
    strategy: str | None = Field(default=None, description="fallback, hedge, race, all, consensus or vote.")
    retries: int = 0
    attempts: dict[str, int] = Field(default_factory=dict, description="Calls made per model.")
    candidates: list[dict[str, Any]] | None = None
    agreement: dict[str, float] | None = None
    selector: str | None = None
    judge: dict[str, Any] | None = None
    hedge: dict[str, Any] | None = None
    cancelled: list[dict[str, Any]] = Field(
        default_factory=list, description="Calls cut off before they answered; their usage is estimated."
    )
    totals_estimated: bool = Field(default=False, description="Totals include estimated usage of cut-off calls.")
