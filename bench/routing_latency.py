"""CPU cost of one routing decision with each offered embedding model, on one core.

    python bench/routing_latency.py [--runs 400] [--out bench/results/routing_latency.md]

For each model: semantic task routing (``routing: task`` without ``task_type``; once on prompts where a task
keyword fires, so the keywords decide without the embedding, once on prompts where none fires, so the
examples decide) and learned routing
(``routing: learned``, a router trained on synthetic rows for the timing only) on 500-token prompts, each
decision a fresh request (its embedding computed once, inside the timing); then explicit-model requests and
complexity routing, which compute no embedding. The process is pinned to one CPU and BLAS to one thread;
times are CPU time per decision (``time.process_time_ns``), p50 and p99.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from app.domain import ChatRequest, Message  # noqa: E402
from app.routing.base import ModelInfo, RouteInput  # noqa: E402
from app.routing.context import RoutingModels, load_routing_models  # noqa: E402
from app.routing.embedding import DEFAULT_MODEL, MULTILINGUAL_MODEL, installed, load_embedder  # noqa: E402
from app.routing.features import Features  # noqa: E402
from app.routing.router import route  # noqa: E402
from app.routing.task import detect_task  # noqa: E402
from app.routing.training import Sample, train  # noqa: E402
from app.settings.routing import RoutingConfig  # noqa: E402
from app.tokens import estimate_tokens  # noqa: E402

TEXT = (
    "please review the following service design and explain which parts of the caching layer could fail "
    "under load and how the database indexes interact with the queue consumers when traffic spikes"
)
WORDS = TEXT.split(" ")
# no task keyword fires in these words: task routing consults the examples (the embedding's full cost)
QUIET = (
    "the old harbour town wakes slowly while fishing boats drift past grey stone walls and gulls circle "
    "above quiet streets where bakers open their doors to the first cold light of morning"
)
SILENT = QUIET.split(" ")
CATALOGUE = {
    "big": ModelInfo("big", "openai", 4, 0.0025, 0.01),
    "small": ModelInfo("small", "openai", 2, 0.00015, 0.0006),
}


def prompt(i: int, tokens: int = 500, vocabulary: list[str] = WORDS) -> str:
    """A distinct prompt of about ``tokens`` estimated tokens."""
    words: list[str] = []
    k = i
    while estimate_tokens(" ".join(words)) < tokens:
        words.append(vocabulary[k % len(vocabulary)])
        k = k * 7 + 3
    return " ".join(words)


def timed(fn: Callable[[int], object], runs: int) -> tuple[float, float]:
    for i in range(20):
        fn(i)
    samples = []
    for i in range(runs):
        started = time.process_time_ns()
        fn(i)
        samples.append((time.process_time_ns() - started) / 1e6)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.99))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=400)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "routing_latency.md")
    args = parser.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    prompts = [prompt(i) for i in range(64)]
    requests = [ChatRequest(messages=(Message("user", p),)) for p in prompts]
    silent = [ChatRequest(messages=(Message("user", prompt(i, vocabulary=SILENT)),)) for i in range(64)]
    firing = [r for r, p in zip(requests, prompts, strict=True) if detect_task(Features.of_text(p)).scores]
    lines = [
        "## Routing decision cost (CPU per decision, one core)",
        "",
        f"~500-token prompts ({len(prompts[0].split())} words, {estimate_tokens(prompts[0])} estimated tokens); "
        f"{args.runs} decisions each.",
        "",
        "| embedding | decision | p50 ms | p99 ms |",
        "|---|---|---:|---:|",
    ]
    config = RoutingConfig()
    plain = load_routing_models(RoutingConfig(embedding={"model": "none"}))  # type: ignore[arg-type]

    def decide(
        mode: str, models: RoutingModels, pool: list[ChatRequest] = requests, **fields: object
    ) -> Callable[[int], object]:
        return lambda i: route(
            RouteInput(request=pool[i % len(pool)], mode=mode, **fields),  # type: ignore[arg-type]
            CATALOGUE,
            config,
            models=models,
        )

    for name in (DEFAULT_MODEL, MULTILINGUAL_MODEL):
        if not installed(name):
            lines.append(f"| {name} | not installed | - | - |")
            continue
        embedder = load_embedder(name)
        semantic = load_routing_models(RoutingConfig(embedding={"model": name}))  # type: ignore[arg-type]
        rows = [Sample(p, {"big": 1.0, "small": float(i % 2)}) for i, p in enumerate(prompts)]
        models = RoutingModels(embedder, semantic.semantic, train(rows, embedder))
        embed_p50, embed_p99 = timed(lambda i, e=embedder: e.embed(prompts[i % len(prompts)]), args.runs)
        lines.append(f"| {name} | embedding alone | {embed_p50:.3f} | {embed_p99:.3f} |")
        for label, mode, pool in (
            ("semantic task routing (a task keyword fires: keywords decide)", "task", firing),
            ("semantic task routing (no keyword: the examples decide)", "task", silent),
            ("learned routing", "learned", requests),
        ):
            p50, p99 = timed(decide(mode, models, pool), args.runs)
            lines.append(f"| {name} | {label} | {p50:.3f} | {p99:.3f} |")
        p50, p99 = timed(decide("specific", models, model="big"), args.runs)
        lines.append(f"| {name} loaded | explicit model (no embedding) | {p50:.3f} | {p99:.3f} |")
    for label, mode in (("complexity routing", "complexity"), ("keyword task routing", "task")):
        p50, p99 = timed(decide(mode, plain), args.runs)
        lines.append(f"| none | {label} | {p50:.3f} | {p99:.3f} |")
    text = "\n".join([*lines, ""])
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
