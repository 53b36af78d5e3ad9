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


def test_complex_prompts_score_above_all_others() -> None:
    complex_scores = [classify_complexity(Features.of_text(p)).score for p in ("prove it", "prove it " * 100, LONG)]
    other_scores = [
        classify_complexity(Features.of_text(p)).score
        for p in ("hi", "hi " * 1000, "fix the bug " * 100, "1. first\n2. then\n3. finally\nwith 2+2=4 only?")
    ]
    assert min(complex_scores) >= 1.0 > max(other_scores)


@pytest.mark.parametrize(
    ("lower", "higher"),
    [
        ("hi", "hi " * 200),  # longer
        ("Write a function to reverse a string", "Fix the bug in this:\n```\ns[::-2]\n```"),  # work on given code
        ("reverse the list", "Write a function to reverse a list"),  # a code exercise is still a small bump
        ("List some rivers.", "List rivers. Then sort them. Finally, explain the order."),  # multi-step
        ("Name a colour.", "Name exactly one colour, without adjectives, and only in English."),  # constraints
        ("What is x?", "Solve x^2 + 3 = 12 and 2*x - 1 = 5."),  # math notation
        ("Where is Rome?", "Where is Rome? And Paris? And Oslo?"),  # several questions
    ],
)
def test_graded_score_orders_by_its_signals(lower: str, higher: str) -> None:
    low = classify_complexity(Features.of_text(lower)).score
    high = classify_complexity(Features.of_text(higher)).score
    assert 0.0 <= low < high


def test_short_code_exercise_is_code_level_but_scores_below_a_long_multi_part_question() -> None:
    exercise = classify_complexity(Features.of_text("Write a Python function to reverse a string"))
    question = classify_complexity(
        Features.of_text("Which gas do plants take in? Which one do they release? " * 20 + "Answer only A or B.")
    )
    assert exercise.level == "code" and question.level == "simple"
    assert exercise.score < question.score


def test_weights_come_from_config() -> None:
    prompt = "Write a function to reverse a string"
    default = classify_complexity(Features.of_text(prompt)).score
    heavier = classify_complexity(Features.of_text(prompt), ComplexityConfig(weights={"code_exercise": 5.0})).score
    assert heavier > default
