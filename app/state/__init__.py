"""Shared state behind one interface (``StateStore``): the embedded SQLite store, or Redis when
``SWITCHYARD_REDIS_URL`` is set. See ``base.py``."""

from __future__ import annotations

from app.settings.settings import Settings
from app.state.base import StateStore, StoreUnavailableError
from app.state.records import Admission, KeyRecord, KeyUsage
from app.state.redis_store import RedisStore
from app.state.sqlite import SqliteStore

__all__ = [
    "Admission",
    "KeyRecord",
    "KeyUsage",
    "RedisStore",
    "SqliteStore",
    "StateStore",
    "StoreUnavailableError",
    "open_store",
]


def open_store(settings: Settings) -> StateStore:
    """The store ``settings`` name (not started): Redis at ``redis_url``, else the SQLite file at
    ``state_path`` (relative to the working directory)."""
    if settings.redis_url:
        return RedisStore(settings.redis_url, timeout_s=settings.redis_timeout_s)
    return SqliteStore(settings.state_path)
