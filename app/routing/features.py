"""Request features that routers read: whole-word keyword hits, code presence, length, messages.

Token counts are estimates from ``app.tokens.estimate_tokens`` (about four characters per token, at least one
per word): tiktoken is installed but its BPE files are downloaded on first use, which a gateway that may run
offline must not do, so no exact tokenizer is used before the call.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import field
from functools import lru_cache

from app.domain import ChatRequest
from app.records import record
from app.tokens import estimate_tokens

_FENCE = re.compile(r"^\s*(```|~~~)", re.MULTILINE)
_CODE_LINE = re.compile(
    r"^\s*(?:def \w+\(|class \w+[(:]|import \w|from \w+ import |#include\s*<|public (?:static |class )|"
    r"function \w*\s*\(|const \w+ = |let \w+ = |var \w+ = |fn \w+\(|func \w+\(|SELECT .+ FROM |"
    r"(?:for|while|if)\s*\(.*\)\s*\{|return\b.*;\s*$|.*[;{]\s*$|\}\s*$|"
    r"(?:if|elif|else|for|while|try|except|with|async def)\b.*:\s*$)|^\s+return\b"
)
#: Per-message overhead of chat formats (role markers), added to token estimates.
MESSAGE_OVERHEAD_TOKENS = 4


@lru_cache(maxsize=512)
def keyword_pattern(keywords: tuple[str, ...]) -> re.Pattern[str]:
    """One regex matching any keyword (lower-cased) as a whole word or phrase, for lower-cased text.

    Boundaries are "not a word character" on both sides, so keywords with symbols ("c++", "tl;dr") work.
    Matching lower-cased text without ``re.IGNORECASE`` is case-insensitive too, at half the cost.
    """
    alternatives = sorted({re.escape(k.strip().lower()) for k in keywords if k.strip()}, key=len, reverse=True)
    if not alternatives:
        return re.compile(r"(?!x)x")
    return re.compile(r"(?<![\w])(?:" + "|".join(alternatives) + r")(?![\w])")


def keyword_hits(text: str, keywords: Iterable[str]) -> list[str]:
    """The distinct keywords found in ``text`` on word boundaries ("prefix" does not match "fix")."""
    seen: dict[str, None] = {}
    for hit in keyword_pattern(tuple(keywords)).findall(text.lower()):
        seen.setdefault(hit, None)
    return list(seen)


def has_fenced_code(text: str) -> bool:
    """A Markdown code fence (``` or ~~~) opens and closes."""
    return len(_FENCE.findall(text)) >= 2


def code_line_count(text: str) -> int:
    """Lines that look like source code (definitions, imports, statements ending in ``;`` or ``{``)."""
    return sum(1 for line in text.splitlines() if _CODE_LINE.match(line))


def has_code(text: str) -> bool:
    """Fenced code, or at least three lines that look like unfenced source code."""
    return has_fenced_code(text) or code_line_count(text) >= 3


def word_count(text: str) -> int:
    return len(text.split())


def token_estimate(text: str) -> int:
    return estimate_tokens(text)


@record(slots=True)
class Features:
    """Everything the routers look at, computed once per request."""

    text: str
    words: int
    tokens: int
    input_tokens: int
    fenced_code: bool
    code: bool
    messages: int
    max_tokens: int | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of_text(cls, text: str, **extra: object) -> Features:
        """Features of a bare prompt (one user message)."""
        tokens = estimate_tokens(text)
        values: dict[str, object] = {
            "text": text,
            "words": word_count(text),
            "tokens": tokens,
            "input_tokens": tokens + MESSAGE_OVERHEAD_TOKENS,
            "fenced_code": has_fenced_code(text),
            "code": has_code(text),
            "messages": 1,
        }
        values.update(extra)
        return cls(**values)  # type: ignore[arg-type]


def extract_features(request: ChatRequest) -> Features:
    """Features of a request: routers read the user turns; cost estimates count every message."""
    text = request.prompt_text
    tokens = estimate_tokens(text)
    input_tokens = sum(estimate_tokens(m.content) + MESSAGE_OVERHEAD_TOKENS for m in request.messages)
    return Features(
        text=text,
        words=word_count(text),
        tokens=tokens,
        input_tokens=input_tokens,
        fenced_code=has_fenced_code(text),
        code=has_code(text),
        messages=len(request.messages),
        max_tokens=request.max_tokens,
        metadata=dict(request.metadata),
    )
