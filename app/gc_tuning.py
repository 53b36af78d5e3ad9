"""Garbage-collector tuning of a serving process (measured with ``bench/``, see bench/results/PROFILE.md).

A gateway process holds about a million long-lived objects once started (FastAPI, pydantic schemas, the
vendor SDKs' types, the catalogue). CPython's full (generation 2) collection walks all of them: 130-170 ms
with the world stopped, every few thousand requests, which was the p99 at 500 requests/s. ``gc.freeze()``
after startup moves them to the permanent generation, so later full collections walk only what requests
allocated (about 4 ms).

On for ``switchyard serve`` (which sets ``SWITCHYARD_GC_FREEZE=true`` for its workers), off by default for
an app built in-process (tests build many apps; frozen cycles are never collected). Set the variable for
``uvicorn app.main:app``.
"""

from __future__ import annotations

import gc


def freeze_startup_heap() -> None:
    """Collect once, then exclude every surviving object from future collections."""
    gc.collect()
    gc.freeze()
