"""Features: whole-word keywords, code detection, length and message counts."""

from __future__ import annotations

import pytest

from app.domain import ChatRequest, Message
from app.routing.features import Features, extract_features, has_code, has_fenced_code, keyword_hits

from .helpers import request


@pytest.mark.parametrize(
    ("text", "keywords", "expected"),
    [
        ("Add a prefix to every line", ("fix",), []),  # the original design's flaw: substring matching
        ("Please fix this", ("fix",), ["fix"]),
        ("FIX it now", ("fix",), ["fix"]),
        ("Explain Why it breaks", ("EXPLAIN why",), ["explain why"]),  # keywords and text both case-folded
        ("ÜBERSETZE diesen Satz", ("übersetze",), ["übersetze"]),
        ("a fix-up commit", ("fix",), ["fix"]),  # hyphen is a word boundary
        ("prefixes and suffixes", ("fix", "suffix"), []),
        ("explain why it fails", ("explain why",), ["explain why"]),
        ("explain it and why", ("explain why",), []),
        ("port it to C++ please", ("c++",), ["c++"]),
        ("tl;dr of this", ("tl;dr",), ["tl;dr"]),
        ("code, code and more code", ("code",), ["code"]),  # distinct hits
        ("anything", (), []),
        ("debugging tips", ("debug",), []),
    ],
)
def test_keyword_hits_are_whole_words(text: str, keywords: tuple[str, ...], expected: list[str]) -> None:
    assert keyword_hits(text, keywords) == expected


@pytest.mark.parametrize(
    ("text", "fenced", "code"),
    [
        ("```python\nprint(1)\n```", True, True),
        ("~~~\nls -la\n~~~", True, True),
        ("use ``` to open a fence", False, False),
        ("def f(x):\n    if x:\n        return 1\n    return 2", False, True),
        ("int main() {\n  int x = 1;\n  return x;\n}", False, True),
        ("const a = 1;\nlet b = 2;\nconsole.log(a + b);", False, True),
        ("Dear team;\nthe meeting is moved.\nThanks", False, False),
        ("Tell me a joke about cats", False, False),
    ],
)
def test_code_detection(text: str, fenced: bool, code: bool) -> None:
    assert has_fenced_code(text) is fenced
    assert has_code(text) is code


def test_extract_features_counts_every_message_for_tokens_but_reads_user_text() -> None:
    req = ChatRequest(
        messages=(Message("system", "You are terse. " * 20), Message("user", "hello there")),
        max_tokens=99,
        metadata={"team": "search"},
    )
    features = extract_features(req)
    assert features.text == "hello there"
    assert features.words == 2
    assert features.messages == 2
    assert features.input_tokens > features.tokens + 60  # the system prompt is paid for
    assert features.max_tokens == 99
    assert features.metadata == {"team": "search"}


def test_features_of_text_match_a_one_message_request() -> None:
    text = "Summarize this article about the economy"
    assert Features.of_text(text) == extract_features(request(text))
