"""Managing virtual keys on a store: create, list, show, update, revoke. Shared by the ``/v1/keys`` routes
(through ``Governance``) and the ``switchyard keys`` command (directly on the store)."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection

from app.errors import InvalidRequestError, KeyNotFoundError
from app.governance.keys import KeyCreate, KeyUpdate, new_key_id, new_secret
from app.state.base import StateStore
from app.state.records import KeyRecord, KeyUsage


def check_models(models: list[str] | None, known: Collection[str]) -> None:
    """400 naming the first model that is not in the catalogue."""
    for name in models or ():
        if name not in known:
            raise InvalidRequestError(
                f"models: {name!r} is not a catalogue model ({', '.join(sorted(known)) or 'none'})",
                param="models",
                code="invalid_value",
            )


class KeyAdmin:
    """Key management on ``store``; ``known_models`` is the catalogue (for ``models``)."""

    def __init__(self, store: StateStore, known_models: Collection[str], clock: Callable[[], float] = time.time):
        self.store, self.known_models, self.clock = store, frozenset(known_models), clock

    async def create(self, body: KeyCreate) -> tuple[KeyRecord, str]:
        """The new key and its secret (shown once, stored only as a hash)."""
        check_models(body.models, self.known_models)
        secret = new_secret()
        record = body.record(new_key_id(), secret, self.clock())
        await self.store.create_key(record)
        return record, secret

    async def list(self) -> list[KeyRecord]:
        return await self.store.list_keys()

    async def get(self, key_id: str) -> tuple[KeyRecord, KeyUsage]:
        record = await self.store.get_key(key_id)
        if record is None:
            raise _not_found(key_id)
        return record, await self.store.usage(key_id)

    async def update(self, key_id: str, body: KeyUpdate) -> KeyRecord:
        check_models(body.models, self.known_models)
        record = await self.store.update_key(key_id, body.changes())
        if record is None:
            raise _not_found(key_id)
        return record

    async def revoke(self, key_id: str) -> KeyRecord:
        """Revoke the key (idempotent: a revoked key keeps its first revocation time)."""
        current = await self.store.get_key(key_id)
        if current is None:
            raise _not_found(key_id)
        if current.revoked_at is not None:
            return current
        record = await self.store.update_key(key_id, {"revoked_at": self.clock()})
        if record is None:
            raise _not_found(key_id)
        return record


def _not_found(key_id: str) -> KeyNotFoundError:
    return KeyNotFoundError("no virtual key with this id", param="id")
