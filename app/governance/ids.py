"""Ids for leases and reservations, unique across processes and replicas: a random per-process prefix and a
counter (no system call per id, as ``uuid4`` made)."""

from __future__ import annotations

import itertools
import os

_prefix = os.urandom(8).hex()
_counter = itertools.count()


def _new_prefix() -> None:
    global _prefix
    _prefix = os.urandom(8).hex()


os.register_at_fork(after_in_child=_new_prefix)  # a forked worker must not repeat its parent's ids


def new_id() -> str:
    return f"{_prefix}{next(_counter):x}"
