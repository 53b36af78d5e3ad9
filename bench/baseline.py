"""The ``--baseline-ref`` A/B: a detached git worktree of REF whose ``app`` package a second Switchyard runs.

``python -m bench.run --baseline-ref REF`` checks REF out into ``<work dir>/baseline-src`` (``git worktree add
--detach``), starts ``switchyard-baseline`` (and ``switchyard-baseline-chat``) exactly like ``switchyard`` but
with ``PYTHONPATH`` and the working directory set to that checkout, and removes the worktree at the end (``git
worktree remove --force``, also when the run fails). The working directory matters as much as ``PYTHONPATH``:
``python -m`` and ``python -c`` put the current directory first on ``sys.path``, so a server started from the
repository root would import the working tree's ``app`` whatever ``PYTHONPATH`` says.

The functions that build commands and environments are pure (``tests/bench`` checks them without starting
servers); :func:`check_app_source` runs ``python -c`` with the server's environment and fails unless ``app``
is imported from the expected checkout.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

WORKTREE_DIR = "baseline-src"
IMPORT_PROBE = "import app, sys; sys.stdout.write(app.__file__ or '')"


class BaselineError(RuntimeError):
    """The baseline checkout could not be made, or a server would not import the ``app`` it should."""


@dataclass(frozen=True)
class Baseline:
    """A checked-out baseline: the ref as given, its short commit and the worktree directory."""

    ref: str
    commit: str
    src: Path

    @property
    def label(self) -> str:
        return f"Switchyard @{self.commit}"


def worktree_dir(work: Path) -> Path:
    return work / WORKTREE_DIR


def resolve_cmd(repo: Path, ref: str) -> list[str]:
    """The short commit of ``ref`` (fails on an unknown ref)."""
    return ["git", "-C", str(repo), "rev-parse", "--verify", "--quiet", "--short", f"{ref}^{{commit}}"]


def worktree_add_cmd(repo: Path, dest: Path, ref: str) -> list[str]:
    return ["git", "-C", str(repo), "worktree", "add", "--detach", str(dest), ref]


def worktree_remove_cmd(repo: Path, dest: Path) -> list[str]:
    return ["git", "-C", str(repo), "worktree", "remove", "--force", str(dest)]


def switchyard_launch(src: Path, config: Path, port: int, workers: int) -> tuple[list[str], dict[str, str], Path]:
    """``(cmd, env, cwd)`` of ``switchyard serve`` importing the ``app`` package of the checkout ``src``.

    The same for the working tree (``src`` = the repository root) and a baseline worktree, so both sides of an
    A/B start identically except for the source they import."""
    cmd = [sys.executable, "-m", "app.cli", "serve", "--config", str(config)]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    return cmd, switchyard_env(src), src


def switchyard_env(src: Path) -> dict[str, str]:
    """The environment added to the bench's own for a Switchyard server of the checkout ``src``."""
    return {"SWITCHYARD_LOG_LEVEL": "info", "PYTHONPATH": str(src)}


def import_probe_cmd() -> list[str]:
    return [sys.executable, "-c", IMPORT_PROBE]


def expected_app_file(src: Path) -> Path:
    return (src / "app" / "__init__.py").resolve()


def check_app_source(src: Path, env: dict[str, str], cwd: Path) -> Path:
    """Run :func:`import_probe_cmd` with the server's ``env`` and ``cwd``; return ``app.__file__``.

    Raises :class:`BaselineError` unless it is ``<src>/app/__init__.py``: an A/B whose "before" imports the
    working tree (or an installed copy) would compare a build with itself."""
    out = subprocess.run(
        import_probe_cmd(), env={**os.environ, **env}, cwd=cwd, capture_output=True, text=True, timeout=60
    )
    if out.returncode != 0:
        raise BaselineError(f"`import app` failed with PYTHONPATH={env.get('PYTHONPATH')}:\n{out.stderr[-2000:]}")
    found = Path(out.stdout.strip()).resolve()
    if found != expected_app_file(src):
        raise BaselineError(
            f"the server would import app from {found}, not from {expected_app_file(src)} "
            f"(PYTHONPATH={env.get('PYTHONPATH')}, cwd={cwd})"
        )
    return found


def create(repo: Path, work: Path, ref: str) -> Baseline:
    """``git worktree add --detach <work>/baseline-src REF``; :class:`BaselineError` with git's message."""
    resolved = subprocess.run(resolve_cmd(repo, ref), capture_output=True, text=True, check=False)
    commit = resolved.stdout.strip()
    if resolved.returncode != 0 or not commit:
        raise BaselineError(f"--baseline-ref {ref!r}: not a commit in {repo}")
    dest = worktree_dir(work)
    added = subprocess.run(worktree_add_cmd(repo, dest, ref), capture_output=True, text=True, check=False)
    if added.returncode != 0:
        raise BaselineError(f"git worktree add {ref} failed:\n{added.stderr.strip()}")
    return Baseline(ref, commit, dest)


def remove(repo: Path, dest: Path) -> bool:
    """``git worktree remove --force``, then ``git worktree prune`` if the directory is already gone."""
    removed = subprocess.run(worktree_remove_cmd(repo, dest), capture_output=True, text=True, check=False)
    if removed.returncode == 0:
        return True
    if not dest.exists():
        subprocess.run(["git", "-C", str(repo), "worktree", "prune"], capture_output=True, check=False)
        return True
    print(f"could not remove the baseline worktree {dest}: {removed.stderr.strip()}", file=sys.stderr)
    return False


@contextlib.contextmanager
def worktree(repo: Path, work: Path, ref: str | None) -> Iterator[Baseline | None]:
    """The baseline checkout for the duration of the block (``None`` without a ref); always removed."""
    if ref is None:
        yield None
        return
    dest = worktree_dir(work)
    try:
        yield create(repo, work, ref)
    finally:
        if dest.exists():
            remove(repo, dest)
