"""Consensus over several answers: agreement scores and the selectors.

Similarity of two answers is the cosine similarity of their term-frequency vectors over lower-cased word
unigrams and bigrams (words are runs of letters and digits). It is 1 for texts with the same words in the
same order, 0 for texts sharing no word, and order-sensitive through the bigrams. An answer's agreement
score is its mean similarity to every other answer; the ``agreement`` selector (the default) picks the
highest score, so an outlier loses to the answers that agree with each other. Ties go to the earlier
candidate (the order the models were given in). ``longest``, ``shortest`` and ``cheapest`` (unknown prices
last) are the other selectors.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from itertools import pairwise

from app.domain import Completion
from app.orchestration.options import SelectorName

_WORD = re.compile(r"[^\W_]+", re.UNICODE)


def terms(text: str) -> Counter[str]:
    """Unigram and bigram counts of ``text``."""
    words = _WORD.findall(text.lower())
    grams = Counter(words)
    grams.update(f"{a} {b}" for a, b in pairwise(words))
    return grams


def similarity(a: str, b: str) -> float:
    """Cosine similarity of the unigram+bigram vectors of ``a`` and ``b`` (0..1; two empty texts: 1)."""
    ta, tb = terms(a), terms(b)
    if not ta and not tb:
        return 1.0
    if not ta or not tb:
        return 0.0
    dot = sum(count * tb[gram] for gram, count in ta.items() if gram in tb)
    norm = math.sqrt(sum(c * c for c in ta.values())) * math.sqrt(sum(c * c for c in tb.values()))
    return min(1.0, dot / norm)


def agreement_scores(texts: Sequence[str]) -> list[float]:
    """Each text's mean similarity to the others (a single text scores 1)."""
    n = len(texts)
    if n == 1:
        return [1.0]
    sims = [[0.0] * n for _ in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            sims[i][j] = sims[j][i] = similarity(texts[i], texts[j])
    return [sum(row) / (n - 1) for row in sims]


def select(candidates: Sequence[Completion], selector: SelectorName = "agreement") -> tuple[int, list[float]]:
    """Index of the chosen candidate and every candidate's agreement score."""
    if not candidates:
        raise ValueError("no candidates to select from")
    scores = agreement_scores([c.content for c in candidates])
    order = range(len(candidates))
    if selector == "agreement":
        chosen = max(order, key=lambda i: (scores[i], -i))
    elif selector == "longest":
        chosen = max(order, key=lambda i: (len(candidates[i].content), -i))
    elif selector == "shortest":
        chosen = min(order, key=lambda i: (len(candidates[i].content), i))
    elif selector == "cheapest":
        chosen = min(order, key=lambda i: (candidates[i].cost is None, candidates[i].cost or 0.0, i))
    else:
        raise ValueError(f"unknown selector {selector!r}")
    return chosen, scores
