"""``POST /v1/complete``: the original service's request and response, extended."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.domain import ChatRequest, Message

MAX_PROMPT_CHARS = 1_000_000


class ChatMessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "user", "assistant"]
    content: str = Field(max_length=MAX_PROMPT_CHARS)


class CompleteRequest(BaseModel):
    """Either ``prompt`` or ``messages``; ``routing`` picks how the model is chosen."""

    model_config = ConfigDict(extra="forbid")

    prompt: str | None = Field(default=None, max_length=MAX_PROMPT_CHARS)
    messages: list[ChatMessageIn] | None = Field(default=None, min_length=1, max_length=1000)
    system: str | None = Field(default=None, max_length=MAX_PROMPT_CHARS, description="System prompt.")
    routing: Literal["auto", "specific", "parallel", "task"] = "auto"
    model: str | None = Field(default=None, min_length=1, max_length=200)
    task_type: str | None = Field(default=None, min_length=1, max_length=50)
    models: list[str] | None = Field(default=None, min_length=1, max_length=16)
    max_tokens: int | None = Field(default=None, ge=1, le=1_000_000)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    stop: list[str] | None = Field(default=None, max_length=4)
    metadata: dict[str, str] | None = Field(default=None, max_length=32)

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
        if self.messages is not None and not any(
            m.role == "user" and m.content.strip() for m in self.messages
        ):
            raise ValueError("messages must contain a non-empty user message")
        if self.routing == "specific" and not self.model:
            raise ValueError("routing 'specific' requires 'model'")
        return self

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
