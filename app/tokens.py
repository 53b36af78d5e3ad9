"""Token estimates for when a vendor does not report usage and for routing before any call.

The heuristic is the widely used "about four characters per token" for English text, with a floor of one
token per whitespace-separated word for short texts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.domain import ChatRequest


def estimate_tokens(text: str) -> int:
    """A cheap, deterministic estimate of the number of tokens in ``text``."""
    if not text:
        return 0
    return max(len(text) // 4, len(text.split()), 1)


MEDIA_PART_TOKENS = 800  # an image or document part: about what vendors bill a mid-size image


def estimate_prompt_tokens(request: ChatRequest) -> int:
    """Estimated input tokens of ``request``: its messages' texts, joined, plus a flat rate per image or
    document part. A request's path asks several times (planning, each attempt, the stream's record), so
    the answer for the request seen last is kept (requests are immutable; it is matched by identity)."""
    global _last_estimate
    seen, tokens = _last_estimate
    if seen is request:
        return tokens
    media = sum(1 for m in request.messages for p in m.parts if type(p).__name__ != "TextPart")
    tokens = estimate_tokens(" ".join(m.content for m in request.messages)) + media * MEDIA_PART_TOKENS
    _last_estimate = (request, tokens)
    return tokens


_last_estimate: tuple[ChatRequest | None, int] = (None, 0)
