"""The in-process embedding models: bundled weights, unit vectors, the head of long prompts, laziness."""

from __future__ import annotations

import time

import numpy as np
import pytest

from app.routing.embedding import (
    DEFAULT_MODEL,
    MULTILINGUAL_MODEL,
    Embedder,
    EmbeddingUnavailableError,
    LazyEmbedding,
    installed,
    load_embedder,
)
from tests.unit.routing.conftest import CountingEmbedder


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_both_models_are_installed_with_their_weights() -> None:
    assert installed(DEFAULT_MODEL) and installed(MULTILINGUAL_MODEL)


@pytest.mark.parametrize("fixture", ["static_embedder", "use_embedder"])
def test_vectors_are_unit_length_and_deterministic(fixture: str, request: pytest.FixtureRequest) -> None:
    embedder: Embedder = request.getfixturevalue(fixture)
    first, second = embedder.embed("Write a haiku about the sea"), embedder.embed("Write a haiku about the sea")
    assert first.shape == (embedder.dim,) and first.dtype == np.float32
    assert abs(float(np.linalg.norm(first)) - 1.0) < 1e-4
    assert np.array_equal(first, second)


@pytest.mark.parametrize("fixture", ["static_embedder", "use_embedder"])
def test_empty_text_is_the_zero_vector(fixture: str, request: pytest.FixtureRequest) -> None:
    embedder: Embedder = request.getfixturevalue(fixture)
    assert not embedder.embed("   ").any()


def test_related_prompts_are_closer_than_unrelated(static_embedder: Embedder) -> None:
    code = static_embedder.embed("Write a Python function that sorts a list of numbers")
    near = static_embedder.embed("Implement a JavaScript function that sorts an array")
    far = static_embedder.embed("Compose a love poem about the autumn moon")
    assert cosine(code, near) > cosine(code, far)


def test_multilingual_model_maps_translations_together(use_embedder: Embedder) -> None:
    english = use_embedder.embed("Write a poem about the winter forest")
    russian = use_embedder.embed("Напиши стихотворение о зимнем лесе")  # noqa: RUF001
    unrelated = use_embedder.embed("Fix the null pointer exception in this Java method")
    assert cosine(english, russian) > cosine(english, unrelated) + 0.2


def test_only_the_head_of_a_long_prompt_is_embedded() -> None:
    embedder = load_embedder(DEFAULT_MODEL, max_tokens=16)
    head = "Translate this sentence into French please, it is for my grandmother who lives in Lyon"
    assert np.array_equal(embedder.embed(head), embedder.embed(head + " and more" * 500))


def test_default_model_is_fast_on_a_500_token_prompt(static_embedder: Embedder) -> None:
    prompt = "Explain the trade-offs between these two database designs and their indexes. " * 40
    static_embedder.embed(prompt)
    started = time.process_time()
    for _ in range(20):
        static_embedder.embed(prompt)
    assert (time.process_time() - started) / 20 < 0.01  # generous: bench/routing_latency.py measures it


def test_unknown_model_names_what_exists() -> None:
    with pytest.raises(EmbeddingUnavailableError, match=DEFAULT_MODEL):
        load_embedder("word2vec-google-news")


def test_lazy_embedding_computes_once_and_only_on_demand(static_embedder: Embedder) -> None:
    counting = CountingEmbedder(static_embedder)
    lazy = LazyEmbedding(counting, "hello there")
    assert not lazy.computed and counting.calls == []
    first = lazy.get()
    assert lazy.get() is first and counting.calls == ["hello there"]
