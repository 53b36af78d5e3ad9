"""Consensus similarity, agreement scores and the selectors."""

from __future__ import annotations

import pytest

from app.domain import Completion, Usage
from app.orchestration.consensus import agreement_scores, select, similarity, terms


def answer(model: str, content: str, cost: float | None = 0.001) -> Completion:
    return Completion(content, model, "openai", Usage(1, 1), 10.0, cost)


@pytest.mark.parametrize(
    ("a", "b", "low", "high"),
    [
        ("Paris is the capital of France.", "paris is the capital of france", 1.0, 1.0),
        ("Paris", "Berlin", 0.0, 0.0),
        ("", "", 1.0, 1.0),
        ("", "something", 0.0, 0.0),
        ("The capital of France is Paris.", "Paris is the capital of France.", 0.6, 0.99),
        ("dog bites man", "man bites dog", 0.4, 0.6),  # same words, other order: bigrams differ
    ],
)
def test_similarity(a: str, b: str, low: float, high: float) -> None:
    value = similarity(a, b)
    assert low - 1e-9 <= value <= high + 1e-9
    assert value == pytest.approx(similarity(b, a))


def test_terms_include_bigrams() -> None:
    assert terms("A b a") == {"a": 2, "b": 1, "a b": 1, "b a": 1}


def test_agreement_prefers_the_majority_over_the_longest() -> None:
    candidates = [
        answer("long", "Berlin is the capital of France, a long and detailed but wrong answer about it."),
        answer("a", "The capital of France is Paris."),
        answer("b", "Paris is the capital of France."),
    ]
    chosen, scores = select(candidates, "agreement")
    assert chosen in (1, 2)
    assert scores[0] < min(scores[1], scores[2])
    assert select(candidates, "longest")[0] == 0
    assert select(candidates, "shortest")[0] in (1, 2)


def test_single_candidate_scores_one() -> None:
    assert agreement_scores(["only"]) == [1.0]
    assert select([answer("a", "x")], "agreement") == (0, [1.0])


def test_ties_go_to_the_first_candidate() -> None:
    candidates = [answer("a", "same"), answer("b", "same")]
    assert select(candidates, "agreement")[0] == 0
    assert select(candidates, "longest")[0] == 0
    assert select(candidates, "shortest")[0] == 0


def test_cheapest_puts_unknown_prices_last() -> None:
    candidates = [answer("unknown", "x", None), answer("dear", "y", 0.01), answer("cheap", "z", 0.0001)]
    assert select(candidates, "cheapest")[0] == 2
    assert select([answer("u", "x", None), answer("d", "y", 0.5)], "cheapest")[0] == 1


def test_unknown_selector_is_refused() -> None:
    with pytest.raises(ValueError):
        select([answer("a", "x")], "random")  # type: ignore[arg-type]
