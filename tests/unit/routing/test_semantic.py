# ruff: noqa: RUF001  (prompts in other scripts on purpose)
"""Semantic task routing with the real default embedding: examples define tasks, a floor means
conversation, keyword hits help, and the decision explains itself."""

from __future__ import annotations

import pytest

from app.routing.context import RoutingModels, examples_for, load_routing_models
from app.routing.embedding import Embedder
from app.routing.router import route
from app.routing.semantic import SemanticTasks
from app.routing.task_examples import TASK_EXAMPLES
from tests.unit.routing.conftest import CountingEmbedder
from tests.unit.routing.helpers import catalogue, inp, routing


@pytest.fixture(scope="module")
def tasks(static_embedder: Embedder) -> SemanticTasks:
    return SemanticTasks.build(static_embedder, TASK_EXAMPLES, floor=0.1)


@pytest.mark.parametrize(
    ("prompt", "task"),
    [
        ("Write a Go function that parses a CSV file and returns the rows", "code"),
        ("Please translate my cover letter into Italian", "translation"),
        ("Give me the key points of this quarterly report in a few bullets", "summarization"),
        ("Write a sonnet about a ship lost at sea", "creative"),
        ("What is the probability of rolling two sixes with three dice?", "reasoning"),
    ],
)
def test_prompts_go_to_the_task_of_their_nearest_examples(
    tasks: SemanticTasks, static_embedder: Embedder, prompt: str, task: str
) -> None:
    verdict = tasks.classify(static_embedder.embed(prompt))
    assert verdict.task == task, verdict.scores
    assert verdict.nearest and verdict.nearest[0].score >= verdict.nearest[-1].score


def test_below_the_floor_is_conversation(static_embedder: Embedder) -> None:
    strict = SemanticTasks.build(static_embedder, TASK_EXAMPLES, floor=0.99)
    verdict = strict.classify(static_embedder.embed("Write a Go function that parses a CSV file"))
    assert verdict.task == "conversation" and verdict.best == "code"
    assert "< floor" in verdict.reason


def test_keyword_hits_add_to_a_tasks_score(tasks: SemanticTasks, static_embedder: Embedder) -> None:
    vector = static_embedder.embed("Tell me about the history of chess")
    plain = tasks.classify(vector)
    helped = tasks.classify(vector, {"translation": 5}, keyword_weight=0.5)
    assert helped.scores["translation"] == pytest.approx(plain.scores["translation"] + 2.5, abs=1e-3)
    assert helped.task == "translation"


def test_configured_examples_add_a_task() -> None:
    config = routing(semantic={"examples": {"legal": ["Review this non-disclosure agreement clause"]}})
    table = examples_for(config)
    assert table["legal"] == ("Review this non-disclosure agreement clause",)
    assert table["code"] == TASK_EXAMPLES["code"]
    only = examples_for(routing(semantic={"examples": {"legal": ["x"]}, "replace_examples": True}))
    assert set(only) == {"legal"}


def test_task_routing_uses_semantic_detection_and_explains_it() -> None:
    config = routing(semantic={"examples": {"legal": ["Review this NDA clause for risks", "Draft a lease contract"]}})
    models = load_routing_models(config)
    decision = route(
        inp("Review the indemnity clause of this supplier contract", "task"), catalogue(), config, models=models
    )
    details = decision.details
    assert details["detector"] == "semantic" and details["embedding"] == "wordllama-l2-256"
    assert details["task"] == "legal" and "task legal (semantic" in decision.reason
    assert decision.model == "gpt-4o-mini"  # legal is not in the task table: complexity decides
    nearest = details["nearest"]
    assert isinstance(nearest, list) and nearest[0]["task"] == "legal"


def test_task_type_given_and_explicit_models_never_embed(static_embedder: Embedder) -> None:
    counting = CountingEmbedder(static_embedder)
    base = load_routing_models(routing())
    models = RoutingModels(counting, base.semantic, None)
    route(inp("Write a poem", "task", task_type="creative"), catalogue(), routing(), models=models)
    route(inp("Write a poem", model="gpt-4o"), catalogue(), routing(), models=models)
    route(inp("Write a poem"), catalogue(), routing(), models=models)  # auto -> complexity: no embedding
    assert counting.calls == []
    route(inp("Write a poem", "task"), catalogue(), routing(), models=models)  # a keyword fires: it decides
    assert counting.calls == []
    route(inp("Hola, ¿qué tal?", "task"), catalogue(), routing(), models=models)  # no keyword: the examples
    assert counting.calls == ["Hola, ¿qué tal?"]


@pytest.mark.parametrize(
    ("prompt", "task", "detector"),
    [
        ("Write a Python function that merges two sorted lists", "code", "keywords"),
        ("Напиши короткое стихотворение о весеннем дожде", "creative", "semantic"),
        ("请证明：任意两个奇数之和是偶数。", "reasoning", "semantic"),
    ],
)
def test_keywords_decide_when_they_fire_and_the_examples_when_they_do_not(
    prompt: str, task: str, detector: str
) -> None:
    config = routing()
    models = load_routing_models(config)
    decision = route(inp(prompt, "task"), catalogue(), config, models=models)
    assert (decision.details["task"], decision.details["detector"]) == (task, detector), decision.details


def test_sum_lets_the_examples_weigh_the_keyword_hits() -> None:
    config = routing(semantic={"combine": "sum"})
    models = load_routing_models(config)
    decision = route(
        inp("Write a Python function that merges two sorted lists", "task"), catalogue(), config, models=models
    )
    assert decision.details["detector"] == "semantic" and decision.details["task"] == "code"


def test_without_an_embedding_model_keywords_decide_and_say_so() -> None:
    models = load_routing_models(routing(embedding={"model": "none"}))
    assert models.embedder is None and models.note and "keyword" in models.note
    decision = route(inp("Write a poem about rain", "task"), catalogue(), routing(), models=models)
    assert decision.details["detector"] == "keywords" and decision.details["note"] == models.note
    assert decision.details["task"] == "creative"


def test_a_task_defined_only_by_examples_wins_over_firing_keywords_when_nearest() -> None:
    legal = ["Review this NDA clause for risks", "Is this indemnity clause in the supplier contract enforceable?"]
    config = routing(semantic={"examples": {"legal": legal}})
    models = load_routing_models(config)
    prompt = "Analyze the indemnity clause of this supplier contract and explain the risks"  # 'analysis' keywords
    decision = route(inp(prompt, "task"), catalogue(), config, models=models)
    assert (decision.details["task"], decision.details["detector"]) == ("legal", "semantic")
    plain = route(inp(prompt, "task"), catalogue(), routing(), models=load_routing_models(routing()))
    assert (plain.details["task"], plain.details["detector"]) == ("analysis", "keywords")
