"""Training the learned router (``switchyard router train``) from the operator's data.

Two input formats, told apart by the file name:

- JSONL (``*.jsonl``), one row per answer: ``{"prompt": str, "model": str, "score": 0..1, "cost": USD?}``;
- RouterBench-style CSV (``*.csv``): a ``prompt`` column (plain text, or a Python list of turns as in
  RouterBench), one 0..1 score column per model, and ``<model>|total_cost`` columns that name the models.

Each model gets an L2-regularised logistic regression (Newton steps; soft 0..1 targets are fine) over the
standardised features of ``app.routing.learned``; the regularisation strength is chosen per model on a
held-out fifth of its rows. Pure numpy.
"""

from __future__ import annotations

import ast
import csv
import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.routing.embedding import Embedder
from app.routing.features import Features
from app.routing.learned import LearnedRouter, feature_vector

LAMBDAS = (0.3, 3.0, 30.0, 300.0)
MAX_ANCHORS = 512
_NOT_MODELS = {"", "sample_id", "prompt", "eval_name", "oracle_model_to_route_to", "id"}


class TrainingDataError(ValueError):
    """The training data cannot be read (with the file and row that failed)."""


@dataclass(slots=True)
class Sample:
    prompt: str
    scores: dict[str, float] = field(default_factory=dict)
    costs: dict[str, float] = field(default_factory=dict)


def prompt_text(raw: str) -> str:
    """RouterBench stores prompts as a Python list of turns; anything else is the prompt itself."""
    if raw.startswith("[") and raw.endswith("]"):
        try:
            turns = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            return raw
        if isinstance(turns, list):
            return "\n".join(str(t) for t in turns)
    return raw


def _score(value: Any, where: str) -> float:
    try:
        score = float(value)
    except (TypeError, ValueError):
        raise TrainingDataError(f"{where}: score {value!r} is not a number") from None
    if not 0.0 <= score <= 1.0:
        raise TrainingDataError(f"{where}: score {score} is outside 0..1")
    return score


def read_jsonl(path: Path, samples: dict[str, Sample]) -> None:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise TrainingDataError(f"{where}: not JSON ({exc.msg})") from None
            if not isinstance(row, dict) or not isinstance(row.get("prompt"), str) or not row.get("model"):
                raise TrainingDataError(f"{where}: needs string 'prompt' and 'model' fields")
            sample = samples.setdefault(row["prompt"], Sample(row["prompt"]))
            model = str(row["model"])
            sample.scores[model] = _score(row.get("score"), where)
            if row.get("cost") is not None:
                sample.costs[model] = float(row["cost"])


def read_csv(path: Path, samples: dict[str, Sample]) -> None:
    csv.field_size_limit(1 << 30)
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        if "prompt" not in columns:
            raise TrainingDataError(f"{path}: no 'prompt' column")
        models = [c[: -len("|total_cost")] for c in columns if c.endswith("|total_cost")]
        if not models:
            models = [c for c in columns if c not in _NOT_MODELS and "|" not in c]
        missing = [m for m in models if m not in columns]
        if missing or not models:
            raise TrainingDataError(f"{path}: no score column for {', '.join(missing) or 'any model'}")
        for number, row in enumerate(reader, 2):
            text = prompt_text(row["prompt"] or "")
            if not text:
                continue
            sample = samples.setdefault(text, Sample(text))
            for model in models:
                if row.get(model) in (None, ""):
                    continue  # RouterBench has a few empty cells
                sample.scores[model] = _score(row[model], f"{path}:{number} column {model}")
                cost = row.get(f"{model}|total_cost")
                if cost not in (None, ""):
                    sample.costs[model] = float(cost)


def read_samples(paths: Iterable[Path]) -> list[Sample]:
    samples: dict[str, Sample] = {}
    for path in paths:
        if not path.is_file():
            raise TrainingDataError(f"{path}: no such file")
        if path.suffix.lower() == ".csv":
            read_csv(path, samples)
        elif path.suffix.lower() in (".jsonl", ".json", ".ndjson"):
            read_jsonl(path, samples)
        else:
            raise TrainingDataError(f"{path}: expected a .jsonl or .csv file")
    return [s for s in samples.values() if s.scores]


def _fit_logistic(x: Any, y: Any, lam: float, steps: int = 12) -> Any:
    """L2-regularised logistic regression by Newton's method; ``x`` has a trailing bias column (not
    regularised)."""
    import numpy as np

    w = np.zeros(x.shape[1])
    ridge = np.full(x.shape[1], lam)
    ridge[-1] = 1e-6
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-np.clip(x @ w, -30, 30)))
        gradient = x.T @ (p - y) + ridge * w
        hessian = (x * (p * (1 - p))[:, None]).T @ x + np.diag(ridge)
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if float(np.abs(step).max()) < 1e-6:
            break
    return w


def _log_loss(x: Any, y: Any, w: Any) -> float:
    import numpy as np

    p = np.clip(1.0 / (1.0 + np.exp(-np.clip(x @ w, -30, 30))), 1e-6, 1 - 1e-6)
    return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean())


def _fit_model(x: Any, y: Any, seed: int) -> tuple[Any, float]:
    """The weights on all rows, with the regularisation that did best on a held-out fifth."""
    import numpy as np

    order = np.random.default_rng(seed).permutation(len(y))
    cut = max(1, len(y) // 5)
    held, kept = order[:cut], order[cut:]
    lam = LAMBDAS[-1]
    if len(kept) >= 10 and 0 < y[kept].mean() < 1:
        losses = {lam: _log_loss(x[held], y[held], _fit_logistic(x[kept], y[kept], lam)) for lam in LAMBDAS}
        lam = min(losses, key=lambda k: losses[k])
    return _fit_logistic(x, y, lam), lam


def train(samples: Sequence[Sample], embedder: Embedder, seed: int = 0) -> LearnedRouter:
    """Fit one quality model per model named in ``samples``."""
    import numpy as np

    if not samples:
        raise TrainingDataError("no training rows")
    started = time.perf_counter()
    raw = np.stack([feature_vector(embedder.embed(s.prompt), Features.of_text(s.prompt)) for s in samples])
    mean = raw.mean(axis=0)
    scale = raw.std(axis=0)
    scale[scale < 1e-6] = 1.0
    x = np.hstack([(raw - mean) / scale, np.ones((len(samples), 1))])
    models = sorted({m for s in samples for m in s.scores})
    weights = np.zeros((len(models), x.shape[1]), dtype=np.float64)
    chosen: dict[str, float] = {}
    counts: dict[str, int] = {}
    for i, model in enumerate(models):
        rows = np.array([j for j, s in enumerate(samples) if model in s.scores], dtype=np.int64)
        y = np.array([samples[j].scores[model] for j in rows], dtype=np.float64)
        weights[i], chosen[model] = _fit_model(x[rows], y, seed + i)
        counts[model] = len(rows)
    anchors, center, sims = _support(raw[:, : embedder.dim], seed)
    prior = np.array([np.mean([s.scores[m] for s in samples if m in s.scores]) for m in models], dtype=np.float32)
    log_len = np.log1p([Features.of_text(s.prompt).tokens for s in samples])
    calib = np.array(
        [np.percentile(sims, 2), np.percentile(sims, 25), log_len.mean(), max(log_len.std(), 1e-3)], np.float32
    )
    mean_cost = {m: float(np.mean(costs)) for m in models if (costs := [s.costs[m] for s in samples if m in s.costs])}
    meta = {
        "trained_rows": len(samples),
        "rows_per_model": counts,
        "l2": chosen,
        "train_seconds": round(time.perf_counter() - started, 2),
    }
    return LearnedRouter(
        embedder.name,
        tuple(models),
        weights.astype(np.float32),
        mean.astype(np.float32),
        scale.astype(np.float32),
        mean_cost,
        meta,
        anchors,
        center.astype(np.float32),
        prior,
        calib,
    )


def _support(embeddings: Any, seed: int) -> tuple[Any, Any, Any]:
    """A sample of the training prompts' centred unit embeddings (the anchors), their mean, and how close
    other training prompts are to their nearest anchor (the familiarity scale)."""
    import numpy as np

    center = embeddings.mean(axis=0)
    unit = embeddings - center
    unit /= np.maximum(np.linalg.norm(unit, axis=1, keepdims=True), 1e-9)
    order = np.random.default_rng(seed).permutation(len(unit))
    if len(unit) > 2 * MAX_ANCHORS:
        anchors, probes = unit[order[:MAX_ANCHORS]], unit[order[MAX_ANCHORS : 2 * MAX_ANCHORS]]
        sims = (probes @ anchors.T).max(axis=1)
    else:  # few rows: every row is an anchor; each is probed against the others
        anchors = unit
        pair = unit @ unit.T
        np.fill_diagonal(pair, -1.0)
        sims = pair.max(axis=1) if len(unit) > 1 else np.ones(1)
    return anchors.astype(np.float16), center, sims
