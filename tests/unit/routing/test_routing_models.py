# ruff: noqa: RUF001  (a prompt in another script on purpose)
"""The routing models are checked at startup but loaded on first use: a deployment whose clients name their
model never holds the embedding weights; the first request routed by task loads them, once."""

from __future__ import annotations

import numpy as np
import pytest

from app.errors import ConfigError
from app.routing.context import load_routing_models
from app.routing.embedding import DEFAULT_MODEL, WORDLLAMA_WEIGHTS, mapped_tensor
from app.routing.router import route
from tests.unit.routing.helpers import catalogue, inp, routing


def test_the_model_loads_on_the_first_request_that_needs_it() -> None:
    config = routing()
    models = load_routing_models(config)
    assert not models.loaded
    route(inp("Write a poem about rain", "complexity"), catalogue(), config, models=models)
    route(inp("Write a poem about rain", "auto"), catalogue(), config, models=models)
    route(inp("Write a poem about rain", "cost"), catalogue(), config, models=models)
    assert not models.loaded, "routers that need no embedding leave it unloaded"
    decision = route(inp("Напиши короткое стихотворение о весеннем дожде", "task"), catalogue(), config, models=models)
    assert models.loaded and decision.details["detector"] == "semantic"
    assert models.embedder is not None and models.embedder.name == DEFAULT_MODEL


def test_preload_loads_it_at_startup() -> None:
    models = load_routing_models(routing(embedding={"preload": True}))
    assert models.loaded and models.semantic is not None


def test_no_examples_is_a_startup_error_not_a_first_request_error() -> None:
    with pytest.raises(ConfigError, match=r"routing\.semantic\.examples"):
        load_routing_models(routing(semantic={"replace_examples": True}))


def test_the_mapped_table_is_the_files_tensor() -> None:
    from safetensors.numpy import load_file

    from app.routing.embedding import _package_dir

    path = _package_dir("wordllama", "routing").joinpath(*WORDLLAMA_WEIGHTS)
    mapped = mapped_tensor(path, "embedding.weight")
    loaded = load_file(str(path))["embedding.weight"]
    assert mapped.shape == loaded.shape and mapped.dtype == loaded.dtype
    assert np.array_equal(mapped[[0, 17, 31999]], loaded[[0, 17, 31999]])
    assert np.array_equal(np.asarray(mapped), loaded)
