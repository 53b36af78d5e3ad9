"""Synthetic training data for the learned router: the small model fails on code work, both models answer
small talk; written here, no evaluation data."""

from __future__ import annotations

import itertools

from app.routing.training import Sample

TOPICS = ("sorting", "parsing JSON", "a REST client", "a binary tree", "date handling", "a CSV reader", "caching")
LANGUAGES = ("Python", "Rust", "Java", "Go", "TypeScript")
CHAT = (
    "Hi, how are you?",
    "Thanks a lot!",
    "Tell me a fun fact about owls",
    "What's a nice name for a cat?",
    "Good morning!",
    "Can you recommend a film for tonight?",
    "What is the capital of Peru?",
    "How many legs does a spider have?",
    "Tell me a joke about penguins",
    "Hello there, what's up?",
    "What's your favourite colour?",
    "Any tips for a rainy Sunday?",
    "Recommend a book for the beach",
    "What is the tallest mountain in Africa?",
    "Good night!",
    "How do you say hello in Italian?",
)


def code_prompt(topic: str, language: str) -> str:
    return (
        f"Debug and refactor this {language} module for {topic}; it must stay thread-safe.\n"
        "```\nfor item in items:\n    result = process(item)\n    if not result:\n        raise Error()\n```"
    )


def samples() -> list[Sample]:
    rows = [
        Sample(code_prompt(t, lang), {"big": 1.0, "small": 0.0}, {"big": 0.02, "small": 0.001})
        for t, lang in itertools.product(TOPICS, LANGUAGES)
    ]
    rows += [Sample(text, {"big": 1.0, "small": 1.0}, {"big": 0.01, "small": 0.0005}) for text in CHAT]
    return rows
