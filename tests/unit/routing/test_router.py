"""The entry point: strategy resolution, the original design's defaults, task routing, availability."""

from __future__ import annotations

from typing import Any

import pytest

from app.errors import InvalidRequestError, ModelNotFoundError, NoModelAvailableError
from app.routing.router import resolve_mode, route
from app.settings.catalogue import parse_config
from app.settings.routing import RoutingConfig

from .helpers import catalogue, inp, routing

ORIGINAL = RoutingConfig()  # what a config without `routing:` gets


@pytest.mark.parametrize(
    ("fields", "mode"),
    [
        ({}, "auto"),
        ({"model": "gpt-4o"}, "specific"),
        ({"task_type": "code"}, "task"),
        ({"task_type": "code", "model": "gpt-4o"}, "specific"),
        ({"max_cost": 0.01}, "cost"),
        ({"mode": "complexity", "task_type": "code"}, "complexity"),
        ({"mode": "parallel"}, "parallel"),
    ],
)
def test_resolve_mode(fields: dict[str, Any], mode: str) -> None:
    assert resolve_mode(inp("hi", **fields)) == mode


@pytest.mark.parametrize(
    ("prompt", "model", "level"),
    [
        ("What is the capital of France?", "gpt-4o-mini", "simple"),
        ("Write a Python function to sort a list", "gpt-4o", "code"),
        ("Explain why the sky is blue, step by step", "claude-3-5-sonnet-20241022", "complex"),
        ("Add a prefix to each name", "gpt-4o-mini", "simple"),
    ],
)
def test_original_complexity_defaults(prompt: str, model: str, level: str) -> None:
    decision = route(inp(prompt), catalogue(), ORIGINAL)
    assert (decision.strategy, decision.model, decision.details["level"]) == ("complexity", model, level)
    assert decision.reason.startswith(level)


@pytest.mark.parametrize(
    ("task_type", "model"),
    [
        ("code", "gpt-4o"),
        ("analysis", "gpt-4o"),
        ("creative", "claude-3-5-sonnet-20241022"),
        ("translation", "gpt-4o-mini"),
        ("summarization", "gpt-4o-mini"),
        ("conversation", "gpt-4o-mini"),
        ("Creative", "claude-3-5-sonnet-20241022"),
    ],
)
def test_original_task_table_and_task_type_overrides_detection(task_type: str, model: str) -> None:
    decision = route(inp("Write a poem about rain", task_type=task_type), catalogue(), ORIGINAL)
    assert (decision.strategy, decision.model) == ("task", model)
    assert "task_type given" in decision.reason


@pytest.mark.parametrize(
    ("prompt", "task", "model"),
    [
        ("Write a poem about rain", "creative", "claude-3-5-sonnet-20241022"),
        ("Translate 'thank you' into Spanish", "translation", "gpt-4o-mini"),
        ("Refactor this Python function", "code", "gpt-4o"),
        ("Hi there", "conversation", "gpt-4o-mini"),
    ],
)
def test_task_routing_without_task_type_detects(prompt: str, task: str, model: str) -> None:
    decision = route(inp(prompt, "task"), catalogue(), ORIGINAL)
    assert (decision.model, decision.details["task"]) == (model, task)


def test_detected_task_missing_from_the_table_routes_by_complexity() -> None:
    decision = route(inp("Solve the equation 2x + 3 = 7 and prove it", "task"), catalogue(), ORIGINAL)
    assert decision.details == {"task": "reasoning", "level": "complex"}
    assert decision.model == "claude-3-5-sonnet-20241022"
    assert "not in the task table" in decision.reason


def test_configured_task_table_and_keywords() -> None:
    config = routing(
        tasks={"legal": "gpt-4o", "conversation": "gemini-2.0-flash"}, task_keywords={"legal": ["contract"]}
    )
    assert route(inp("Check this contract", "task"), catalogue(), config).model == "gpt-4o"
    assert route(inp("hello", "task"), catalogue(), config).model == "gemini-2.0-flash"


def test_unknown_task_type_is_400() -> None:
    with pytest.raises(InvalidRequestError) as info:
        route(inp("hi", task_type="astrology"), catalogue(), ORIGINAL)
    assert info.value.status_code == 400 and "known: " in info.value.message


@pytest.mark.parametrize(
    ("unavailable", "expected_model", "skipped"),
    [
        ({"gpt-4o": "no API key"}, "claude-3-5-sonnet-20241022", ["gpt-4o"]),  # the closest tier
        ({"gpt-4o": "circuit open"}, "claude-3-5-sonnet-20241022", ["gpt-4o"]),
        ({}, "gpt-4o", []),
    ],
)
def test_unavailable_target_is_skipped_and_said(
    unavailable: dict[str, str], expected_model: str, skipped: list[str]
) -> None:
    decision = route(inp("Write a Python function"), catalogue(unavailable=unavailable), ORIGINAL)
    assert decision.model == expected_model
    assert [s.model for s in decision.skipped] == skipped
    for name in skipped:
        assert f"{name} skipped ({unavailable[name]})" in decision.reason
        assert name not in decision.models


def test_unconfigured_target_is_skipped_as_not_configured() -> None:
    view = {k: v for k, v in catalogue().items() if k != "claude-3-5-sonnet-20241022"}
    decision = route(inp("Analyze the implications"), view, ORIGINAL)
    assert decision.skipped[0].model == "claude-3-5-sonnet-20241022"
    assert decision.skipped[0].reason == "not configured"
    assert decision.model == "gpt-4o"  # closest tier


def test_preference_orders_alternatives() -> None:
    config = routing(preference=["local-smollm2"])
    decision = route(inp("hi"), catalogue(unavailable={"gpt-4o-mini": "no API key"}), config)
    assert decision.model == "local-smollm2"


def test_nothing_available_is_503() -> None:
    view = catalogue(unavailable={name: "no API key" for name in catalogue()})
    with pytest.raises(NoModelAvailableError):
        route(inp("hi"), view, ORIGINAL)


def test_specific_and_parallel() -> None:
    view = catalogue(unavailable={"gemini-2.0-flash": "no API key"})
    decision = route(inp("hi", model="gpt-4o"), view, ORIGINAL)
    assert (decision.strategy, decision.models[0]) == ("specific", "gpt-4o")
    with pytest.raises(ModelNotFoundError):
        route(inp("hi", model="ghost"), view, ORIGINAL)
    with pytest.raises(NoModelAvailableError):
        route(inp("hi", model="gemini-2.0-flash"), view, ORIGINAL)
    decision = route(inp("hi", "parallel", models=("gpt-4o", "gemini-2.0-flash")), view, ORIGINAL)
    assert decision.models == ("gpt-4o",) and decision.skipped[0].model == "gemini-2.0-flash"


def test_unknown_mode_is_400() -> None:
    with pytest.raises(InvalidRequestError):
        route(inp("hi", "fastest"), catalogue(), ORIGINAL)


def test_config_without_routing_section_has_the_original_defaults() -> None:
    config = parse_config({"models": {"x": {"provider": "openai"}}}).routing
    assert config == ORIGINAL
    assert (config.complexity.simple, config.complexity.code, config.complexity.complex) == (
        "gpt-4o-mini",
        "gpt-4o",
        "claude-3-5-sonnet-20241022",
    )
    assert config.auto == "complexity" and config.rules == () and config.cost.default_max_cost is None


def test_specific_unusable_model_goes_to_its_usable_fallbacks_and_says_so() -> None:
    from app.routing.base import ModelInfo

    view = {
        "primary": ModelInfo("primary", "openai", 4, 0.01, 0.03, ("down", "backup"), "circuit open"),
        "down": ModelInfo("down", "anthropic", 4, 0.01, 0.03, (), "no API key"),
        "backup": ModelInfo("backup", "google", 3, 0.001, 0.003),
    }
    decision = route(inp("hi", model="primary"), view, ORIGINAL)
    assert decision.models == ("backup",)
    assert [(s.model, s.reason) for s in decision.skipped] == [("primary", "circuit open")]
    assert "circuit open" in decision.reason and "backup" in decision.reason
    view["backup"] = ModelInfo("backup", "google", 3, 0.001, 0.003, (), "no API key")
    with pytest.raises(NoModelAvailableError):
        route(inp("hi", model="primary"), view, ORIGINAL)
