"""Semantic task routing: each task is a handful of example prompts; a request goes to the task whose
examples it is closest to (the router consults them when no task keyword fires, ``app.routing.router``;
with ``combine: sum`` the keyword hits add ``keyword_weight`` each instead).

At startup (``SemanticTasks.build``) every example is embedded once. The vectors are centred on the mean of
all examples (averaged token embeddings share a large common component; removing it is what makes cosine
similarity discriminate) and normalised. A request's task score is the mean similarity of its ``k`` nearest
examples of that task; the best task wins, and below ``floor`` the request is ``conversation``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from app.records import record
from app.routing.embedding import Embedder, Vector
from app.routing.task import DEFAULT_TASK

MAX_KEYWORD_HITS = 5


@record(slots=True)
class Neighbour:
    task: str
    example: str
    score: float


@record(slots=True)
class SemanticVerdict:
    task: str
    score: float  # the winning task's score (before the floor)
    best: str  # the task with the best score, even when under the floor
    scores: Mapping[str, float]
    nearest: tuple[Neighbour, ...]

    @property
    def reason(self) -> str:
        if self.task != self.best:
            return f"semantic: nearest task {self.best} scores {self.score:.2f} < floor"
        top = self.nearest[0] if self.nearest else None
        example = f"; nearest example {top.example[:60]!r} ({top.score:.2f})" if top else ""
        return f"semantic: {self.score:.2f}{example}"


@record(eq=False)
class SemanticTasks:
    """The embedded examples of every task (built once, read-only)."""

    embedder_name: str
    tasks: tuple[str, ...]  # the task of each example row
    examples: tuple[str, ...]
    matrix: Any  # (n_examples, dim) float32, centred and normalised
    center: Any  # (dim,) float32
    floor: float
    k: int = 5
    groups: tuple[tuple[str, Any], ...] = ()  # (task, row indices), in first-seen order

    @property
    def task_names(self) -> tuple[str, ...]:
        return tuple(task for task, _ in self.groups)

    @classmethod
    def build(
        cls, embedder: Embedder, examples: Mapping[str, Sequence[str]], floor: float, k: int = 5
    ) -> SemanticTasks:
        import numpy as np

        tasks = tuple(task for task, texts in examples.items() for _ in texts)
        texts = tuple(text for values in examples.values() for text in values)
        if not texts:
            raise ValueError("semantic task routing needs at least one example prompt")
        raw = np.stack([embedder.embed(text) for text in texts]).astype(np.float32)
        center = raw.mean(axis=0)
        centred = raw - center
        norms = np.linalg.norm(centred, axis=1, keepdims=True)
        matrix = centred / np.maximum(norms, 1e-9)
        groups = tuple(
            (task, np.array([i for i, t in enumerate(tasks) if t == task], dtype=np.int64))
            for task in dict.fromkeys(tasks)
        )
        return cls(embedder.name, tasks, texts, matrix.astype(np.float32), center.astype(np.float32), floor, k, groups)

    def classify(
        self,
        vector: Vector,
        keyword_scores: Mapping[str, int] | None = None,
        keyword_weight: float = 0.0,
        nearest: int = 3,
    ) -> SemanticVerdict:
        """The closest task; ``keyword_scores`` (``detect_task``'s) add ``keyword_weight`` per hit, at most 5."""
        import numpy as np

        query = vector - self.center
        norm = float(np.linalg.norm(query))
        sims = self.matrix @ (query / norm) if norm > 0 else np.zeros(len(self.tasks), dtype=np.float32)
        scores: dict[str, float] = {}
        for task, rows in self.groups:
            top = np.sort(sims[rows])[-self.k :]
            hits = min((keyword_scores or {}).get(task, 0), MAX_KEYWORD_HITS)
            scores[task] = round(float(top.mean()) + keyword_weight * hits, 4)
        best = max(scores, key=lambda t: scores[t])
        score = scores[best]
        task = best if score >= self.floor else DEFAULT_TASK
        order = np.argsort(-sims)[:nearest]
        neighbours = tuple(Neighbour(self.tasks[i], self.examples[i], round(float(sims[i]), 4)) for i in order)
        return SemanticVerdict(task, score, best, scores, neighbours)
