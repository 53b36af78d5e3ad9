"""The real embedding models (from the routing extras, installed in CI by ``.[dev]``), loaded once."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from app.routing.embedding import DEFAULT_MODEL, MULTILINGUAL_MODEL, Embedder, Vector, load_embedder


@dataclass(eq=False)
class CountingEmbedder:
    """A real embedder that counts its calls (to prove what is embedded, and how often)."""

    inner: Embedder
    calls: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dim(self) -> int:
        return self.inner.dim

    def embed(self, text: str) -> Vector:
        self.calls.append(text)
        return self.inner.embed(text)


@pytest.fixture(scope="session")
def static_embedder() -> Embedder:
    return load_embedder(DEFAULT_MODEL)


@pytest.fixture(scope="session")
def use_embedder() -> Embedder:
    return load_embedder(MULTILINGUAL_MODEL, 64)
