"""The catalogue's ``kind: embedding`` (its checks, its price) and how a batch is split."""

from __future__ import annotations

from typing import Any

import pytest

from app.embeddings.types import EmbeddingRequest
from app.errors import ConfigError
from app.pricing import resolve_price
from app.settings.catalogue import ModelConfig, parse_config


def config(**models: dict[str, Any]) -> Any:
    return parse_config({"models": models})


EMBED = {"provider": "openai", "kind": "embedding"}


@pytest.mark.parametrize(
    ("models", "key", "words"),
    [
        ({"e": {"provider": "anthropic", "kind": "embedding"}}, "models.e", "no embeddings API"),
        ({"e": {"provider": "llamacpp", "kind": "embedding"}}, "models.e", "no embeddings API"),
        ({"c": {"provider": "openai", "dimensions": 8}}, "models.c", "dimensions is for embedding models"),
        ({"e": {**EMBED, "fallbacks": ["c"]}, "c": {"provider": "openai"}}, "<root>", "chat model"),
        ({"c": {"provider": "openai", "fallbacks": ["e"]}, "e": EMBED}, "<root>", "embedding model"),
        (
            {"a": {**EMBED, "dimensions": 8, "fallbacks": ["b"]}, "b": {**EMBED, "dimensions": 16}},
            "<root>",
            "16-dimensional",
        ),
        ({"e": {**EMBED, "kind": "rerank"}}, "models.e.kind", "'chat' or 'embedding'"),
    ],
)
def test_invalid_embedding_entries(models: dict[str, Any], key: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        config(**models)
    assert info.value.key == key
    assert words in info.value.reason


def test_valid_embedding_entries() -> None:
    parsed = config(
        a={**EMBED, "dimensions": 8, "fallbacks": ["b", "g"]},
        b={**EMBED, "dimensions": 8},
        g={"provider": "google", "kind": "embedding"},  # undeclared size: not checked
        chat={"provider": "openai"},
    )
    assert parsed.models["a"].embeds and not parsed.models["chat"].embeds


def test_embedding_price_has_no_output_side() -> None:
    price = resolve_price("e", ModelConfig(provider="openai", model="text-embedding-3-small", kind="embedding"))
    assert price.source == "genai-prices"
    assert price.input_per_1k == pytest.approx(0.00002) and price.output_per_1k == 0
    assert price.cost(1_000_000, 0) == pytest.approx(0.02)
    configured = resolve_price("e", ModelConfig(provider="google", kind="embedding", cost_per_1k_input=0.001))
    assert configured.cost(2000, 0) == pytest.approx(0.002)
    chat = resolve_price("c", ModelConfig(provider="openai", model="text-embedding-3-small"))
    assert chat.output_per_1k is None  # a chat entry is not given an output price it does not have


def test_batches_split_by_count_and_tokens_in_order() -> None:
    request = EmbeddingRequest(inputs=tuple(f"t{i}" for i in range(5)))
    assert [b.inputs for b in request.batches(2)] == [("t0", "t1"), ("t2", "t3"), ("t4",)]
    assert request.batches(5) == (request,)
    words = EmbeddingRequest(inputs=("a b c", "d e f", "g", "h i j k l"))  # 3, 3, 1, 5 tokens
    assert [b.inputs for b in words.batches(100, 4)] == [("a b c",), ("d e f", "g"), ("h i j k l",)]
    tokens = EmbeddingRequest(inputs=((1, 2), (3, 4, 5), (6,)), tokens=True)
    assert [b.inputs for b in tokens.batches(100, 3)] == [((1, 2),), ((3, 4, 5),), ((6,),)]
