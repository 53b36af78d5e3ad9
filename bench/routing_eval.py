"""Measure Switchyard's routers on the team's labelled prompts (read in place, never copied).

    python bench/routing_eval.py [--data ../shared/evals/dev] [--limit N] [--out bench/results/routing_eval.md]

The data directory defaults to ``$SWITCHYARD_EVAL_DATA`` or ``<repo>/../shared/evals/dev``.

1. Task detection (``app.routing.task.detect_task`` with the built-in keywords) on MT-Bench questions (first
   turn) and Arena-Hard v2.0 prompts, mapped to our task names by ``MT_BENCH_TASKS`` / ``ARENA_HARD_TASKS``.
   Macro-F1 is the mean F1 over the gold classes; predicting any other task counts as an error.
2. Cost/quality on the RouterBench train files (ARC-Challenge, MBPP, Winogrande; 11 models with per-prompt
   0/1 correctness and the dollar cost RouterBench measured). Quality and cost are reported relative to
   always-strongest. APGR (average performance gap recovered) is the area under the router's curve of
   PGR = (Q - Q_cheapest) / (Q_strongest - Q_cheapest) against normalised cost
   (C - C_cheapest) / (C_strongest - C_cheapest) over [0, 1]; random mixing of the two scores 0.5.
   Two-model routers (length, complexity) rank prompts by a score and send the top share to the strongest
   model, the rest to the cheapest, sweeping the share (tied scores are mixed at random, i.e. linearly).
   The complexity curve uses ``ComplexityVerdict.score`` (complex prompts first, then the graded score of
   ``app.routing.signals``; a rule ``min_complexity_score`` routes on the same threshold); the row below it
   keeps the earlier ranking (level first, then length) for comparison. Same APGR definitions for both.
   The cost router runs on all 11 models with ``RB_TIERS`` and ``RB_PRICES``; its curve sweeps a shift of
   every level's required tier from -4 to +4 (all-cheapest ... all-strongest).
3. The embedding routers (``bench/routing_learned.py``): semantic task detection on the same prompts, and
   the learned quality-cost router trained on one part of the RouterBench files and scored on the rest.
"""

from __future__ import annotations

import argparse
import ast
import csv
import itertools
import json
import os
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from app.routing.base import ModelInfo  # noqa: E402
from app.routing.complexity import LEVELS, classify_complexity  # noqa: E402
from app.routing.cost import cost_route  # noqa: E402
from app.routing.features import Features  # noqa: E402
from app.routing.task import detect_task  # noqa: E402
from app.settings.routing import ComplexityConfig, CostConfig, LevelTiers  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "evals" / "dev"
MT_BENCH = "lm-sys__FastChat/fastchat/llm_judge/data/mt_bench/question.jsonl"
ARENA_HARD = "lmarena__arena-hard-auto/data/arena-hard-v2.0/question.jsonl"
ROUTERBENCH = "shuhao02__RouterDC/datasets/routerbench_zs"
ROUTERBENCH_FILES = ("arc_challenge_train.csv", "mbpp_train.csv", "winograde_train.csv")

# MT-Bench category -> our task. Role-play is persona writing (creative); math and logic puzzles are both
# "reasoning"; STEM and humanities questions ask to explain, discuss or compare a topic ("analysis").
MT_BENCH_TASKS = {
    "writing": "creative",
    "roleplay": "creative",
    "reasoning": "reasoning",
    "math": "reasoning",
    "coding": "code",
    "extraction": "extraction",
    "stem": "analysis",
    "humanities": "analysis",
}
# Arena-Hard v2.0 subcategory -> our task.
ARENA_HARD_TASKS = {"coding": "code", "math": "reasoning", "creative_writing": "creative"}

# RouterBench models -> our quality tiers 1..4, by the standing of each model when RouterBench was made
# (late-2023 LMSYS Arena ranking) and its price class, as the shipped catalogue does for today's models
# (local 7B = 1, "mini" class = 2, frontier = 4). Not fitted to the correctness data below.
RB_TIERS = {
    "gpt-4-1106-preview": 4,
    "claude-v2": 3,
    "claude-v1": 3,
    "gpt-3.5-turbo-1106": 2,
    "claude-instant-v1": 2,
    "mistralai/mixtral-8x7b-chat": 2,
    "zero-one-ai/Yi-34B-Chat": 2,
    "meta/llama-2-70b-chat": 2,
    "meta/code-llama-instruct-34b-chat": 1,
    "WizardLM/WizardLM-13B-V1.2": 1,
    "mistralai/mistral-7b-chat": 1,
}
# USD per 1k input / output tokens: the public list prices of late 2023 (OpenAI, Anthropic, Together AI)
# that RouterBench's own cost columns are based on. The cost router only sees these and token estimates.
RB_PRICES = {
    "gpt-4-1106-preview": (0.01, 0.03),
    "claude-v2": (0.008, 0.024),
    "claude-v1": (0.008, 0.024),
    "gpt-3.5-turbo-1106": (0.001, 0.002),
    "claude-instant-v1": (0.0008, 0.0024),
    "mistralai/mixtral-8x7b-chat": (0.0006, 0.0006),
    "zero-one-ai/Yi-34B-Chat": (0.0008, 0.0008),
    "meta/llama-2-70b-chat": (0.0009, 0.0009),
    "meta/code-llama-instruct-34b-chat": (0.000776, 0.000776),
    "WizardLM/WizardLM-13B-V1.2": (0.0003, 0.0003),
    "mistralai/mistral-7b-chat": (0.0002, 0.0002),
}
# The complexity router's targets on RouterBench: simple -> the OpenAI "mini" model of the time (as
# gpt-4o-mini in the shipped defaults); code and complex -> the strongest model.
RB_COMPLEXITY_TARGETS = {
    "simple": "gpt-3.5-turbo-1106",
    "code": "gpt-4-1106-preview",
    "complex": "gpt-4-1106-preview",
}


# ---------------------------------------------------------------- task detection


def macro_f1(gold: Sequence[str], predicted: Sequence[str]) -> tuple[float, dict[str, float]]:
    """Mean F1 over the gold classes, and each class's F1."""
    per_class: dict[str, float] = {}
    for label in sorted(set(gold)):
        tp = sum(g == label == p for g, p in zip(gold, predicted, strict=True))
        fp = sum(p == label != g for g, p in zip(gold, predicted, strict=True))
        fn = sum(g == label != p for g, p in zip(gold, predicted, strict=True))
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        per_class[label] = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return sum(per_class.values()) / len(per_class), per_class


def _read_jsonl(path: Path, limit: int | None) -> list[dict]:
    with path.open(encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    if limit is None:
        return rows
    by_label: dict[str, list[dict]] = {}
    for row in rows:
        by_label.setdefault(str(row.get("subcategory") or row.get("category")), []).append(row)
    return [row for group in by_label.values() for row in group[:limit]]


def task_rows(data: Path, limit: int | None) -> list[tuple[str, str, str]]:
    """(dataset, gold task, prompt) for every labelled prompt."""
    rows = [("MT-Bench", MT_BENCH_TASKS[r["category"]], r["turns"][0]) for r in _read_jsonl(data / MT_BENCH, limit)]
    rows += [
        ("Arena-Hard v2.0", ARENA_HARD_TASKS[r["subcategory"]], r["prompt"])
        for r in _read_jsonl(data / ARENA_HARD, limit)
    ]
    return rows


def latin(text: str) -> bool:
    """Mostly ASCII letters: the keyword lists are English, so this separates what they can read."""
    letters = [c for c in text if c.isalpha()]
    return not letters or sum(c.isascii() for c in letters) / len(letters) >= 0.9


def task_section(data: Path, limit: int | None) -> list[str]:
    rows = task_rows(data, limit)
    lines = [
        "### Task detection",
        "",
        "| data set | prompts | accuracy | macro-F1 | per-task F1 |",
        "|---|---:|---:|---:|---|",
    ]
    confusions: list[str] = []
    rows += [(f"{d} (Latin-script prompts only)", g, p) for d, g, p in rows if d != "MT-Bench" and latin(p)]
    for dataset in dict.fromkeys(r[0] for r in rows):
        gold = [g for d, g, _ in rows if d == dataset]
        predicted = [detect_task(Features.of_text(p)).task for d, _, p in rows if d == dataset]
        accuracy = sum(g == p for g, p in zip(gold, predicted, strict=True)) / len(gold)
        macro, per_class = macro_f1(gold, predicted)
        classes = ", ".join(f"{k} {v:.2f}" for k, v in per_class.items())
        lines.append(f"| {dataset} | {len(gold)} | {accuracy:.3f} | {macro:.3f} | {classes} |")
        errors = Counter(f"{g}->{p}" for g, p in zip(gold, predicted, strict=True) if g != p)
        confusions.append(f"{dataset}: " + (", ".join(f"{k} x{n}" for k, n in errors.most_common(6)) or "-"))
    lines += ["", "Most frequent confusions (gold->predicted): " + "; ".join(confusions), ""]
    return lines


# ---------------------------------------------------------------- RouterBench


@dataclass(frozen=True, slots=True)
class Prompt:
    dataset: str
    text: str
    correct: dict[str, float]
    cost: dict[str, float]


def _prompt_text(raw: str) -> str:
    try:
        turns = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return raw
    return "\n".join(str(t) for t in turns) if isinstance(turns, list) else str(turns)


def routerbench(data: Path, limit: int | None) -> list[Prompt]:
    """Every RouterBench prompt whose 11 scores and costs are all present (a few ARC rows are not)."""
    csv.field_size_limit(1 << 30)
    prompts: list[Prompt] = []
    for name in ROUTERBENCH_FILES:
        with (data / ROUTERBENCH / name).open(encoding="utf-8", newline="") as handle:
            for index, row in enumerate(csv.DictReader(handle)):
                if limit is not None and index >= limit:
                    break
                cells = [row[m] for m in RB_TIERS] + [row[f"{m}|total_cost"] for m in RB_TIERS]
                if any(c == "" for c in cells):
                    continue
                prompts.append(
                    Prompt(
                        row["eval_name"],
                        _prompt_text(row["prompt"]),
                        {m: float(row[m]) for m in RB_TIERS},
                        {m: float(row[f"{m}|total_cost"]) for m in RB_TIERS},
                    )
                )
    return prompts


@dataclass(frozen=True, slots=True)
class Point:
    quality: float
    cost: float
    strong_share: float


def evaluate(prompts: Sequence[Prompt], choice: Sequence[str], strong: str) -> Point:
    n = len(prompts)
    quality = sum(p.correct[m] for p, m in zip(prompts, choice, strict=True)) / n
    cost = sum(p.cost[m] for p, m in zip(prompts, choice, strict=True))
    return Point(quality, cost, sum(m == strong for m in choice) / n)


def area(points: Sequence[tuple[float, float]]) -> float:
    """Trapezoid area under a piecewise-linear curve over x in [0, 1] (points sorted by x; the curve is
    clipped to [0, 1] and held flat outside the points)."""
    xs = sorted(points)
    total = 0.0
    for (x0, y0), (x1, y1) in itertools.pairwise(xs):
        lo, hi = max(x0, 0.0), min(x1, 1.0)
        if hi <= lo or x1 == x0:
            continue
        at = lambda x, x0=x0, y0=y0, x1=x1, y1=y1: y0 + (y1 - y0) * (x - x0) / (x1 - x0)  # noqa: E731
        total += (at(lo) + at(hi)) / 2 * (hi - lo)
    return total


class Normaliser:
    """Maps an operating point to (normalised cost, PGR) or (share of calls to strongest, PGR)."""

    def __init__(self, weak: Point, strong: Point) -> None:
        self.weak, self.strong = weak, strong

    def pgr(self, point: Point) -> float:
        return (point.quality - self.weak.quality) / (self.strong.quality - self.weak.quality)

    def by_cost(self, point: Point) -> tuple[float, float]:
        return (point.cost - self.weak.cost) / (self.strong.cost - self.weak.cost), self.pgr(point)

    def by_calls(self, point: Point) -> tuple[float, float]:
        return point.strong_share, self.pgr(point)


def score_curve(prompts: Sequence[Prompt], scores: Sequence[float], strong: str, weak: str) -> list[Point]:
    """Send the highest-scored prompts to ``strong``; one point per boundary between distinct scores."""
    order = sorted(range(len(prompts)), key=lambda i: -scores[i])
    choice = [weak] * len(prompts)
    points = [evaluate(prompts, choice, strong)]
    for rank, i in enumerate(order):
        choice[i] = strong
        if rank + 1 == len(order) or scores[order[rank + 1]] != scores[i]:
            points.append(evaluate(prompts, choice, strong))
    return points


def top_share(scores: Sequence[float], share: float) -> list[bool]:
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    chosen = set(order[: round(share * len(scores))])
    return [i in chosen for i in range(len(scores))]


def rb_catalogue() -> dict[str, ModelInfo]:
    return {name: ModelInfo(name, "routerbench", tier, *RB_PRICES[name]) for name, tier in RB_TIERS.items()}


def cost_choices(features: Sequence[Features], shift: int, catalogue: dict[str, ModelInfo]) -> list[str]:
    """The cost router's first choice per prompt, with every level's required tier shifted by ``shift``."""
    top, base = max(RB_TIERS.values()), LevelTiers()
    tier: Callable[[int], int] = lambda t: min(max(t + shift, 1), top)  # noqa: E731
    config = CostConfig(tiers=LevelTiers(simple=tier(base.simple), code=tier(base.code), complex=tier(base.complex)))
    complexity = ComplexityConfig()
    return [cost_route(f, classify_complexity(f, complexity), catalogue, config).models[0] for f in features]


def routerbench_section(data: Path, limit: int | None) -> list[str]:
    prompts = routerbench(data, limit)
    models = list(RB_TIERS)
    mean_quality = {m: sum(p.correct[m] for p in prompts) / len(prompts) for m in models}
    total_cost = {m: sum(p.cost[m] for p in prompts) for m in models}
    strong = max(models, key=lambda m: mean_quality[m])
    weak = min(models, key=lambda m: total_cost[m])
    n = len(prompts)
    always_strong = evaluate(prompts, [strong] * n, strong)
    always_weak = evaluate(prompts, [weak] * n, strong)
    norm = Normaliser(always_weak, always_strong)
    features = [Features.of_text(p.text) for p in prompts]
    verdicts = [classify_complexity(f) for f in features]
    lengths = [float(f.tokens) for f in features]
    long_tokens = ComplexityConfig().long_prompt_tokens
    level_major = [
        LEVELS.index(v.level) + min(f.tokens / long_tokens, 1.0) * 0.999
        for f, v in zip(features, verdicts, strict=True)
    ]

    complexity_point = evaluate(prompts, [strong if v.level != "simple" else weak for v in verdicts], strong)
    share = complexity_point.strong_share
    length_point = evaluate(prompts, [strong if s else weak for s in top_share(lengths, share)], strong)
    random_point = Point(  # the expectation of sending a random `share` of the prompts to the strongest
        share * always_strong.quality + (1 - share) * always_weak.quality,
        share * always_strong.cost + (1 - share) * always_weak.cost,
        share,
    )
    mapped_point = evaluate(prompts, [RB_COMPLEXITY_TARGETS[v.level] for v in verdicts], strong)
    catalogue = rb_catalogue()
    cost_point = evaluate(prompts, cost_choices(features, 0, catalogue), strong)
    cost_curve = [evaluate(prompts, cost_choices(features, s, catalogue), strong) for s in range(-4, 5)]

    def apgr(curve: list[Point]) -> str:
        by_calls = area([norm.by_calls(p) for p in curve])
        by_cost = area([norm.by_cost(p) for p in curve])
        return f"{by_calls:.3f} | {by_cost:.3f}"

    cost_apgr = area([(0.0, 0.0), *(norm.by_cost(p) for p in cost_curve), (1.0, 1.0)])

    def row(name: str, point: Point, apgr_value: str) -> str:
        return (
            f"| {name} | {point.strong_share:.1%} | {point.quality:.3f} | "
            f"{point.quality / always_strong.quality:.1%} | {point.cost / always_strong.cost:.1%} | {apgr_value} |"
        )

    levels = Counter((p.dataset, v.level) for p, v in zip(prompts, verdicts, strict=True))
    level_text = "; ".join(
        f"{d}: " + ", ".join(f"{lv} {levels[(d, lv)]}" for lv in ("simple", "code", "complex") if levels[(d, lv)])
        for d in dict.fromkeys(p.dataset for p in prompts)
    )
    cost_models = Counter(cost_choices(features, 0, catalogue))
    value: list[str] = []
    for dataset in dict.fromkeys(p.dataset for p in prompts):
        part = [p for p in prompts if p.dataset == dataset]
        gain = sum(p.correct[strong] - p.correct[weak] for p in part)
        spend = sum(p.cost[strong] - p.cost[weak] for p in part)
        value.append(f"{dataset} {gain / len(part):.3f} per prompt, {gain / spend:.0f} per $")
    return [
        "### Cost and quality on RouterBench",
        "",
        f"{n} prompts ({', '.join(f'{k} {v}' for k, v in Counter(p.dataset for p in prompts).items())}); "
        f"strongest = {strong} (quality {mean_quality[strong]:.3f}), cheapest = {weak} "
        f"(quality {mean_quality[weak]:.3f}, {total_cost[weak] / total_cost[strong]:.1%} of the strongest's cost).",
        "APGR (calls): PGR against the share of calls sent to the strongest (RouteLLM's definition); "
        "APGR (cost): PGR against normalised dollar cost. Random mixing scores 0.5 on both.",
        "",
        "| router | calls to strongest | quality | quality vs strongest | cost vs strongest "
        "| APGR (calls) | APGR (cost) |",
        "|---|---:|---:|---:|---:|---:|---:|",
        row("always-strongest", always_strong, "1.000 | 1.000"),
        row("always-cheapest", always_weak, "0.000 | 0.000"),
        row("random mixing (same share as complexity)", random_point, "0.500 | 0.500"),
        row(
            "route-by-length (same share as complexity)",
            length_point,
            apgr(score_curve(prompts, lengths, strong, weak)),
        ),
        row(
            "complexity: simple -> cheapest, code/complex -> strongest; curve: graded score",
            complexity_point,
            apgr(score_curve(prompts, [v.score for v in verdicts], strong, weak)),
        ),
        row(
            "(same point; curve: level first, then length, as before the graded score)",
            complexity_point,
            apgr(score_curve(prompts, level_major, strong, weak)),
        ),
        row("complexity: simple -> gpt-3.5-turbo, code/complex -> strongest", mapped_point, "- | -"),
        row("cost: 11 models, default tiers (2/3/4)", cost_point, f"- | {cost_apgr:.3f}"),
        "",
        f"Complexity levels: {level_text}.",
        "Strongest's quality gain over the cheapest: " + "; ".join(value) + " (the calls axis rewards "
        "the most gain per prompt, the cost axis the most per dollar).",
        "Cost router's picks at default tiers: "
        + ", ".join(f"{m.split('/')[-1]} {c}" for m, c in cost_models.most_common())
        + ". Its APGR (cost) is over its curve when every required tier is shifted by -4..+4.",
        "",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("SWITCHYARD_EVAL_DATA", DEFAULT_DATA)))
    parser.add_argument("--limit", type=int, default=None, help="at most N prompts per label / file")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "routing_eval.md")
    parser.add_argument("--no-embedding", action="store_true", help="skip the semantic and learned routers")
    args = parser.parse_args(argv)
    if not (args.data / MT_BENCH).is_file():
        print(f"evaluation data not found under {args.data}", file=sys.stderr)
        return 2
    lines = ["## Routing evaluation", ""]
    if args.limit is not None:
        lines += [f"(subset: at most {args.limit} prompts per label or file)", ""]
    lines += task_section(args.data, args.limit)
    lines += routerbench_section(args.data, args.limit)
    if not args.no_embedding:
        from bench.routing_learned import sections  # the embedding routers (needs '.[routing]')

        lines += sections(args.data, args.limit)
    text = "\n".join(lines)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
