"""Builders shared by the routing unit tests."""

from __future__ import annotations

from typing import Any

from app.domain import ChatRequest, Message
from app.routing.base import ModelInfo, RouteInput
from app.settings.routing import RoutingConfig


def request(
    prompt: str, *, max_tokens: int | None = None, metadata: dict[str, str] | None = None, history: tuple[str, ...] = ()
) -> ChatRequest:
    """A request whose last user turn is ``prompt``, after ``history`` (alternating user/assistant)."""
    messages = [Message("user" if i % 2 == 0 else "assistant", text) for i, text in enumerate(history)]
    messages.append(Message("user", prompt))
    return ChatRequest(messages=tuple(messages), max_tokens=max_tokens, metadata=dict(metadata or {}))


def inp(prompt: str, mode: str = "auto", **fields: Any) -> RouteInput:
    request_fields = {k: fields.pop(k) for k in ("max_tokens", "metadata", "history") if k in fields}
    return RouteInput(request=request(prompt, **request_fields), mode=mode, **fields)


def model(
    name: str,
    tier: int,
    price_in: float | None = 0.001,
    price_out: float | None = 0.002,
    *,
    fallbacks: tuple[str, ...] = (),
    unavailable: str | None = None,
) -> ModelInfo:
    return ModelInfo(name, "openai", tier, price_in, price_out, fallbacks, unavailable)


#: The shipped catalogue's models with their genai-prices list prices (USD per 1k tokens).
ORIGINAL_MODELS = (
    model("gpt-4o-mini", 2, 0.00015, 0.0006),
    model("gpt-4o", 4, 0.0025, 0.01),
    model("claude-3-5-sonnet-20241022", 4, 0.003, 0.015),
    model("claude-3-5-haiku-20241022", 2, 0.0008, 0.004),
    model("gemini-2.0-flash", 2, 0.0001, 0.0004),
    model("local-smollm2", 1, 0.0, 0.0),
)


def catalogue(*models: ModelInfo, unavailable: dict[str, str] | None = None) -> dict[str, ModelInfo]:
    """A catalogue view (default: the shipped models), with some marked unavailable."""
    view: dict[str, ModelInfo] = {}
    for info in models or ORIGINAL_MODELS:
        reason = (unavailable or {}).get(info.name, info.unavailable_reason)
        view[info.name] = ModelInfo(
            info.name, info.provider, info.tier, info.cost_per_1k_input, info.cost_per_1k_output, info.fallbacks, reason
        )
    return view


def routing(**fields: Any) -> RoutingConfig:
    return RoutingConfig.model_validate(fields)
