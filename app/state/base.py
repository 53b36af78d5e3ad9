"""The one interface of Switchyard's shared state, implemented by the embedded store (SQLite, ``sqlite.py``)
and the Redis store (``redis.py``).

Every operation that decides something (a rate window, a lease, a budget reservation) is one atomic step in
the store: a ``BEGIN IMMEDIATE`` transaction in SQLite, one Lua script in Redis. Nothing reads a counter,
decides in Python and writes it back, so any number of worker processes and replicas share exact limits.

Governance operations (all of a key's state is addressed by the key's id):

- ``admit``: one request of a key. Refuses a missing, revoked or expired key, a spent budget, a full rpm or
  tpm window, or ``max_parallel`` leases in use; otherwise counts the request in the rpm window and takes a
  lease (``lease_id``) that expires after ``lease_ttl_s`` unless released first.
- ``reserve``: hold ``amount`` USD of the key's budget for one upstream call, while ``spent + reserved`` is
  below the budget (so the budget is overspent by at most one reservation); expires after ``ttl_s``.
- ``settle``: drop the reservation and add the call's exact cost (per key and per model) and its tokens
  (tpm window).

Besides, a namespaced key/value store with expiry (``kv_*``, listed by ``kv_scan``) for state that is not
governance (stored responses, feedback...). Stores raise ``StoreUnavailableError`` when they cannot answer in time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from app.state.records import Admission, KeyRecord, KeyUsage


class StoreUnavailableError(Exception):
    """The store did not answer (connection refused, timeout, database locked for too long)."""


class StateStore(Protocol):
    kind: str  # "sqlite" | "redis"
    description: str  # where it lives, for logs (never credentials)

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...

    # -- keys --------------------------------------------------------------------------------------------

    async def create_key(self, record: KeyRecord) -> None: ...

    async def get_key(self, key_id: str) -> KeyRecord | None: ...

    async def find_key(self, secret_hash: str) -> KeyRecord | None: ...

    async def list_keys(self) -> list[KeyRecord]: ...

    async def update_key(self, key_id: str, changes: dict[str, Any]) -> KeyRecord | None:
        """Apply field ``changes`` atomically (see ``KeyRecord.with_changes``); None for an unknown id."""
        ...

    # -- governance --------------------------------------------------------------------------------------

    async def admit(self, key_id: str, lease_id: str | None, lease_ttl_s: float) -> Admission: ...

    async def release_lease(self, key_id: str, lease_id: str) -> None: ...

    async def renew_lease(self, key_id: str, lease_id: str, ttl_s: float) -> None: ...

    async def reserve(self, key_id: str, reservation_id: str, amount: float, ttl_s: float) -> Admission: ...

    async def settle(self, key_id: str, reservation_id: str | None, cost: float, model: str, tokens: int) -> None: ...

    async def usage(self, key_id: str) -> KeyUsage: ...

    # -- namespaced key/value with expiry -----------------------------------------------------------------

    async def kv_get(self, namespace: str, key: str) -> bytes | None: ...

    async def kv_set(self, namespace: str, key: str, value: bytes, ttl_s: float | None = None) -> None: ...

    async def kv_set_many(self, namespace: str, items: Sequence[tuple[str, bytes]], ttl_s: float | None = None) -> None:
        """``kv_set`` of every ``(key, value)`` in one round trip (one transaction, one pipeline)."""
        ...

    async def kv_delete(self, namespace: str, key: str) -> bool: ...

    async def kv_scan(self, namespace: str, limit: int | None = None) -> list[tuple[str, bytes]]:
        """The live ``(key, value)`` pairs of ``namespace`` (at most ``limit``; in no guaranteed order)."""
        ...
