"""Planning an embeddings request (pure): the named model and its usable fallbacks, every refusal typed."""

from __future__ import annotations

import pytest

from app.embeddings.plan import Candidate, plan_embeddings
from app.embeddings.types import EmbeddingRequest
from app.errors import InvalidRequestError, ModelNotFoundError, NoModelAvailableError, PermissionDeniedError

TEXT = EmbeddingRequest(inputs=("a",))
TOKENS = EmbeddingRequest(inputs=((1, 2),), tokens=True)


def catalogue(**changes: Candidate) -> dict[str, Candidate]:
    base = {
        "small": Candidate("small", "openai", True, fallbacks=("gemini", "compat", "missing-key")),
        "gemini": Candidate("gemini", "google", True),
        "compat": Candidate("compat", "openai_compatible", True),
        "missing-key": Candidate("missing-key", "openai", True, unavailable="environment variable X is not set"),
        "chat": Candidate("chat", "openai", False),
    }
    return {**base, **changes}


def test_model_then_usable_fallbacks() -> None:
    decision = plan_embeddings("small", TEXT, catalogue())
    assert decision.models == ("small", "gemini", "compat")
    assert [(s.model, s.reason) for s in decision.skipped] == [("missing-key", "environment variable X is not set")]
    tokens = plan_embeddings("small", TOKENS, catalogue())
    assert tokens.models == ("small", "compat")  # Gemini takes text only
    assert "token arrays" in tokens.skipped[0].reason


def test_unavailable_model_uses_its_fallbacks() -> None:
    views = catalogue(small=Candidate("small", "openai", True, ("compat",), unavailable="circuit open"))
    decision = plan_embeddings("small", TEXT, views)
    assert decision.models == ("compat",) and "circuit open" in decision.reason
    alone = catalogue(gemini=Candidate("gemini", "google", True, unavailable="circuit open"))
    with pytest.raises(NoModelAvailableError, match="circuit open"):
        plan_embeddings("gemini", TEXT, alone)


def test_fallbacks_outside_the_keys_rights_are_skipped() -> None:
    views = catalogue(gemini=Candidate("gemini", "google", True, permitted=False))
    assert plan_embeddings("small", TEXT, views).models == ("small", "compat")
    with pytest.raises(PermissionDeniedError):
        plan_embeddings("gemini", TEXT, views)


@pytest.mark.parametrize(
    ("model", "request_", "error", "param", "words"),
    [
        ("chat", TEXT, InvalidRequestError, "model", ["chat model", "compat, gemini, missing-key, small"]),
        ("gemini", TOKENS, InvalidRequestError, "input", ["text only"]),
        ("auto", TEXT, InvalidRequestError, "model", ["routing alias"]),
        ("nope", TEXT, ModelNotFoundError, "model", ["not in the catalogue"]),
    ],
)
def test_refusals(model: str, request_: EmbeddingRequest, error: type[Exception], param: str, words: list[str]) -> None:
    with pytest.raises(error) as info:
        plan_embeddings(model, request_, catalogue(), lambda name: name == "auto")
    assert info.value.details["param"] == param  # type: ignore[attr-defined]
    for word in words:
        assert word in str(info.value)
    assert type(info.value) is error


def test_anthropic_cannot_embed() -> None:
    views = catalogue(claude=Candidate("claude", "anthropic", True))  # the config refuses this; planning too
    with pytest.raises(InvalidRequestError, match="no embeddings API"):
        plan_embeddings("claude", TEXT, views)
