"""Task detection on word boundaries, with the configurable keyword table."""

from __future__ import annotations

import pytest

from app.routing.features import Features
from app.routing.task import detect_task


@pytest.mark.parametrize(
    ("prompt", "task"),
    [
        ("Write a Python function that parses dates", "code"),
        ("Why does this crash?\n```\nx = None\nx.foo()\n```", "code"),
        ("Translate 'good morning' into French", "translation"),
        ("Summarize the key points of this meeting transcript", "summarization"),
        ("Write a short story about a lighthouse keeper", "creative"),
        ("Compose a haiku about autumn", "creative"),
        ("Pretend you are a pirate and greet me", "creative"),
        ("Compare and contrast the economic policies of two countries", "analysis"),
        ("What is the probability of rolling two sixes?", "reasoning"),
        ("Solve the equation 3x + 5 = 20", "reasoning"),
        ("Extract the names and dates from this text and return JSON", "extraction"),
        ("Hello, how are you today?", "conversation"),
        ("Add a prefix to my name", "conversation"),  # no substring hits
        ("The codex of the old library", "conversation"),  # "codex" is not "code"
    ],
)
def test_detection(prompt: str, task: str) -> None:
    verdict = detect_task(Features.of_text(prompt))
    assert verdict.task == task, verdict


def test_no_keyword_is_conversation_with_a_reason() -> None:
    verdict = detect_task(Features.of_text("hey"))
    assert (verdict.task, verdict.reason) == ("conversation", "no task keywords")


@pytest.mark.parametrize(
    ("overrides", "prompt", "task"),
    [
        ({"legal": ("contract", "clause", "liability")}, "Review this contract clause", "legal"),
        ({"code": ("kubectl",)}, "Write a Python function", "conversation"),  # replaced keywords
        ({"code": ("kubectl",)}, "kubectl apply fails", "code"),
    ],
)
def test_keyword_table_overrides(overrides: dict[str, tuple[str, ...]], prompt: str, task: str) -> None:
    assert detect_task(Features.of_text(prompt), overrides).task == task


def test_ties_follow_task_order() -> None:
    # one code and one creative keyword, neither in the opening-bonus position advantageously
    verdict = detect_task(Features.of_text("program story"))
    assert verdict.scores["code"] == verdict.scores["creative"]
    assert verdict.task == "code"
