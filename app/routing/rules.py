"""The rule router: named rules with a condition, a target and a priority, plus a default model.

Rules are tried highest priority first (ties in declaration order); the first whose condition holds picks
its target. Conditions come from YAML (``ConditionConfig``: regex, keywords, word/token thresholds, code,
message count, metadata, detected task or complexity, any/not) or from Python: a ``Rule`` takes any
``Predicate``, and ``ConditionRegistry.register`` adds a named condition usable in YAML under ``custom:``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import field
from types import MappingProxyType
from typing import Any

from app.errors import ConfigError
from app.records import record
from app.routing.complexity import classify_complexity
from app.routing.features import Features, keyword_hits
from app.routing.task import detect_task
from app.settings.routing import ConditionConfig, RoutingConfig

Predicate = Callable[[Features], bool]
ConditionBuilder = Callable[[Any], Predicate]


@record(slots=True)
class ConditionRegistry:
    """Named conditions available to YAML rules under ``custom:`` (immutable; ``register`` copies)."""

    builders: Mapping[str, ConditionBuilder] = field(default_factory=lambda: MappingProxyType({}))

    def register(self, name: str, builder: ConditionBuilder) -> ConditionRegistry:
        """A registry that also knows ``name``; ``builder(argument)`` returns the predicate."""
        return ConditionRegistry(MappingProxyType({**self.builders, name: builder}))

    def build(self, name: str, argument: Any) -> Predicate:
        if name not in self.builders:
            known = ", ".join(sorted(self.builders)) or "none registered"
            raise KeyError(f"unknown custom condition {name!r} ({known})")
        return self.builders[name](argument)


EMPTY_REGISTRY = ConditionRegistry()


@record(slots=True)
class Rule:
    name: str
    target: str
    condition: Predicate
    priority: int = 0
    description: str = ""


def _all(predicates: list[Predicate]) -> Predicate:
    return lambda f: all(p(f) for p in predicates)


def _bound(limit: int, attribute: str, sign: int) -> Predicate:
    """``feature >= limit`` (sign 1) or ``feature <= limit`` (sign -1)."""
    if sign > 0:
        return lambda f: getattr(f, attribute) >= limit
    return lambda f: getattr(f, attribute) <= limit


def compile_condition(
    spec: ConditionConfig, routing: RoutingConfig, registry: ConditionRegistry = EMPTY_REGISTRY
) -> Predicate:
    """The predicate of a YAML condition: every field that is set must hold."""
    checks: list[Predicate] = []
    if spec.regex is not None:
        pattern = re.compile(spec.regex)
        checks.append(lambda f: pattern.search(f.text) is not None)
    if spec.keywords:
        any_of = spec.keywords
        checks.append(lambda f: bool(keyword_hits(f.text, any_of)))
    if spec.all_keywords:
        all_of = spec.all_keywords
        checks.append(lambda f: len(keyword_hits(f.text, all_of)) == len({k.lower() for k in all_of}))
    bounds = (
        (spec.min_words, "words", 1),
        (spec.max_words, "words", -1),
        (spec.min_tokens, "tokens", 1),
        (spec.max_tokens, "tokens", -1),
        (spec.min_messages, "messages", 1),
        (spec.max_messages, "messages", -1),
    )
    for limit, attribute, sign in bounds:
        if limit is not None:
            checks.append(_bound(limit, attribute, sign))
    if spec.has_code is not None:
        want = spec.has_code
        checks.append(lambda f: f.code == want)
    if spec.metadata:
        expected = dict(spec.metadata)
        checks.append(lambda f: all(f.metadata.get(k) == v for k, v in expected.items()))
    if spec.task is not None:
        task, keywords = spec.task, routing.task_keywords
        checks.append(lambda f: detect_task(f, keywords).task == task)
    if spec.complexity is not None:
        level, complexity = spec.complexity, routing.complexity
        checks.append(lambda f: classify_complexity(f, complexity).level == level)
    if spec.min_complexity_score is not None:
        threshold, settings = spec.min_complexity_score, routing.complexity
        checks.append(lambda f: classify_complexity(f, settings).score >= threshold)
    if spec.any is not None:
        alternatives = [compile_condition(s, routing, registry) for s in spec.any]
        checks.append(lambda f: any(p(f) for p in alternatives))
    if spec.not_ is not None:
        negated = compile_condition(spec.not_, routing, registry)
        checks.append(lambda f: not negated(f))
    for name, argument in (spec.custom or {}).items():
        checks.append(registry.build(name, argument))
    return _all(checks)


def compile_rules(
    routing: RoutingConfig, registry: ConditionRegistry = EMPTY_REGISTRY, source: str = "<config>"
) -> tuple[Rule, ...]:
    """The YAML rules as ``Rule`` objects; an unknown custom condition is a ``ConfigError``."""
    rules: list[Rule] = []
    for index, spec in enumerate(routing.rules):
        try:
            condition = compile_condition(spec.when, routing, registry)
        except KeyError as exc:
            raise ConfigError(source, f"routing.rules.{index}.when.custom", str(exc.args[0])) from None
        rules.append(Rule(spec.name, spec.target, condition, spec.priority))
    return tuple(rules)


def ordered(rules: Iterable[Rule]) -> list[Rule]:
    """Highest priority first; equal priorities keep their declaration order (sort is stable)."""
    return sorted(rules, key=lambda r: -r.priority)


def first_match(rules: Iterable[Rule], features: Features) -> Rule | None:
    for rule in ordered(rules):
        if rule.condition(features):
            return rule
    return None
