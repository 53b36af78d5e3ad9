"""Multi-worker metrics: every worker writes its samples under ``PROMETHEUS_MULTIPROC_DIR`` and ``/metrics``
sums them. This module does not import ``prometheus_client``, so the CLI can set the directory up before any
worker imports it (the client picks its storage when it is first imported)."""

from __future__ import annotations

import os
from pathlib import Path

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_dir() -> str | None:
    """The shared metrics directory of a multi-worker server, if one is configured."""
    return os.environ.get(MULTIPROC_ENV) or None


def prepare_multiprocess_dir(default: str | os.PathLike[str]) -> Path:
    """Before starting several workers: make ``PROMETHEUS_MULTIPROC_DIR`` (``default`` when unset) exist and
    be empty of a previous run's files, and export it so that the workers inherit it."""
    path = Path(multiprocess_dir() or default)
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()
    os.environ[MULTIPROC_ENV] = str(path)
    return path
