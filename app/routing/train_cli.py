"""``switchyard router train --out FILE [DATA ...] [--from-feedback [--export FILE]]``.

Trains the learned router (``app.routing.training``) on JSONL or RouterBench-style CSV files and/or on the
feedback recorded in the shared state store, with the embedding model the configuration names
(``routing.embedding.model``; ``auto`` is the default model), and checks that the written file loads.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from app.errors import ConfigError


def add_router_parser(sub: Any) -> None:
    router = sub.add_parser("router", help="train the learned router").add_subparsers(dest="router", required=True)
    train = router.add_parser("train", help="train a learned router file from data and/or recorded feedback")
    train.add_argument("data", nargs="*", type=Path, help="JSONL {prompt, model, score, cost?} or RouterBench CSV")
    train.add_argument("--out", type=Path, required=True, help="the trained router file to write (.npz)")
    train.add_argument("--from-feedback", action="store_true", help="also train on POST /v1/feedback scores")
    train.add_argument("--export", type=Path, help="with --from-feedback: write the feedback rows as JSONL")
    train.add_argument("--embedding", help="embedding model (default: the configuration's routing.embedding)")
    train.add_argument("--config", help="gateway YAML (env SWITCHYARD_CONFIG)")
    train.add_argument("--seed", type=int, default=0)
    train.set_defaults(func=cmd_train)


async def _feedback_rows(settings: Any) -> list[dict[str, Any]]:
    from app.routing.feedback import export_rows
    from app.state import open_store

    store = open_store(settings)
    await store.start()
    try:
        return await export_rows(store)
    finally:
        await store.aclose()


def _embedding_name(args: argparse.Namespace, settings: Any) -> tuple[str, int | None]:
    from app.routing.embedding import DEFAULT_MODEL
    from app.settings.catalogue import load_config

    name: str = "auto"
    max_tokens: int | None = None
    if Path(settings.config).is_file():
        routing = load_config(settings.config).routing
        name, max_tokens = routing.embedding.model, routing.embedding.max_tokens
    name = args.embedding or name
    return (DEFAULT_MODEL if name in ("auto", "none") else name), max_tokens


def cmd_train(args: argparse.Namespace) -> int:
    from app.routing.embedding import EmbeddingUnavailableError, load_embedder
    from app.routing.learned import LearnedRouter, RouterFileError
    from app.routing.training import Sample, TrainingDataError, read_samples, train
    from app.settings.settings import Settings

    settings = Settings(**({"config": args.config} if args.config else {}))
    if not args.data and not args.from_feedback:
        print("switchyard: give training files and/or --from-feedback", file=sys.stderr)
        return 2
    try:
        name, max_tokens = _embedding_name(args, settings)
        embedder = load_embedder(name, max_tokens)
        samples = read_samples(args.data)
    except (ConfigError, EmbeddingUnavailableError, TrainingDataError) as exc:
        print(f"switchyard: {exc}", file=sys.stderr)
        return 1
    if args.from_feedback:
        rows = asyncio.run(_feedback_rows(settings))
        if args.export:
            args.export.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        usable = [r for r in rows if r.get("prompt") and r.get("model")]
        print(
            f"feedback: {len(rows)} rows, {len(usable)} with a prompt "
            "(prompts are kept only with routing.feedback.keep_prompts)"
        )
        samples += [Sample(r["prompt"], {r["model"]: float(r["score"])}) for r in usable]
    if not samples:
        print("switchyard: no training rows", file=sys.stderr)
        return 1
    started = time.perf_counter()
    router = train(samples, embedder, seed=args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    router.save(args.out)
    try:
        LearnedRouter.load(args.out).check_embedder(embedder.name, embedder.dim, args.out)
    except RouterFileError as exc:
        print(f"switchyard: the written file does not load: {exc}", file=sys.stderr)
        return 1
    size = args.out.stat().st_size
    print(
        f"{args.out}: {len(router.models)} models, {len(samples)} prompts, embedding {embedder.name}, "
        f"{size / 1024:.0f} KiB, trained in {time.perf_counter() - started:.1f}s"
    )
    return 0
