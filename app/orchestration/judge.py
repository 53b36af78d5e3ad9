"""Judge voting: a judge model reads the numbered answers and names the best one.

The judge's reply is parsed robustly: markdown emphasis is ignored; a reply that is just a number (``2``,
``**2**``, ``Response 2``, ``#2.``) is taken as is; otherwise a number right after a verdict word ("best",
"winner", "choose", "pick", "prefer", "select", "answer") wins ("The best is response 2."); otherwise the
reply must mention exactly one distinct response number. Anything else, or a number out of range, is
unparseable and the caller falls back to consensus.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from app.domain import ChatRequest, Message
from app.records import record

_MARKUP = re.compile(r"[*_`#>\[\]()]")
_ONLY = re.compile(r"^\s*(?:(?:response|answer|candidate|option)\s*)?(?:no\.?|number|#)?\s*(\d+)\s*[.!)]?\s*$")
_VERDICT = re.compile(
    r"\b(?:best|winner|winning|choose|chose|choice|pick|prefer|preferred|select|selected|verdict|answer)\b"
    r"[^0-9\n]{0,40}?(\d+)"
)
_RESPONSE_N = re.compile(r"\b(?:response|answer|candidate|option)\s*(?:no\.?|number|#)?\s*(\d+)")
_NUMBER = re.compile(r"\b(\d+)\b")

JUDGE_SYSTEM = (
    "You are an impartial judge. Read the question and the numbered responses, decide which response "
    "answers the question best (correct, complete, clear), and reply with only its number."
)


@record(slots=True)
class Verdict:
    """The parsed judge reply: ``choice`` is 1-based, or None with the ``reason`` it was not usable."""

    choice: int | None
    reason: str | None = None


def parse_verdict(reply: str, count: int) -> Verdict:
    """The 1-based response number the judge chose among ``count``, or why none could be read."""
    text = _MARKUP.sub(" ", reply).lower().strip()
    number: int | None = None
    if (match := _ONLY.match(text)) or (match := _VERDICT.search(text)):
        number = int(match.group(1))
    else:
        for pattern in (_RESPONSE_N, _NUMBER):
            found = {int(n) for n in pattern.findall(text)}
            if len(found) == 1:
                number = found.pop()
                break
            if len(found) > 1:
                return Verdict(None, "the judge's reply names several responses")
    if number is None:
        return Verdict(None, "the judge's reply names no response number")
    if not 1 <= number <= count:
        return Verdict(None, f"the judge chose response {number}, outside 1..{count}")
    return Verdict(number)


def judge_request(question: str, answers: Sequence[str], max_answer_chars: int = 8000) -> ChatRequest:
    """The request sent to the judge model."""
    parts = [f"Question:\n{question}\n"]
    for i, answer in enumerate(answers, start=1):
        parts.append(f"Response {i}:\n{answer[:max_answer_chars]}\n")
    parts.append(f"Which response is best? Reply with a single number from 1 to {len(answers)}.")
    return ChatRequest(
        messages=(Message("system", JUDGE_SYSTEM), Message("user", "\n".join(parts))),
        max_tokens=16,
        temperature=0.0,
    )
