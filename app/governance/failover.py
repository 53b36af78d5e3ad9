"""The shared key store and what governance does while it is down.

A store call that fails or times out marks the store down for ``RETRY_S`` (later calls fail at once instead
of each waiting the store's timeout). Meanwhile keys validated within ``store_grace_s`` are served with their
limits enforced by a private in-memory store (per process, seeded once per outage with the key and its spend
as last seen), their spend is queued and replayed when the store answers again, and a warning is logged at
most every 30 s. The outage's local state is dropped when the store is back.

Also the service's background bookkeeping: work that must finish even if its request is cancelled (a lease
released, a call settled), and the replay.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from app.errors import StateUnavailableError
from app.governance.context import Principal
from app.orchestration.breaker_sync import RateLimitedWarning
from app.records import record
from app.state.base import StateStore, StoreUnavailableError
from app.state.sqlite import SqliteStore

log = logging.getLogger("switchyard.governance")
T = TypeVar("T")

RETRY_S = 1.0  # after a failed store call, go straight to local limits for this long
MAX_PENDING = 100_000  # settlements kept for replay while the store is down


def unreachable() -> StateUnavailableError:
    return StateUnavailableError("the key store is unreachable; try again shortly")


@record(slots=True)
class Settlement:
    """One call's spend, as the shared store is told it (replayed after an outage)."""

    key_id: str
    reservation_id: str | None
    cost: float
    model: str
    tokens: int

    async def apply(self, store: StateStore) -> None:
        await store.settle(self.key_id, self.reservation_id, self.cost, self.model, self.tokens)

    def spend_only(self) -> Settlement:
        """The same spend for a store that holds no reservation of it."""
        return Settlement(self.key_id, None, self.cost, self.model, self.tokens)


class StoreFailover:
    """The shared ``store``, and the ``local`` fallback (made if not given) for an outage."""

    def __init__(
        self,
        store: StateStore,
        *,
        grace_s: float,
        local: StateStore | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.store, self.grace_s, self.clock, self.wall = store, grace_s, clock, wall
        self.local: StateStore = local or SqliteStore(":memory:", clock=wall)
        self.warn = RateLimitedWarning(log)
        self._down_until = 0.0
        self._degraded = False
        self._seeded: set[str] = set()
        self._spent: dict[str, float] = {}  # last spend seen per key (seeds local limits)
        self._pending: list[Settlement] = []
        self._tasks: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        await self.store.start()
        await self.local.start()

    async def aclose(self) -> None:
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=2.0)
        await self.store.aclose()
        await self.local.aclose()

    # -- background bookkeeping -----------------------------------------------------------------------------

    def spawn(self, work: Coroutine[Any, Any, Any]) -> asyncio.Future[None]:
        """Run ``work`` in the background; logged, not raised, if it fails; awaited (briefly) at close."""
        task = asyncio.ensure_future(self._quiet(work))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def shielded(self, work: Coroutine[Any, Any, Any]) -> None:
        """Run ``work`` to its end even if the caller is cancelled meanwhile; log instead of raising."""
        await asyncio.shield(self.spawn(work))

    @staticmethod
    async def _quiet(work: Awaitable[Any]) -> None:
        try:
            await work
        except StoreUnavailableError:
            pass
        except Exception as exc:
            log.warning("governance bookkeeping failed: %s", type(exc).__name__, exc_info=exc)

    # -- the shared store -----------------------------------------------------------------------------------

    async def shared(self, op: Callable[[StateStore], Awaitable[T]]) -> T:
        """``op`` on the shared store; ``StoreUnavailableError`` when it is down (at once if it just was)."""
        if self._down_until and self.clock() < self._down_until:
            raise StoreUnavailableError("store marked down")
        try:
            result = await op(self.store)
        except StoreUnavailableError as exc:
            self._down_until = self.clock() + RETRY_S
            self._degraded = True
            self.warn(
                "key store (%s) unavailable (%s): keys validated in the last %gs are served with local limits",
                self.store.description,
                exc,
                self.grace_s,
            )
            raise
        if self._degraded:
            self._recovered()
        return result

    async def either(self, principal: Principal, op: Callable[[StateStore], Awaitable[T]]) -> tuple[StateStore, T]:
        """``op`` on the shared store, or on the local one while it is down; the store it ran on."""
        try:
            return self.store, await self.shared(op)
        except StoreUnavailableError:
            local = await self._local_for(principal)
            return local, await op(local)

    def saw_spent(self, key_id: str, spent: float) -> None:
        """The key's spend as the store last reported it (what local limits start from in an outage)."""
        self._spent[key_id] = spent

    async def settle(self, store: StateStore, item: Settlement) -> None:
        """Record ``item`` on the ``store`` its reservation was made on; queued for the shared store when
        that is not the one, or when it is down (local limits see it too)."""
        if store is self.store:
            try:
                await self.shared(item.apply)
                return
            except StoreUnavailableError:
                self._queue(item)
                if item.key_id in self._seeded:
                    await item.spend_only().apply(self.local)
                return
        self._queue(item.spend_only())
        await item.apply(store)

    # -- the outage -----------------------------------------------------------------------------------------

    def _queue(self, item: Settlement) -> None:
        if len(self._pending) < MAX_PENDING:
            self._pending.append(item)

    def _recovered(self) -> None:
        log.info("key store (%s) reachable again", self.store.description)
        self._degraded, self._down_until = False, 0.0
        self._seeded.clear()
        self.local = SqliteStore(":memory:", clock=self.wall)  # the outage's local state is dropped
        self.spawn(self._start_local_and_replay(self.local))

    async def _start_local_and_replay(self, local: StateStore) -> None:
        await local.start()
        pending, self._pending = self._pending, []
        for i, item in enumerate(pending):
            try:
                await item.apply(self.store)
            except StoreUnavailableError:
                self._pending = pending[i:] + self._pending
                return

    def usable_offline(self, validated_at: float) -> bool:
        """Whether a key the store confirmed at ``validated_at`` may be served while the store is down."""
        return self.clock() - validated_at <= self.grace_s

    async def _local_for(self, principal: Principal) -> StateStore:
        """The local store, holding ``principal``'s key (and its spend as last seen) once per outage."""
        record = principal.record
        assert record is not None
        if not self.usable_offline(principal.validated_at):
            raise unreachable()
        local = self.local
        await local.start()
        if record.id not in self._seeded:
            existing = await local.get_key(record.id)
            if existing is None:
                await local.create_key(record)
                if spent := self._spent.get(record.id, 0.0):
                    await local.settle(record.id, None, spent, "(before the outage)", 0)
            self._seeded.add(record.id)
        return local
