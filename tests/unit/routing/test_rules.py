"""The rule router: every condition type, priorities, the default, Python-registered conditions."""

from __future__ import annotations

from typing import Any

import pytest

from app.errors import ConfigError
from app.routing.features import Features, extract_features
from app.routing.router import route
from app.routing.rules import EMPTY_REGISTRY, Rule, compile_condition, compile_rules, first_match
from app.settings.catalogue import parse_config
from app.settings.routing import ConditionConfig, RoutingConfig

from .helpers import catalogue, inp, request, routing

CODE = "```\nprint(1)\n```"


def holds(when: dict[str, Any], prompt: str, **request_fields: Any) -> bool:
    spec = ConditionConfig.model_validate(when)
    predicate = compile_condition(spec, RoutingConfig())
    return predicate(extract_features(request(prompt, **request_fields)))


@pytest.mark.parametrize(
    ("when", "prompt", "fields", "expected"),
    [
        ({}, "anything", {}, True),
        ({"regex": r"(?i)\bbonjour\b"}, "Bonjour tout le monde", {}, True),
        ({"regex": r"\d{4}-\d{2}-\d{2}"}, "no date here", {}, False),
        ({"keywords": ["invoice", "refund"]}, "I need a refund", {}, True),
        ({"keywords": ["fix"]}, "add a prefix", {}, False),
        ({"all_keywords": ["invoice", "refund"]}, "refund my invoice", {}, True),
        ({"all_keywords": ["invoice", "refund"]}, "refund me", {}, False),
        ({"min_words": 3}, "one two three", {}, True),
        ({"min_words": 4}, "one two three", {}, False),
        ({"max_words": 2}, "one two three", {}, False),
        ({"min_tokens": 100}, "word " * 200, {}, True),
        ({"max_tokens": 100}, "word " * 200, {}, False),
        ({"has_code": True}, CODE, {}, True),
        ({"has_code": True}, "no code", {}, False),
        ({"has_code": False}, "no code", {}, True),
        ({"min_messages": 3}, "third", {"history": ("first", "second")}, True),
        ({"min_messages": 3}, "only", {}, False),
        ({"max_messages": 1}, "third", {"history": ("first", "second")}, False),
        ({"metadata": {"team": "legal"}}, "hi", {"metadata": {"team": "legal", "x": "y"}}, True),
        ({"metadata": {"team": "legal"}}, "hi", {"metadata": {"team": "sales"}}, False),
        ({"metadata": {"team": "legal"}}, "hi", {}, False),
        ({"task": "translation"}, "Translate this into German", {}, True),
        ({"task": "translation"}, "Write a poem", {}, False),
        ({"complexity": "code"}, "fix this bug", {}, True),
        ({"complexity": "complex"}, "fix this bug", {}, False),
        ({"min_complexity_score": 1.0}, "prove it", {}, True),  # complex prompts score 1 + graded
        ({"min_complexity_score": 0.2}, "Write a function to reverse a string", {}, False),  # short exercise
        ({"min_complexity_score": 0.2}, "Fix the bug:\n```\nx = 1 / 0\n```", {}, True),  # work on given code
        ({"any": [{"keywords": ["urgent"]}, {"min_words": 50}]}, "urgent!", {}, True),
        ({"any": [{"keywords": ["urgent"]}, {"min_words": 50}]}, "later", {}, False),
        ({"not": {"has_code": True}}, "plain", {}, True),
        ({"keywords": ["refund"], "max_words": 3}, "refund please", {}, True),  # all fields must hold
        ({"keywords": ["refund"], "max_words": 3}, "I would like a refund please", {}, False),
    ],
)
def test_condition_types(when: dict[str, Any], prompt: str, fields: dict[str, Any], expected: bool) -> None:
    assert holds(when, prompt, **fields) is expected


def test_rules_run_highest_priority_first_then_in_file_order() -> None:
    config = routing(
        rules=[
            {"name": "low", "target": "gpt-4o-mini", "priority": 1, "when": {"keywords": ["refund"]}},
            {"name": "high", "target": "gpt-4o", "priority": 10, "when": {"keywords": ["refund"]}},
            {"name": "high-too", "target": "gemini-2.0-flash", "priority": 10, "when": {}},
        ]
    )
    rule = first_match(compile_rules(config), Features.of_text("refund"))
    assert rule is not None and rule.name == "high"
    rule = first_match(compile_rules(config), Features.of_text("hello"))
    assert rule is not None and rule.name == "high-too"


@pytest.mark.parametrize(
    ("prompt", "mode", "strategy", "model", "reason"),
    [
        ("refund my order", "rules", "rules", "gpt-4o", "rule refunds (priority 5)"),
        ("hello", "rules", "rules", "gemini-2.0-flash", "no rule matched: default model"),
        ("refund my order", "auto", "rules", "gpt-4o", "rule refunds"),
        ("hello", "auto", "complexity", "gpt-4o-mini", "simple"),  # no match: routing.auto
    ],
)
def test_rule_router_and_its_default(prompt: str, mode: str, strategy: str, model: str, reason: str) -> None:
    config = routing(
        default_model="gemini-2.0-flash",
        rules=[{"name": "refunds", "target": "gpt-4o", "priority": 5, "when": {"keywords": ["refund"]}}],
    )
    decision = route(inp(prompt, mode), catalogue(), config)
    assert (decision.strategy, decision.model) == (strategy, model)
    assert reason in decision.reason


def test_rule_without_default_model_falls_back_to_the_simple_target() -> None:
    decision = route(inp("hello", "rules"), catalogue(), RoutingConfig())
    assert decision.model == "gpt-4o-mini"


def test_rule_target_unavailable_is_skipped_and_said() -> None:
    config = routing(rules=[{"name": "big", "target": "gpt-4o", "when": {}}])
    decision = route(inp("hi", "rules"), catalogue(unavailable={"gpt-4o": "no API key"}), config)
    assert decision.model != "gpt-4o"
    assert decision.skipped[0].model == "gpt-4o" and decision.skipped[0].reason == "no API key"
    assert "gpt-4o skipped (no API key)" in decision.reason


def test_python_rules_and_registered_conditions() -> None:
    rule = Rule("vip", "gpt-4o", lambda f: f.metadata.get("tier") == "vip", priority=3)
    assert first_match([rule], extract_features(request("x", metadata={"tier": "vip"}))) is rule
    assert first_match([rule], extract_features(request("x"))) is None

    registry = EMPTY_REGISTRY.register(
        "shouting", lambda ratio: lambda f: sum(c.isupper() for c in f.text) >= ratio * len(f.text)
    )
    assert "shouting" not in EMPTY_REGISTRY.builders  # registries are immutable
    config = routing(rules=[{"name": "calm-down", "target": "gpt-4o", "when": {"custom": {"shouting": 0.5}}}])
    assert route(inp("WHY IS IT BROKEN", "rules"), catalogue(), config, registry).model == "gpt-4o"
    assert route(inp("why is it broken", "rules"), catalogue(), config, registry).model == "gpt-4o-mini"


def test_unknown_custom_condition_is_a_config_error_naming_the_rule() -> None:
    config = routing(rules=[{"name": "r", "target": "gpt-4o", "when": {"custom": {"nope": 1}}}])
    with pytest.raises(ConfigError) as info:
        compile_rules(config, EMPTY_REGISTRY, "gw.yaml")
    assert info.value.key == "routing.rules.0.when.custom" and "nope" in info.value.reason


@pytest.mark.parametrize(
    ("rules", "key", "reason"),
    [
        ([{"name": "r", "target": "ghost"}], "<root>", "routing.rules.0.target names unknown model 'ghost'"),
        ([{"name": "r", "target": "m", "when": {"regex": "("}}], "routing.rules.0.when.regex", "invalid regex"),
        ([{"name": "r", "target": "m", "when": {"colour": "red"}}], "routing.rules.0.when.colour", "Extra inputs"),
        ([{"name": "r", "target": "m", "when": {"min_words": -1}}], "routing.rules.0.when.min_words", "greater"),
        ([{"name": "r", "target": "m"}, {"name": "r", "target": "m"}], "<root>", "duplicate names: r"),
        ([{"target": "m"}], "routing.rules.0.name", "Field required"),
    ],
)
def test_invalid_rules_are_config_errors(rules: list[dict[str, Any]], key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"models": {"m": {"provider": "openai"}}, "routing": {"rules": rules}}, "gw.yaml")
    assert info.value.key == key
    assert reason in info.value.reason
