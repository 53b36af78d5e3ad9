"""The embedding routers on the team's dev data (read in place): semantic task detection and the learned
quality-cost router. Called by ``bench/routing_eval.py``; needs the routing extras.

Semantic tasks: the built-in example prompts (``app/routing/task_examples.py``, written for Switchyard) and
keyword hits, scored on MT-Bench (first turns) and Arena-Hard v2.0; nothing is trained on those prompts.

Learned router: trained on one part of the RouterBench files and scored on the rest, never on what it is
scored on: (1) a random half of every file against the other half; (2) leave one file out (trained on two
data sets, scored on the third: traffic unlike its training data). Two-model curves (strongest vs cheapest)
rank prompts by the predicted quality gap; the 11-model curve moves ``quality_tolerance``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from app.routing.context import RoutingModels
from app.routing.embedding import DEFAULT_MODEL, MULTILINGUAL_MODEL, Embedder, Vector, installed, load_embedder
from app.routing.features import Features
from app.routing.learned import LearnedRouter, choose
from app.routing.router import detect
from app.routing.semantic import SemanticTasks
from app.routing.task import detect_task
from app.routing.task_examples import TASK_EXAMPLES
from app.routing.training import Sample, train
from app.settings.routing import RoutingConfig
from bench.routing_eval import (
    Normaliser,
    Point,
    Prompt,
    area,
    evaluate,
    latin,
    macro_f1,
    routerbench,
    score_curve,
    task_rows,
    top_share,
)

SHARE = 0.3  # the two-model operating point: share of calls to the strongest
TOLERANCES = (0.0, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0)


@dataclass(eq=False)
class Cached:
    """An embedder that remembers its vectors (every split embeds the same prompts again)."""

    inner: Embedder
    memo: dict[str, Vector] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dim(self) -> int:
        return self.inner.dim

    def embed(self, text: str) -> Vector:
        if text not in self.memo:
            self.memo[text] = self.inner.embed(text)
        return self.memo[text]


def embedders() -> list[Embedder]:
    """Each installed model at its default head length (512 tokens; 128 words for USE)."""
    return [Cached(load_embedder(name)) for name in (DEFAULT_MODEL, MULTILINGUAL_MODEL) if installed(name)]


# ---------------------------------------------------------------- semantic tasks


def semantic_section(data: Path, limit: int | None, models: Sequence[Embedder]) -> list[str]:
    rows = task_rows(data, limit)
    rows += [(f"{d} (non-Latin-script prompts only)", g, p) for d, g, p in rows if d != "MT-Bench" and not latin(p)]
    config = RoutingConfig()
    semantic = config.semantic
    lines = [
        "### Semantic task detection",
        "",
        f"Built-in examples ({sum(map(len, TASK_EXAMPLES.values()))} prompts, written for Switchyard), "
        f"k {semantic.k}, floor {semantic.floor}; 'keywords first' (the default) is the router's own "
        "`app.routing.router.detect`: the keyword detector decides when a task keyword fires, the examples "
        f"when none does; 'sum' adds {semantic.keyword_weight} per keyword hit to each task's similarity and "
        "lets the examples decide (the previous default rule); 'examples only' ignores the keywords.",
        "",
        "| detector | data set | prompts | accuracy | macro-F1 | per-task F1 |",
        "|---|---|---:|---:|---:|---|",
    ]
    detectors: list[tuple[str, Callable[[str], str]]] = [("keywords", lambda p: detect_task(Features.of_text(p)).task)]
    for embedder in models:
        index = SemanticTasks.build(embedder, TASK_EXAMPLES, semantic.floor, semantic.k)
        loaded = RoutingModels(embedder, index)
        for label, combine in (("keywords first", "keywords_first"), ("sum", "sum")):
            variant = config.model_copy(update={"semantic": semantic.model_copy(update={"combine": combine})})

            def run(prompt: str, variant: RoutingConfig = variant, loaded: RoutingModels = loaded) -> str:
                return detect(Features.of_text(prompt), variant, loaded, loaded.embedding_for(prompt))[0]

            detectors.append((f"{label}, {embedder.name}", run))

        def examples_only(prompt: str, index: SemanticTasks = index, embedder: Embedder = embedder) -> str:
            return index.classify(embedder.embed(prompt)).task

        detectors.append((f"examples only, {embedder.name}", examples_only))
    for name, run_detector in detectors:
        predicted = {p: run_detector(p) for p in dict.fromkeys(p for _, _, p in rows)}
        for dataset in dict.fromkeys(r[0] for r in rows):
            gold = [g for d, g, _ in rows if d == dataset]
            guess = [predicted[p] for d, _, p in rows if d == dataset]
            accuracy = sum(g == p for g, p in zip(gold, guess, strict=True)) / len(gold)
            macro, per_class = macro_f1(gold, guess)
            classes = ", ".join(f"{k} {v:.2f}" for k, v in per_class.items())
            lines.append(f"| {name} | {dataset} | {len(gold)} | {accuracy:.3f} | {macro:.3f} | {classes} |")
    return [*lines, ""]


# ---------------------------------------------------------------- learned router


def _samples(prompts: Sequence[Prompt]) -> list[Sample]:
    return [Sample(p.text, dict(p.correct), dict(p.cost)) for p in prompts]


def splits(prompts: Sequence[Prompt]) -> list[tuple[str, list[Prompt], list[Prompt]]]:
    """(name, train, test): a random half of every file, then leave-one-file-out."""
    rng = random.Random(0)
    train_half: list[Prompt] = []
    test_half: list[Prompt] = []
    for dataset in dict.fromkeys(p.dataset for p in prompts):
        part = [p for p in prompts if p.dataset == dataset]
        rng.shuffle(part)
        train_half += part[: len(part) // 2]
        test_half += part[len(part) // 2 :]
    out = [("random half of each file", train_half, test_half)]
    for dataset in dict.fromkeys(p.dataset for p in prompts):
        out.append(
            (
                f"trained without {dataset}, scored on {dataset}",
                [p for p in prompts if p.dataset != dataset],
                [p for p in prompts if p.dataset == dataset],
            )
        )
    return out


def _apgr(norm: Normaliser, curve: Sequence[Point]) -> tuple[float, float]:
    return area([norm.by_calls(p) for p in curve]), area([norm.by_cost(p) for p in curve])


KNN_PSEUDO = 5.0


def knn_predictions(
    train_set: Sequence[Prompt], test: Sequence[Prompt], embedder: Embedder, models: Sequence[str]
) -> list[dict[str, float]]:
    """An experiment, not shipped: each model's mean score over the k = sqrt(n) nearest training prompts
    (cosine over centred embeddings), shrunk towards its training mean by ``KNN_PSEUDO`` pseudo-rows, with
    no fallback for unlike prompts (the shipped router's length prior)."""
    import numpy as np

    train_vectors = np.stack([embedder.embed(p.text) for p in train_set]).astype(np.float32)
    center = train_vectors.mean(axis=0)
    keys = train_vectors - center
    keys /= np.maximum(np.linalg.norm(keys, axis=1, keepdims=True), 1e-9)
    scores = np.array([[p.correct[m] for m in models] for p in train_set], dtype=np.float64)
    prior = scores.mean(axis=0)
    k = int(min(max(round(len(train_set) ** 0.5), 5), 50))
    out = []
    for prompt in test:
        query = np.asarray(embedder.embed(prompt.text), dtype=np.float32) - center
        sims = keys @ (query / max(float(np.linalg.norm(query)), 1e-9))
        nearest = np.argpartition(-sims, k - 1)[:k]
        estimate = (scores[nearest].sum(axis=0) + KNN_PSEUDO * prior) / (k + KNN_PSEUDO)
        out.append({m: float(q) for m, q in zip(models, estimate, strict=True)})
    return out


def learned_rows(
    name: str, train_set: Sequence[Prompt], test: Sequence[Prompt], embedder: Embedder, strong: str, weak: str
) -> tuple[list[str], list[str]]:
    started = time.perf_counter()
    router: LearnedRouter = train(_samples(train_set), embedder)
    seconds = time.perf_counter() - started
    estimates = [router.estimate(embedder.embed(p.text), Features.of_text(p.text)) for p in test]
    predictions = [q for q, _ in estimates]
    familiarity = sum(f for _, f in estimates) / len(estimates)
    n = len(test)
    norm = Normaliser(evaluate(test, [weak] * n, strong), evaluate(test, [strong] * n, strong))
    if norm.strong.quality == norm.weak.quality or norm.strong.cost == norm.weak.cost:
        return [f"| {name} | {embedder.name} | {len(train_set)}/{n} | (no quality or cost gap to recover) |"], []
    gap = [q[strong] - q[weak] for q in predictions]
    lengths = [float(Features.of_text(p.text).tokens) for p in test]
    learned_calls, learned_cost = _apgr(norm, score_curve(test, gap, strong, weak))
    knn = knn_predictions(train_set, test, embedder, tuple(router.models))
    knn_calls, knn_cost = _apgr(norm, score_curve(test, [q[strong] - q[weak] for q in knn], strong, weak))
    length_calls, length_cost = _apgr(norm, score_curve(test, lengths, strong, weak))
    # one operating point: the 30% of prompts with the largest predicted gain (or the longest) to the strongest
    point = evaluate(test, [strong if s else weak for s in top_share(gap, SHARE)], strong)
    by_length = evaluate(test, [strong if s else weak for s in top_share(lengths, SHARE)], strong)
    two = (
        f"| {name} | {embedder.name} | {len(train_set)}/{n} | {familiarity:.2f} | {learned_calls:.3f} | "
        f"{length_calls:.3f} | {knn_calls:.3f} | {learned_cost:.3f} | {length_cost:.3f} | {knn_cost:.3f} | "
        f"{norm.pgr(point):.3f} | {norm.pgr(by_length):.3f} | {SHARE:.3f} | {seconds:.1f}s |"
    )
    models = tuple(router.models)
    costs = {m: router.mean_cost.get(m, 0.0) for m in models}
    prior = {m: float(v) for m, v in zip(models, router.prior, strict=True)}
    many = []
    labelled = (
        ("learned", predictions),
        ("prior only (no prompt)", [prior] * n),
        ("kNN experiment (not shipped, no length fallback)", knn),
    )
    for label, rows in labelled:
        curve: list[Point] = []
        for tolerance in TOLERANCES:
            choice = [choose(q, {m: m for m in models}, costs, tolerance).eligible[0] for q in rows]
            curve.append(evaluate(test, choice, strong))
        cost_apgr = area([(0.0, 0.0), *(norm.by_cost(p) for p in curve), (1.0, 1.0)])
        points = "; ".join(
            f"{t:g}: q {p.quality:.3f}, cost {norm.by_cost(p)[0]:.2f}, PGR {norm.pgr(p):.2f}"
            for t, p in zip(TOLERANCES, curve, strict=True)
        )
        many.append(f"| {name} | {embedder.name} | {label} | {cost_apgr:.3f} | {points} |")
    return [two], many


def learned_section(data: Path, limit: int | None, models: Sequence[Embedder]) -> list[str]:
    prompts = routerbench(data, limit)
    names = list(prompts[0].correct)
    quality = {m: sum(p.correct[m] for p in prompts) / len(prompts) for m in names}
    cost = {m: sum(p.cost[m] for p in prompts) for m in names}
    strong, weak = max(names, key=lambda m: quality[m]), min(names, key=lambda m: cost[m])
    two: list[str] = []
    many: list[str] = []
    for embedder in models:
        for name, train_set, test in splits(prompts):
            rows_two, rows_many = learned_rows(name, train_set, test, embedder, strong, weak)
            two += rows_two
            many += rows_many
    return [
        "### Learned quality-cost router on RouterBench",
        "",
        f"Trained on one part, scored on the rest (never on its own training rows). Two models: {strong} "
        f"(strongest) vs {weak} (cheapest); prompts ranked by the predicted quality gap, against "
        f"route-by-length; 'PGR at {SHARE:.0%}' sends that share of the calls to the strongest (random "
        f"mixing: {SHARE:.3f}). Familiarity: the test prompts' mean (1: like the training prompts, 0: "
        "unlike them, where the router falls back to its length prior). 'kNN' is an experiment, not "
        "shipped: each model's mean score over the sqrt(n) nearest training prompts, shrunk towards its mean "
        f"by {KNN_PSEUDO:g} pseudo-rows, with no length fallback.",
        "",
        f"| split | embedding | train/test | familiarity | APGR calls | length | kNN | APGR cost | length | kNN "
        f"| PGR at {SHARE:.0%} | length | random | training |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *two,
        "",
        "All 11 models, the cheapest (by training-set mean cost) within `quality_tolerance` of the best "
        "prediction; APGR (cost) over the curve as the tolerance moves (PGR against the strongest/cheapest "
        "pair, as the cost router's 0.538 above). 'prior only' is the same rule on each model's mean training "
        "score, the same for every prompt: what the prompt adds is the difference. Points: tolerance: quality, "
        "normalised cost, PGR.",
        "",
        "| split | embedding | predictions | APGR (cost) | curve |",
        "|---|---|---|---:|---|",
        *many,
        "",
    ]


def sections(data: Path, limit: int | None) -> list[str]:
    models = embedders()
    if not models:
        return ["(embedding routers skipped: pip install '.[routing]' to measure them)", ""]
    return semantic_section(data, limit, models) + learned_section(data, limit, models)
