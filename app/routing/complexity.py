"""Complexity routing with the original design's semantics: complex reasoning beats code beats simple.

Fixed flaws of the original: keywords match whole words ("prefix" is not "fix"), fenced or recognisable code
counts as code, long prompts count as complex, and keywords and thresholds come from ``routing.complexity``.

The level decides the target. The ``score`` is finer: complex prompts score 1 + their graded score, every
other prompt its graded score in [0, 1) (``app.routing.signals``), in which code in the prompt or debugging
work weighs more than a short self-contained code exercise. So a threshold on the score is a cost/quality
knob (used by ``min_complexity_score`` rules and by the benchmark's curves); below the complex band it does
not put every code prompt above every simple one.
"""

from __future__ import annotations

from app.records import record
from app.routing.features import Features, keyword_hits
from app.routing.signals import complexity_signals
from app.settings.routing import ComplexityConfig

LEVELS: tuple[str, ...] = ("simple", "code", "complex")


@record(slots=True)
class ComplexityVerdict:
    """``level`` is simple, code or complex; ``score`` ranks prompts for a cost/quality threshold: complex
    ones in [1, 2), the others by their graded score in [0, 1)."""

    level: str
    reason: str
    score: float = 0.0


def classify_complexity(features: Features, config: ComplexityConfig | None = None) -> ComplexityVerdict:
    """Classify a prompt; complex reasoning wins over code, code over simple."""
    config = config or ComplexityConfig()
    text, tokens = features.text, features.tokens
    graded = complexity_signals(features, config).score
    complex_hits = keyword_hits(text, config.all_complex_keywords)
    if complex_hits:
        reason = f"reasoning keywords: {', '.join(complex_hits[:3])}"
        return ComplexityVerdict("complex", reason, 1.0 + graded)
    if tokens >= config.long_prompt_tokens:
        reason = f"long prompt: ~{tokens} tokens >= {config.long_prompt_tokens}"
        return ComplexityVerdict("complex", reason, 1.0 + graded)
    if features.code:
        reason = "fenced code block" if features.fenced_code else "source code in prompt"
        return ComplexityVerdict("code", reason, graded)
    code_hits = keyword_hits(text, config.all_code_keywords)
    if code_hits:
        reason = f"code keywords: {', '.join(code_hits[:3])}"
        return ComplexityVerdict("code", reason, graded)
    return ComplexityVerdict("simple", f"no complexity signals (~{tokens} tokens)", graded)
