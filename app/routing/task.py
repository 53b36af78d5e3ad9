"""Task detection on word boundaries and the task table."""

from __future__ import annotations

from app.routing.features import has_fenced_code, keyword_hits

TASK_KEYWORDS: dict[str, tuple[str, ...]] = {
    "code": (
        "code",
        "function",
        "implement",
        "debug",
        "refactor",
        "bug",
        "python",
        "javascript",
        "sql",
        "compile",
        "algorithm",
        "script",
        "program",
    ),
    "translation": (
        "translate",
        "translation",
        "in french",
        "in spanish",
        "in german",
        "into english",
        "into french",
        "into spanish",
        "into german",
    ),
    "summarization": ("summarize", "summarise", "summary", "tl;dr", "tldr", "condense", "key points"),
    "creative": ("story", "poem", "write a song", "lyrics", "creative", "fiction", "haiku", "imagine"),
    "analysis": (
        "analyze",
        "analyse",
        "analysis",
        "compare",
        "evaluate",
        "assess",
        "pros and cons",
        "explain why",
    ),
}
DEFAULT_TASK = "conversation"


def detect_task(text: str) -> tuple[str, str]:
    """The most signalled task and why; ``conversation`` when nothing matches."""
    if has_fenced_code(text):
        return "code", "fenced code block"
    best, best_hits = DEFAULT_TASK, []
    for task, keywords in TASK_KEYWORDS.items():
        hits = keyword_hits(text, keywords)
        if len(hits) > len(best_hits):
            best, best_hits = task, hits
    if not best_hits:
        return DEFAULT_TASK, "no task keywords"
    return best, f"{best} keywords: {', '.join(best_hits[:3])}"
