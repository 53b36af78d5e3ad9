"""Parsing the judge's reply, robustly, and the judge prompt."""

from __future__ import annotations

import pytest

from app.orchestration.judge import judge_request, parse_verdict


@pytest.mark.parametrize(
    ("reply", "choice"),
    [
        ("2", 2),
        (" 2\n", 2),
        ("**2**", 2),
        ("Response 2", 2),
        ("response #3.", 3),
        ("#1", 1),
        ("The best is response 2.", 2),
        ("The best response is **Response 3** because it is complete.", 3),
        ("I would pick 1; the others miss the point.", 1),
        ("Winner: 2", 2),
        ("After comparing them, Response 2 is the most accurate.", 2),
        ("Answer: 3", 3),
        ("`2`", 2),
    ],
)
def test_parses(reply: str, choice: int) -> None:
    verdict = parse_verdict(reply, 3)
    assert verdict.choice == choice, verdict.reason


@pytest.mark.parametrize(
    ("reply", "why"),
    [
        ("", "no response number"),
        ("They are all good.", "no response number"),
        ("4", "outside 1..3"),
        ("0", "outside 1..3"),
        ("The best is response 7.", "outside 1..3"),
        ("Response 1 is fine and response 2 is also fine.", "several"),
    ],
)
def test_unparseable_or_out_of_range(reply: str, why: str) -> None:
    verdict = parse_verdict(reply, 3)
    assert verdict.choice is None
    assert why in (verdict.reason or "")


def test_judge_request_numbers_every_answer() -> None:
    request = judge_request("What is 2+2?", ["4", "four", "5"])
    text = request.messages[-1].content
    assert "What is 2+2?" in text
    assert "Response 1:\n4" in text and "Response 2:\nfour" in text and "Response 3:\n5" in text
    assert "from 1 to 3" in text
    assert request.messages[0].role == "system"
