"""The complexity router: complex reasoning beats code beats simple, without the original's flaws."""

from __future__ import annotations

import pytest

from app.routing.complexity import classify_complexity
from app.routing.features import Features
from app.settings.routing import ComplexityConfig

LONG = "word " * 1300


@pytest.mark.parametrize(
    ("prompt", "level", "why"),
    [
        # The original design's examples.
        ("What is the capital of France?", "simple", "no complexity signals"),
        ("Write a Python function to reverse a string", "code", "code keywords"),
        ("Analyze the trade-offs between microservices and a monolith", "complex", "reasoning keywords"),
        ("Debug this code and explain why it fails step by step", "complex", "reasoning keywords"),  # complex > code
        ("Compare these two SQL queries", "complex", "reasoning keywords"),
        # The original's flaws, fixed.
        ("Add a prefix to each file name", "simple", "no complexity signals"),  # "prefix" is not "fix"
        ("What a classic movie", "simple", "no complexity signals"),  # "classic" is not "class"
        ("Why is this slow?\n```\nfor i in range(10**9): pass\n```", "code", "fenced code block"),
        ("def f(x):\n    if x:\n        return 1\n    return 0", "code", "source code"),
        (LONG, "complex", "long prompt"),
        ("Hi!", "simple", "no complexity signals"),
    ],
)
def test_levels(prompt: str, level: str, why: str) -> None:
    verdict = classify_complexity(Features.of_text(prompt))
    assert verdict.level == level
    assert why in verdict.reason


@pytest.mark.parametrize(
    ("config", "prompt", "level"),
    [
        (ComplexityConfig(long_prompt_tokens=10), "tell me about the sea and the sky and the sun", "complex"),
        (ComplexityConfig(long_prompt_tokens=10_000), LONG, "simple"),
        (ComplexityConfig(extra_complex_keywords=("audit",)), "audit our logging", "complex"),
        (ComplexityConfig(complex_keywords=()), "analyze this", "simple"),
        (ComplexityConfig(code_keywords=("kubectl",)), "kubectl get pods", "code"),
        (ComplexityConfig(code_keywords=("kubectl",)), "write a python function", "simple"),
    ],
)
def test_thresholds_and_keywords_come_from_config(config: ComplexityConfig, prompt: str, level: str) -> None:
    assert classify_complexity(Features.of_text(prompt), config).level == level


def test_score_orders_levels_then_length() -> None:
    scores = [
        classify_complexity(Features.of_text(p)).score
        for p in ("hi", "hi " * 200, "fix the bug", "fix the bug " * 100, "prove it", "prove it " * 100)
    ]
    assert scores == sorted(scores)
    assert len(set(scores)) == len(scores)
