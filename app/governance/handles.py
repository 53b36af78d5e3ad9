"""What the governance service hands out: a request's ``max_parallel`` lease and a call's budget ``Hold``;
and the service's configuration."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any, Protocol

from app.domain import Usage
from app.governance.context import request_holds
from app.records import record
from app.state.base import StateStore
from app.state.records import KeyRecord

LEASE_TTL_S = 30.0  # a max_parallel lease expires unless renewed (a dead worker frees it within this)
LEASE_RENEW_S = 10.0


@record(slots=True)
class GovernanceConfig:
    master_key: str
    protect_metrics: bool = False
    key_cache_ttl_s: float = 0.5
    store_grace_s: float = 300.0
    default_max_output_tokens: int = 4096
    reservation_ttl_s: float = 660.0  # longer than any request may run (its deadline) plus a margin
    auth_failures_per_minute: int = 20
    auth_lockout_s: float = 60.0
    metrics_max_key_names: int = 100


class Books(Protocol):
    """The service's side of leases and holds (``Governance``)."""

    async def shielded(self, work: Coroutine[Any, Any, Any]) -> None: ...

    async def settle(self, hold: Hold, cost: float, usage: Usage) -> None: ...


class Lease:
    """A ``max_parallel`` slot held by one request; renewed while it runs, released when it ends."""

    def __init__(self, gov: Books, store: StateStore, key_id: str, lease_id: str) -> None:
        self.gov, self.store, self.key_id, self.lease_id = gov, store, key_id, lease_id
        self._renewal = asyncio.create_task(self._renew(), name="lease-renewal")

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(LEASE_RENEW_S)
            with contextlib.suppress(Exception):
                await self.store.renew_lease(self.key_id, self.lease_id, LEASE_TTL_S)

    async def release(self) -> None:
        """Free the slot; never raises, and completes even if the caller is being cancelled."""
        self._renewal.cancel()
        await self.gov.shielded(self.store.release_lease(self.key_id, self.lease_id))


class Hold:
    """One upstream call's reservation (``reservation_id`` None: the key has no budget, nothing is held).
    ``prompt_cost`` is what the call costs if only its prompt was sent (settled when nobody settles it)."""

    def __init__(
        self,
        gov: Books,
        store: StateStore,
        record: KeyRecord,
        model: str,
        reservation_id: str | None,
        prompt_cost: float = 0.0,
    ) -> None:
        self.gov, self.store, self.record, self.model, self.reservation_id = gov, store, record, model, reservation_id
        self.prompt_cost = prompt_cost
        self.done = False
        holds = request_holds()
        if holds is not None:
            holds.append(self)

    async def settle(self, cost: float | None, usage: Usage | None = None) -> None:
        """Replace the reservation by the call's exact ``cost`` (None: unknown price, counted 0); idempotent,
        never raises, completes even if the caller is being cancelled."""
        if self.done:
            return
        self.done = True
        await self.gov.shielded(self.gov.settle(self, max(cost or 0.0, 0.0), usage or Usage()))
