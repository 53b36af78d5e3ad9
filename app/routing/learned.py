"""The learned quality-cost router: a trained file predicts each model's quality for a prompt, and the
plan starts at the cheapest candidate whose predicted quality is within ``quality_tolerance`` of the best.

The model is one L2-regularised logistic regression per model over the prompt's embedding and cheap
features (log length, the complexity signals of ``app.routing.signals``), standardised with the training
set's statistics. Where a prompt is unlike the training data (its embedding far from every sampled training
prompt) the prediction leans on a length prior instead (each model's mean score, the strong models' lead
widening with length), so that on unlike traffic the router ranks prompts as route-by-length does.

The file is a ``.npz`` (no pickles): ``meta`` (JSON: format, embedding model, model names, feature names,
training facts), ``weights`` (models x features + 1), ``mean``, ``scale``, and for the familiarity and the
length prior ``anchors``, ``center``, ``prior`` and ``calib``. It is written by ``switchyard router train``
(``app.routing.training``) and loaded once at startup.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import field, replace
from pathlib import Path
from typing import Any

from app.records import record
from app.routing.embedding import Vector
from app.routing.features import Features
from app.routing.signals import complexity_signals
from app.settings.routing import ComplexityConfig

FORMAT = "switchyard-learned-router/1"
CHEAP_FEATURES = (
    "log_tokens",
    "length",
    "reasoning",
    "questions",
    "steps",
    "constraints",
    "math",
    "code_work",
    "code_exercise",
    "has_code",
)
_DEFAULT_COMPLEXITY = ComplexityConfig()
LENGTH_PRIOR_SLOPE = 0.5  # per standard deviation of log length
HEAD_CHARS = 600  # the keyword and signal scans of the embedding routers read this much of a prompt


class RouterFileError(Exception):
    """The trained router file is missing, unreadable or does not fit the configured embedding."""


def head(features: Features, chars: int = HEAD_CHARS) -> Features:
    """The features with the text cut to its head (length and code presence stay the whole prompt's):
    keyword and signal scans cost in proportion to the text, and the instruction is usually at the top."""
    return features if len(features.text) <= chars else replace(features, text=features.text[:chars])


def cheap_features(features: Features) -> list[float]:
    """The non-embedding features, in ``CHEAP_FEATURES`` order (fixed thresholds: a file stays valid when
    the operator changes ``routing.complexity``); the signals are read from the head of the prompt."""
    signals = complexity_signals(head(features), _DEFAULT_COMPLEXITY).values
    values = [math.log1p(features.tokens)]
    values += [float(signals[name]) for name in CHEAP_FEATURES[1:-1]]
    values.append(1.0 if features.code else 0.0)
    return values


def feature_vector(embedding: Vector, features: Features) -> Any:
    import numpy as np

    return np.concatenate([np.asarray(embedding, dtype=np.float32), np.asarray(cheap_features(features), np.float32)])


@record(slots=True)
class Prediction:
    """Predicted quality per data model name, and the choice among the catalogue's candidates."""

    quality: Mapping[str, float]
    best: float
    eligible: tuple[str, ...]  # catalogue names within tolerance, cheapest first
    costs: Mapping[str, float]  # catalogue name -> estimated cost used for the choice


@record(eq=False)
class LearnedRouter:
    embedding_model: str
    models: tuple[str, ...]  # the data's model names, one row of ``weights`` each
    weights: Any  # (n_models, n_features + 1) float32; the last column is the bias
    mean: Any  # (n_features,) float32
    scale: Any  # (n_features,) float32
    mean_cost: Mapping[str, float] = field(default_factory=dict)  # data model -> mean USD per prompt
    meta: Mapping[str, Any] = field(default_factory=dict)
    anchors: Any = None  # (n, dim) float16: training prompts' centred unit embeddings (a sample)
    center: Any = None  # (dim,) float32: the training embeddings' mean
    prior: Any = None  # (n_models,) float32: each model's mean training score
    calib: Any = None  # (4,) float32: familiarity similarity low/high, log-length mean/std

    def familiarity(self, embedding: Vector) -> float:
        """0 (unlike any training prompt) .. 1 (as close as a typical training prompt is to the others)."""
        import numpy as np

        query = np.asarray(embedding, dtype=np.float32) - self.center
        norm = float(np.linalg.norm(query))
        if norm == 0:
            return 0.0
        nearest = float((self.anchors @ (query / norm).astype(np.float16)).max())
        low, high = float(self.calib[0]), float(self.calib[1])
        return min(max((nearest - low) / max(high - low, 1e-6), 0.0), 1.0)

    def length_prior(self, features: Features) -> Any:
        """Each model's mean score, the gaps to the average model (in logits) widened for long prompts and
        narrowed for short ones: ranking prompts by it is route-by-length, where the data is no guide."""
        import numpy as np

        z = (math.log1p(features.tokens) - float(self.calib[2])) / max(float(self.calib[3]), 1e-6)
        p = np.clip(self.prior.astype(np.float64), 0.01, 0.99)
        logit = np.log(p / (1 - p))
        # in logit space: the strong models rise and the weak ones fall with length, strictly, without ties
        shifted = logit + LENGTH_PRIOR_SLOPE * (logit - logit.mean()) * min(max(z, -20.0), 20.0)
        return 1.0 / (1.0 + np.exp(-shifted))

    def estimate(self, embedding: Vector, features: Features) -> tuple[dict[str, float], float]:
        """Predicted quality of every model and the prompt's familiarity: the trained model's prediction
        where the prompt is like the training data, the length prior where it is not, blended between."""
        import numpy as np

        x = (feature_vector(embedding, features) - self.mean) / self.scale
        logits = self.weights[:, :-1] @ x + self.weights[:, -1]
        learned = 1.0 / (1.0 + np.exp(-np.clip(logits, -30, 30)))
        weight = self.familiarity(embedding)
        quality = weight * learned + (1.0 - weight) * self.length_prior(features)
        return {m: round(float(q), 4) for m, q in zip(self.models, quality, strict=True)}, round(weight, 4)

    @property
    def dim(self) -> int:
        return int(self.mean.shape[0]) - len(CHEAP_FEATURES)

    def predict(self, embedding: Vector, features: Features) -> dict[str, float]:
        """Predicted quality (0..1) of every model the file knows."""
        return self.estimate(embedding, features)[0]

    def save(self, path: Path) -> None:
        import numpy as np

        meta = {
            **self.meta,
            "format": FORMAT,
            "embedding_model": self.embedding_model,
            "models": list(self.models),
            "features": ["embedding"] * self.dim + list(CHEAP_FEATURES),
            "mean_cost": dict(self.mean_cost),
        }
        with path.open("wb") as handle:
            np.savez_compressed(
                handle,
                meta=np.array(json.dumps(meta)),
                weights=self.weights.astype(np.float32),
                mean=self.mean.astype(np.float32),
                scale=self.scale.astype(np.float32),
                anchors=self.anchors.astype(np.float16),
                center=self.center.astype(np.float32),
                prior=self.prior.astype(np.float32),
                calib=self.calib.astype(np.float32),
            )

    @classmethod
    def load(cls, path: Path) -> LearnedRouter:
        import numpy as np

        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                weights, mean, scale = data["weights"], data["mean"], data["scale"]
                anchors, center, prior, calib = data["anchors"], data["center"], data["prior"], data["calib"]
        except FileNotFoundError:
            raise RouterFileError(f"{path}: no such file (train one with `switchyard router train`)") from None
        except (OSError, ValueError, KeyError) as exc:
            raise RouterFileError(f"{path}: not a trained router file ({type(exc).__name__}: {exc})") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise RouterFileError(f"{path}: unknown format {meta.get('format') if isinstance(meta, dict) else None!r}")
        models = tuple(str(m) for m in meta.get("models", ()))
        n_features = mean.shape[0] if mean.ndim == 1 else -1
        dim = n_features - len(CHEAP_FEATURES)
        shapes_ok = weights.shape == (len(models), n_features + 1) and scale.shape == mean.shape
        support_ok = anchors.ndim == 2 and anchors.shape[1] == dim and center.shape == (dim,)
        if not models or not shapes_ok or not support_ok or prior.shape != (len(models),) or calib.shape != (4,):
            raise RouterFileError(f"{path}: inconsistent shapes (weights {weights.shape}, mean {mean.shape})")
        finite = all(np.isfinite(a).all() for a in (weights, mean, anchors, center, prior, calib))
        if not finite or not (scale > 0).all():
            raise RouterFileError(f"{path}: non-finite weights or non-positive scales")
        costs = {str(k): float(v) for k, v in dict(meta.get("mean_cost", {})).items()}
        return cls(
            str(meta.get("embedding_model")), models, weights, mean, scale, costs, meta, anchors, center, prior, calib
        )

    def check_embedder(self, name: str | None, dim: int | None, path: Path) -> None:
        if name != self.embedding_model or dim != self.dim:
            raise RouterFileError(
                f"{path} was trained on embedding model {self.embedding_model!r} ({self.dim} dimensions) but "
                f"routing.embedding gives {name or 'none'!r}" + (f" ({dim} dimensions)" if dim else "")
            )


def choose(
    quality: Mapping[str, float],
    candidates: Mapping[str, str],
    costs: Mapping[str, float],
    tolerance: float,
) -> Prediction:
    """``candidates`` maps catalogue names to data model names; ``costs`` the catalogue names' estimated
    costs. The eligible models are those within ``tolerance`` of the best candidate, cheapest first."""
    scored = {name: quality[data] for name, data in candidates.items() if data in quality}
    best = max(scored.values())
    eligible = [n for n, q in scored.items() if q >= best - tolerance - 1e-12]
    eligible.sort(key=lambda n: (costs.get(n, math.inf), -scored[n], n))
    return Prediction(dict(quality), best, tuple(eligible), {n: costs[n] for n in scored if n in costs})


def rank(names: Sequence[str], quality: Mapping[str, float]) -> list[str]:
    return sorted(names, key=lambda n: -quality.get(n, 0.0))
