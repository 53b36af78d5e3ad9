"""Token estimates for when a vendor does not report usage and for routing before any call.

The heuristic is the widely used "about four characters per token" for English text, with a floor of one
token per whitespace-separated word for short texts.
"""

from __future__ import annotations


def estimate_tokens(text: str) -> int:
    """A cheap, deterministic estimate of the number of tokens in ``text``."""
    if not text:
        return 0
    return max(len(text) // 4, len(text.split()), 1)
