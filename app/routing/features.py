"""Request features that routers read: whole-word keyword hits, fenced code, length."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from app.tokens import estimate_tokens

_FENCE = re.compile(r"```")


@lru_cache(maxsize=256)
def keyword_pattern(keywords: tuple[str, ...]) -> re.Pattern[str]:
    """One case-insensitive regex matching any keyword as a whole word (or whole phrase)."""
    alternatives = sorted((re.escape(k.strip()) for k in keywords if k.strip()), key=len, reverse=True)
    if not alternatives:
        return re.compile(r"(?!x)x")
    return re.compile(r"(?<![\w])(?:" + "|".join(alternatives) + r")(?![\w])", re.IGNORECASE)


def keyword_hits(text: str, keywords: Iterable[str]) -> list[str]:
    """The distinct keywords found in ``text`` on word boundaries ("prefix" does not match "fix")."""
    found = keyword_pattern(tuple(keywords)).findall(text)
    seen: dict[str, None] = {}
    for hit in found:
        seen.setdefault(hit.lower(), None)
    return list(seen)


def has_fenced_code(text: str) -> bool:
    return len(_FENCE.findall(text)) >= 2


def word_count(text: str) -> int:
    return len(text.split())


def token_estimate(text: str) -> int:
    return estimate_tokens(text)
