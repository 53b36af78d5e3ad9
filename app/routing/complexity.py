"""Complexity routing with the original design's semantics: complex reasoning beats code beats simple."""

from __future__ import annotations

from dataclasses import dataclass

from app.routing.features import has_fenced_code, keyword_hits, word_count
from app.settings.catalogue import ComplexityTargets

COMPLEX_KEYWORDS: tuple[str, ...] = (
    "analyze",
    "analyse",
    "explain why",
    "compare",
    "evaluate",
    "reason",
    "prove",
    "derive",
    "step by step",
    "trade-offs",
    "tradeoffs",
    "critique",
    "strategy",
    "architecture",
    "implications",
)
CODE_KEYWORDS: tuple[str, ...] = (
    "code",
    "function",
    "implement",
    "debug",
    "refactor",
    "fix",
    "bug",
    "python",
    "javascript",
    "typescript",
    "sql",
    "algorithm",
    "class",
    "compile",
    "stack trace",
    "regex",
    "api",
)
LONG_PROMPT_WORDS = 300


@dataclass(frozen=True, slots=True)
class ComplexityVerdict:
    level: str  # "complex" | "code" | "simple"
    reason: str


def classify_complexity(text: str, long_prompt_words: int = LONG_PROMPT_WORDS) -> ComplexityVerdict:
    """Classify a prompt; complex reasoning wins over code, code over simple."""
    complex_hits = keyword_hits(text, COMPLEX_KEYWORDS)
    if complex_hits:
        return ComplexityVerdict("complex", f"reasoning keywords: {', '.join(complex_hits[:3])}")
    words = word_count(text)
    if words >= long_prompt_words:
        return ComplexityVerdict("complex", f"long prompt: {words} words")
    if has_fenced_code(text):
        return ComplexityVerdict("code", "fenced code block")
    code_hits = keyword_hits(text, CODE_KEYWORDS)
    if code_hits:
        return ComplexityVerdict("code", f"code keywords: {', '.join(code_hits[:3])}")
    return ComplexityVerdict("simple", f"no complexity signals ({words} words)")


def complexity_target(verdict: ComplexityVerdict, targets: ComplexityTargets) -> str:
    return {"complex": targets.complex, "code": targets.code}.get(verdict.level, targets.simple)
