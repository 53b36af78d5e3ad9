"""Task detection on word boundaries, and the task router's table lookup.

Each task scores one point per distinct keyword found, plus one more when a keyword occurs in the opening
(the first 100 characters, where the instruction usually is). Code present in the prompt adds three to
``code``; math notation adds two to ``reasoning``. The best score wins; ties go to the earlier task in
``TASK_ORDER``; no hit at all is ``conversation``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import field

from app.records import record
from app.routing.features import Features, keyword_hits
from app.routing.keywords import TASK_KEYWORDS

DEFAULT_TASK = "conversation"
TASK_ORDER: tuple[str, ...] = (
    "code",
    "translation",
    "summarization",
    "extraction",
    "reasoning",
    "creative",
    "analysis",
)
OPENING_CHARS = 100
_MATH = re.compile(
    r"\d\s*[-+*/^=<>]\s*\(?\d|[a-z]\s*\^\s*\d|\b[fgh]\([a-z0-9]\)|\\frac|\\sqrt|\\sum|\\int|\$[^$\n]{1,80}\$|[=<>]\s*-?\d",
    re.IGNORECASE,
)


@record(slots=True)
class TaskVerdict:
    task: str
    reason: str
    scores: Mapping[str, int] = field(default_factory=dict)


def keyword_table(overrides: Mapping[str, tuple[str, ...]] | None = None) -> dict[str, tuple[str, ...]]:
    """The built-in keywords per task, with ``routing.task_keywords`` replacing or adding tasks."""
    table = dict(TASK_KEYWORDS)
    table.update(overrides or {})
    return table


def detect_task(features: Features, overrides: Mapping[str, tuple[str, ...]] | None = None) -> TaskVerdict:
    """The most signalled task and why; ``conversation`` when nothing matches."""
    text = features.text
    opening = text[:OPENING_CHARS]
    table = keyword_table(overrides)
    order = [t for t in TASK_ORDER if t in table] + [t for t in table if t not in TASK_ORDER]
    scores: dict[str, int] = {}
    evidence: dict[str, list[str]] = {}
    for task in order:
        hits = keyword_hits(text, table[task])
        score = len(hits) + (1 if hits and keyword_hits(opening, hits) else 0)
        if score:
            scores[task], evidence[task] = score, hits
    if features.code and "code" in table:
        scores["code"] = scores.get("code", 0) + 3
        evidence.setdefault("code", []).insert(0, "code block" if features.fenced_code else "source code")
    if "reasoning" in table and _MATH.search(text):
        scores["reasoning"] = scores.get("reasoning", 0) + 2
        evidence.setdefault("reasoning", []).insert(0, "math notation")
    if not scores:
        return TaskVerdict(DEFAULT_TASK, "no task keywords", {})
    best = max(order, key=lambda t: (scores.get(t, 0), -order.index(t)))
    return TaskVerdict(best, f"{best} signals: {', '.join(evidence[best][:3])}", scores)
