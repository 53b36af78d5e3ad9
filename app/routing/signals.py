"""A graded complexity score: how much a prompt is likely to need a strong model, in [0, 1).

Each signal is a general, explainable marker of a harder request, saturating after a few occurrences, and
weighted by ``routing.complexity.weights``:

- ``length``: estimated tokens relative to ``long_prompt_tokens``;
- ``reasoning``: reasoning keywords (analyze, prove, trade-offs...);
- ``questions``: several questions in one prompt (a single question adds nothing);
- ``steps``: multi-step instructions (numbered or bulleted items, first/then/finally);
- ``constraints``: constraints on the answer (must, exactly, at most, without...);
- ``math``: math notation (operators between numbers, powers, LaTeX);
- ``code_work``: work on code that is there: code in the prompt, or debugging/refactoring terms;
- ``code_exercise``: only code keywords (a short, self-contained exercise such as "write a function to
  reverse a string"), which a mid-range model usually solves: a small bump, not a large one.

The score ranks prompts for a cost/quality threshold (rules can use it as ``min_complexity_score``); the
complexity *level* keeps the original precedence (complex reasoning > code > simple).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from app.records import record
from app.routing.features import Features, keyword_hits
from app.routing.keywords import CODE_WORK_KEYWORDS, CONSTRAINT_KEYWORDS, STEP_KEYWORDS
from app.settings.routing import ComplexityConfig

_LIST_ITEM = re.compile(r"^\s*(?:\d{1,2}[.)]|[-*\u2022])\s+\S", re.MULTILINE)
_MATH = re.compile(
    r"\d\s*[-+*/^=<>]\s*\(?\d|[a-z]\s*\^\s*\d|\b[fgh]\([a-z0-9]\)|\\frac|\\sqrt|\\sum|\\int|\$[^$\n]{1,80}\$",
    re.IGNORECASE,
)


def _saturate(count: int, at: int) -> float:
    return min(count, at) / at


@record(slots=True)
class Signals:
    """Each signal in [0, 1] and the weighted score in [0, 1)."""

    values: Mapping[str, float]
    score: float

    def top(self, n: int = 3) -> list[str]:
        """The strongest non-zero signals, for explanations."""
        ranked = sorted(((v, k) for k, v in self.values.items() if v > 0), reverse=True)
        return [k for _, k in ranked[:n]]


def complexity_signals(features: Features, config: ComplexityConfig) -> Signals:
    text = features.text
    reasoning = len(keyword_hits(text, config.all_complex_keywords))
    code_keywords = bool(keyword_hits(text, config.all_code_keywords))
    code_work = (1.0 if features.code else 0.0) + 0.5 * bool(keyword_hits(text, CODE_WORK_KEYWORDS))
    values = {
        "length": min(features.tokens / config.long_prompt_tokens, 1.0),
        "reasoning": _saturate(reasoning, 2),
        "questions": _saturate(max(text.count("?") - 1, 0), 2),
        "steps": _saturate(len(_LIST_ITEM.findall(text)) + len(keyword_hits(text, STEP_KEYWORDS)), 3),
        "constraints": _saturate(len(keyword_hits(text, CONSTRAINT_KEYWORDS)), 3),
        "math": _saturate(len(_MATH.findall(text)), 3),
        "code_work": min(code_work, 1.0),
        "code_exercise": 1.0 if code_keywords and not code_work else 0.0,
    }
    weights = config.weights.model_dump()
    total = sum(weights.values()) or 1.0
    score = sum(weights[k] * v for k, v in values.items()) / total
    return Signals(values, min(score, 0.999))
