"""The learned quality-cost router: training, the file (small, fast to load, validated), predictions and
the cheapest-within-tolerance choice, through ``route``."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from app.errors import ConfigError
from app.routing.base import ModelInfo
from app.routing.context import RoutingModels, load_routing_models
from app.routing.embedding import Embedder
from app.routing.features import Features
from app.routing.learned import LearnedRouter, RouterFileError, choose
from app.routing.router import route
from app.routing.training import train
from tests.unit.routing.conftest import CountingEmbedder
from tests.unit.routing.helpers import inp, routing
from tests.unit.routing.learned_data import code_prompt, samples

CODE = code_prompt("logging", "C++")
CHAT = "Hello! How is your day going?"


@pytest.fixture(scope="module")
def trained(static_embedder: Embedder) -> LearnedRouter:
    return train(samples(), static_embedder)


@pytest.fixture(scope="module")
def router_file(trained: LearnedRouter, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("router") / "router.npz"
    trained.save(path)
    return path


def catalogue() -> dict[str, ModelInfo]:
    return {
        "premium": ModelInfo("premium", "openai", 4, 0.01, 0.03, router_name="big"),
        "budget": ModelInfo("budget", "openai", 2, 0.0002, 0.0006, router_name="small"),
        "other": ModelInfo("other", "openai", 3, 0.001, 0.002),  # not in the training data
    }


def test_predictions_follow_the_training_data(trained: LearnedRouter, static_embedder: Embedder) -> None:
    code = trained.predict(static_embedder.embed(CODE), Features.of_text(CODE))
    chat = trained.predict(static_embedder.embed(CHAT), Features.of_text(CHAT))
    assert code["big"] > 0.8 and code["small"] < 0.45  # the familiar part of the prediction follows the data
    assert chat["small"] > code["small"] + 0.2 and chat["big"] > 0.8


def test_unlike_prompts_are_ranked_by_length(trained: LearnedRouter, static_embedder: Embedder) -> None:
    """Far from the training data the prediction is the length prior: the strong model's lead grows with
    length, as route-by-length ranks prompts."""
    familiar = samples()[0].prompt
    assert trained.familiarity(static_embedder.embed(familiar)) > 0.9
    gaps = []
    for words in (5, 50, 400):
        text = " ".join(["古池や蛙飛び込む水の音"] * words)
        quality, familiarity = trained.estimate(static_embedder.embed(text), Features.of_text(text))
        assert familiarity < 0.2
        gaps.append(quality["big"] - quality["small"])
    assert gaps[0] < gaps[1] < gaps[2]


def test_choose_takes_the_cheapest_within_tolerance() -> None:
    quality = {"big": 0.9, "small": 0.86, "mid": 0.7}
    candidates = {"premium": "big", "budget": "small", "middle": "mid"}
    costs = {"premium": 0.05, "budget": 0.001, "middle": 0.0001}
    assert choose(quality, candidates, costs, 0.05).eligible == ("budget", "premium")
    assert choose(quality, candidates, costs, 0.0).eligible == ("premium",)
    assert choose(quality, candidates, costs, 0.3).eligible[0] == "middle"


@pytest.mark.parametrize(("prompt", "expected"), [(CODE, "premium"), (CHAT, "budget")])
def test_learned_routing_end_to_end(router_file: Path, prompt: str, expected: str) -> None:
    config = routing(auto="learned", learned={"path": str(router_file)})
    models = load_routing_models(config)
    decision = route(inp(prompt), catalogue(), config, models=models)
    assert (decision.strategy, decision.model) == ("learned", expected)
    details = decision.details
    assert set(details["predicted_quality"]) == {"premium", "budget"}  # type: ignore[arg-type]
    assert details["quality_tolerance"] == 0.05 and details["eligible"][0] == expected  # type: ignore[index]
    assert "learned:" in decision.reason and decision.models[0] == expected


def test_per_request_tolerance_overrides_the_config(router_file: Path) -> None:
    config = routing(learned={"path": str(router_file), "quality_tolerance": 0.0})
    models = load_routing_models(config)
    strict = route(inp(CHAT, "learned"), catalogue(), config, models=models)
    loose = route(inp(CODE, "learned", quality_tolerance=1.0), catalogue(), config, models=models)
    assert loose.model == "budget" and loose.details["quality_tolerance"] == 1.0
    assert strict.details["quality_tolerance"] == 0.0


def test_the_embedding_is_computed_once_per_decision(trained: LearnedRouter, static_embedder: Embedder) -> None:
    counting = CountingEmbedder(static_embedder)
    models = RoutingModels(counting, None, trained)
    route(inp(CODE, "learned"), catalogue(), routing(), models=models)
    assert counting.calls == [CODE]


def test_without_a_trained_router_learned_falls_back_to_complexity() -> None:
    decision = route(
        inp("Analyze the trade-offs", "learned"), catalogue(), routing(), models=load_routing_models(routing())
    )
    assert decision.strategy == "complexity"
    assert decision.reason.startswith("learned routing unavailable: no trained router")


def test_the_file_is_small_and_loads_fast(router_file: Path, trained: LearnedRouter) -> None:
    assert router_file.stat().st_size < 200_000
    started = time.perf_counter()
    loaded = LearnedRouter.load(router_file)
    assert time.perf_counter() - started < 1.0
    assert loaded.models == trained.models and np.array_equal(loaded.weights, trained.weights)
    assert loaded.mean_cost["big"] == pytest.approx(trained.mean_cost["big"])


def test_invalid_files_are_clear_errors_at_startup(tmp_path: Path, router_file: Path) -> None:
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file")
    for path, message in ((tmp_path / "missing.npz", "no such file"), (garbage, "not a trained router file")):
        with pytest.raises(RouterFileError, match=message):
            LearnedRouter.load(path)
        with pytest.raises(ConfigError, match=r"routing\.learned\.path"):
            load_routing_models(routing(learned={"path": str(path)}))
    with pytest.raises(ConfigError, match="trained on embedding model 'wordllama-l2-256'"):
        load_routing_models(
            routing(
                embedding={"model": "use-multilingual-v3", "max_tokens": 64},
                semantic={"enabled": False},
                learned={"path": str(router_file)},
            )
        )
    with pytest.raises(ConfigError, match="needs an embedding model"):
        load_routing_models(routing(embedding={"model": "none"}, learned={"path": str(router_file)}))


def test_candidates_must_be_catalogue_models() -> None:
    from app.settings.routing import check_routing_references

    with pytest.raises(ValueError, match=r"routing\.learned\.candidates"):
        check_routing_references(routing(learned={"candidates": ["nope"]}), {"premium": object()})
