"""Stored responses, kept in the shared state store (``app.state``: embedded SQLite by default, Redis when
configured, so every worker and replica sees them) under the ``responses`` namespace, for
``SWITCHYARD_RESPONSES_TTL_S`` seconds.

A record is the response object as the client got it, the virtual key that made it (other keys do not see
it; the master key sees all), this turn's input items (``input_items``) and the
conversation so far in Responses item form (``history``: the earlier turns, this input, this output with
every reasoning signature), which is what ``previous_response_id`` continues on any provider. Instructions
are not part of the history (as in OpenAI's API, a continuation states its own).

The store is the gateway's shared one (``Gateway.state_store``: opened on first use, so no file is made
by a gateway that never stores a response).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import orjson

from app.errors import InvalidRequestError, StateUnavailableError
from app.governance.context import current_principal
from app.records import record
from app.state.base import StateStore, StoreUnavailableError

NAMESPACE = "responses"
T = TypeVar("T")


class ResponseNotFoundError(InvalidRequestError):
    """No stored response with that id (never stored, ``store: false``, deleted or expired)."""

    status_code = 404


def not_found(response_id: str, param: str | None = None) -> ResponseNotFoundError:
    return ResponseNotFoundError(f"Response with id '{response_id}' not found.", param=param, code="not_found")


@record(slots=True)
class StoredResponse:
    response: dict[str, Any]
    input_items: list[dict[str, Any]]
    history: list[dict[str, Any]]
    owner: str | None = None  # the virtual key that made it (None: the master key, or no access control)

    def to_json(self) -> bytes:
        record = {"response": self.response, "input_items": self.input_items, "history": self.history}
        return orjson.dumps({**record, "owner": self.owner})

    @classmethod
    def from_json(cls, raw: bytes) -> StoredResponse:
        data = orjson.loads(raw)
        return cls(data["response"], data["input_items"], data["history"], data.get("owner"))


def current_owner() -> str | None:
    """The virtual key of the request (None for the master key or without access control)."""
    principal = current_principal()
    return principal.record.id if principal is not None and principal.record is not None else None


def visible(record: StoredResponse) -> bool:
    """A virtual key sees only its own responses; the master key (and a gateway without keys) sees all."""
    owner = current_owner()
    return owner is None or record.owner == owner


class ResponseStore:
    """Stored responses over a ``StateStore``'s namespaced key/value API; ``opener`` gives the started store
    (``Gateway.state_store``)."""

    def __init__(self, opener: Callable[[], Awaitable[StateStore]], ttl_s: float) -> None:
        self._opener, self.ttl_s = opener, ttl_s

    async def _store(self) -> StateStore:
        try:
            return await self._opener()
        except StoreUnavailableError:
            raise StateUnavailableError("the response store cannot be reached; try again") from None

    async def save(self, response_id: str, record: StoredResponse) -> None:
        store = await self._store()
        await _guard(store.kv_set(NAMESPACE, response_id, record.to_json(), self.ttl_s))

    async def get(self, response_id: str, param: str | None = None) -> StoredResponse:
        """The stored response; 404 (OpenAI's error shape) when there is none."""
        store = await self._store()
        raw = await _guard(store.kv_get(NAMESPACE, response_id))
        record = StoredResponse.from_json(raw) if raw is not None else None
        if record is None or not visible(record):
            raise not_found(response_id, param)
        return record

    async def delete(self, response_id: str) -> None:
        await self.get(response_id)  # someone else's is not found either
        store = await self._store()
        if not await _guard(store.kv_delete(NAMESPACE, response_id)):
            raise not_found(response_id)


async def _guard(work: Awaitable[T]) -> T:
    try:
        return await work
    except StoreUnavailableError:
        raise StateUnavailableError("the response store cannot be reached; try again") from None
