"""Complexity routing with the original design's semantics: complex reasoning beats code beats simple.

Fixed flaws of the original: keywords match whole words ("prefix" is not "fix"), fenced or recognisable code
counts as code, long prompts count as complex, and keywords and thresholds come from ``routing.complexity``.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.routing.features import Features, keyword_hits
from app.settings.routing import ComplexityConfig

LEVELS: tuple[str, ...] = ("simple", "code", "complex")


@dataclass(frozen=True, slots=True)
class ComplexityVerdict:
    """``level`` is simple, code or complex; ``score`` orders prompts (level first, then length) so that
    a threshold on it trades cost for quality (used by the benchmark's curves)."""

    level: str
    reason: str
    score: float = 0.0


def _score(level: str, tokens: int, config: ComplexityConfig) -> float:
    return LEVELS.index(level) + min(tokens / config.long_prompt_tokens, 1.0) * 0.999


def classify_complexity(features: Features, config: ComplexityConfig | None = None) -> ComplexityVerdict:
    """Classify a prompt; complex reasoning wins over code, code over simple."""
    config = config or ComplexityConfig()
    text, tokens = features.text, features.tokens
    complex_hits = keyword_hits(text, config.all_complex_keywords)
    if complex_hits:
        reason = f"reasoning keywords: {', '.join(complex_hits[:3])}"
        return ComplexityVerdict("complex", reason, _score("complex", tokens, config))
    if tokens >= config.long_prompt_tokens:
        reason = f"long prompt: ~{tokens} tokens >= {config.long_prompt_tokens}"
        return ComplexityVerdict("complex", reason, _score("complex", tokens, config))
    if features.code:
        reason = "fenced code block" if features.fenced_code else "source code in prompt"
        return ComplexityVerdict("code", reason, _score("code", tokens, config))
    code_hits = keyword_hits(text, config.all_code_keywords)
    if code_hits:
        reason = f"code keywords: {', '.join(code_hits[:3])}"
        return ComplexityVerdict("code", reason, _score("code", tokens, config))
    return ComplexityVerdict("simple", f"no complexity signals (~{tokens} tokens)", _score("simple", tokens, config))
