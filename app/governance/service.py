"""The governance service: authentication, admission of requests, budget reservations around every upstream
call, spend, and key management, over a ``StateStore``.

- **Authentication**: the master key (constant-time comparison), or a virtual key looked up by the SHA-256 of
  its secret; lookups are cached for ``key_cache_ttl_s`` (at most 1 s: a revocation is seen everywhere within
  a second; requests that call models are also checked by the store itself at admission, at once).
- **Admission** (``admit``): one atomic store operation per request: revoked/expired key, spent budget, rpm,
  tpm, and a ``max_parallel`` lease (renewed while the request runs, released when it ends however it ends,
  expiring by itself if the worker dies).
- **Calls** (``reserve`` -> ``Hold.settle``): the orchestrator's ``ModelCaller`` reserves each call's worst
  case (estimated input tokens plus ``max_tokens`` or ``default_max_output_tokens``, at the model's price,
  times ``n``) and settles it to the call's exact cost; a refused reservation is 402. Keys without a budget
  skip the reservation but are still settled (spend per key and model, tpm, metrics).
- **Store down**: a store call that fails or times out marks the store down for ``RETRY_S``; meanwhile keys
  validated within ``store_grace_s`` are served with their limits enforced by a private in-memory store
  (per process), their spend is queued and replayed when the store answers again, and a warning is logged
  at most every 30 s. An unknown key then gets 503 ``state_unavailable``. Nothing waits longer than the
  store's own timeout.
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from app.domain import ChatRequest, Usage
from app.errors import (
    AuthenticationError,
    GatewayError,
    StateUnavailableError,
)
from app.governance.admin import KeyAdmin
from app.governance.context import MASTER, Principal, current_principal
from app.governance.handles import LEASE_TTL_S, GovernanceConfig, Hold, Lease
from app.governance.keys import KEY_PREFIX, KeyCreate, KeyUpdate, hash_secret, same_hash
from app.governance.limits import AuthFailures, KeyLabels
from app.governance.master import is_loopback_host, master_key
from app.governance.refusals import auth_error, refusal
from app.observability.metrics import record_key_request, record_key_spend
from app.orchestration.breaker_sync import RateLimitedWarning
from app.providers.base import ModelTarget
from app.records import record
from app.settings.orchestration import OrchestrationConfig
from app.settings.settings import Settings
from app.state import open_store
from app.state.base import StateStore, StoreUnavailableError
from app.state.records import Admission, KeyRecord, KeyUsage
from app.state.sqlite import SqliteStore

log = logging.getLogger("switchyard.governance")
T = TypeVar("T")

RETRY_S = 1.0  # after a failed store call, go straight to local limits for this long
MAX_CACHED_KEYS = 10_000
MAX_PENDING = 100_000  # settlements kept for replay while the store is down


@dataclass(slots=True)
class _Cached:
    record: KeyRecord
    validated_at: float  # monotonic time the store last confirmed the record


@record(slots=True)
class _Pending:
    key_id: str
    reservation_id: str | None
    cost: float
    model: str
    tokens: int


class Governance:
    """See the module docstring. ``local`` is the in-memory fallback store (made if not given)."""

    def __init__(
        self,
        store: StateStore,
        config: GovernanceConfig,
        known_models: Collection[str] = (),
        *,
        local: StateStore | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.store, self.config, self.clock, self.wall = store, config, clock, wall
        self._master_digest = hash_secret(config.master_key)
        self.local: StateStore = local or SqliteStore(":memory:", clock=wall)
        self.admin = KeyAdmin(store, known_models, wall)
        self.failures = AuthFailures(config.auth_failures_per_minute, config.auth_lockout_s, clock=clock)
        self.labels = KeyLabels(config.metrics_max_key_names)
        self.warn = RateLimitedWarning(log)
        self._cache: OrderedDict[str, _Cached] = OrderedDict()
        self._down_until = 0.0
        self._degraded = False
        self._seeded: set[str] = set()
        self._spent: dict[str, float] = {}  # last settled spend seen per key (seeds local limits)
        self._pending: list[_Pending] = []
        self._tasks: set[asyncio.Task[Any]] = set()

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        orchestration: OrchestrationConfig,
        known_models: Collection[str],
        store: StateStore | None = None,
    ) -> Governance | None:
        """The service ``settings`` ask for, over ``store`` (default: the one the settings name); None without
        a master key (no access control)."""
        key = master_key(settings)
        if key is None:
            if settings.auth != "disabled" and settings.host and not is_loopback_host(settings.host):
                log.warning("no master key: anyone who can reach this gateway can use it")
            return None
        if settings.auth == "disabled":
            log.warning("SWITCHYARD_AUTH=disabled is ignored: a master key is set, so keys are required")
        config = GovernanceConfig(
            master_key=key,
            protect_metrics=settings.protect_metrics,
            key_cache_ttl_s=settings.key_cache_ttl_s,
            store_grace_s=settings.store_grace_s,
            default_max_output_tokens=settings.default_max_output_tokens,
            reservation_ttl_s=orchestration.max_request_timeout_s + 60.0,
            auth_failures_per_minute=settings.auth_failures_per_minute,
            auth_lockout_s=settings.auth_lockout_s,
            metrics_max_key_names=settings.metrics_max_key_names,
        )
        return cls(store or open_store(settings), config, known_models)

    # -- lifecycle ----------------------------------------------------------------------------------------

    async def start(self) -> None:
        await self.store.start()
        await self.local.start()
        log.info("access control on: keys in the %s", self.store.description)

    async def aclose(self) -> None:
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=2.0)
        await self.store.aclose()
        await self.local.aclose()

    def spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def shielded(self, work: Coroutine[Any, Any, Any]) -> None:
        """Run ``work`` to its end even if the caller is cancelled meanwhile; log instead of raising."""
        task = asyncio.ensure_future(self._quiet(work))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        await asyncio.shield(task)

    @staticmethod
    async def _quiet(work: Awaitable[Any]) -> None:
        try:
            await work
        except StoreUnavailableError:
            pass
        except Exception as exc:
            log.warning("governance bookkeeping failed: %s", type(exc).__name__, exc_info=exc)

    # -- the shared store, and the local fallback -----------------------------------------------------------

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
                self.config.store_grace_s,
            )
            raise
        if self._degraded:
            self._recovered()
        return result

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
                await self.store.settle(item.key_id, item.reservation_id, item.cost, item.model, item.tokens)
            except StoreUnavailableError:
                self._pending = pending[i:] + self._pending
                return

    def _usable_offline(self, principal: Principal) -> bool:
        return self.clock() - principal.validated_at <= self.config.store_grace_s

    async def _local_for(self, principal: Principal) -> StateStore:
        """The local store, holding ``principal``'s key (and its spend as last seen) once per outage."""
        record = principal.record
        assert record is not None
        if not self._usable_offline(principal):
            raise StateUnavailableError("the key store is unreachable; try again shortly")
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

    # -- authentication -------------------------------------------------------------------------------------

    def is_master(self, secret: str) -> bool:
        return self._is_master_digest(hash_secret(secret))

    def _is_master_digest(self, digest: str) -> bool:
        """Constant-time, and it does not even reveal the length (digests are compared)."""
        return hmac.compare_digest(digest, self._master_digest)

    async def authenticate(self, secret: str) -> Principal:
        """The principal of ``secret``: 401 for an unknown, revoked or expired key."""
        digest = hash_secret(secret)
        if self._is_master_digest(digest):
            return MASTER
        if not secret.startswith(KEY_PREFIX) or len(secret) > 256:
            raise self.auth_error("invalid")
        now = self.clock()
        cached = self._cache.get(digest)
        if cached is not None and now - cached.validated_at < self.config.key_cache_ttl_s:
            record, validated = cached.record, cached.validated_at
        else:
            try:
                found = await self.shared(lambda s: s.find_key(digest))
            except StoreUnavailableError:
                if cached is None or now - cached.validated_at > self.config.store_grace_s:
                    raise StateUnavailableError("the key store is unreachable; try again shortly") from None
                record, validated = cached.record, cached.validated_at
            else:
                if found is None:
                    self._cache.pop(digest, None)
                    raise self.auth_error("invalid") from None
                record, validated = found, now
                self._remember(digest, record, now)
        if not same_hash(record.secret_hash, digest):
            raise self.auth_error("invalid")
        if record.revoked_at is not None:
            raise self.auth_error("revoked")
        if record.is_expired(self.wall()):
            raise self.auth_error("expired")
        return Principal(record, validated)

    def recognises(self, secret: str) -> bool:
        """Whether ``secret`` is the master key or a key this process has seen valid (no store lookup): what
        an address locked out for guessing may still use."""
        return self.is_master(secret) or (len(secret) <= 256 and hash_secret(secret) in self._cache)

    def _remember(self, digest: str, record: KeyRecord, now: float) -> None:
        self._cache[digest] = _Cached(record, now)
        self._cache.move_to_end(digest)
        while len(self._cache) > MAX_CACHED_KEYS:
            self._cache.popitem(last=False)

    def forget(self, key_id: str) -> None:
        """Drop ``key_id`` from this process's cache (after a change through this process)."""
        for digest in [d for d, c in self._cache.items() if c.record.id == key_id]:
            del self._cache[digest]

    @staticmethod
    def auth_error(reason: str) -> AuthenticationError:
        return auth_error(reason)

    # -- admission ------------------------------------------------------------------------------------------

    async def admit(self, principal: Principal) -> Lease | None:
        """Admit one request of a virtual key (rpm, tpm, budget, max_parallel); its lease, if it takes one."""
        record = principal.record
        assert record is not None
        lease_id = _uid() if record.max_parallel is not None else None

        async def run(store: StateStore) -> Admission:
            try:
                return await store.admit(record.id, lease_id, LEASE_TTL_S)
            except asyncio.CancelledError:  # the lease may have been taken: give it back
                if lease_id is not None:
                    self.spawn(self._quiet(store.release_lease(record.id, lease_id)))
                raise

        store = self.store
        try:
            admission = await self.shared(run)
        except StoreUnavailableError:
            store = await self._local_for(principal)
            admission = await run(store)
        label = self.labels(record.name)
        if not admission.ok:
            raise self._refusal(record, admission, label)
        self._spent[record.id] = admission.spent
        record_key_request(label)
        if admission.leased and lease_id is not None:
            return Lease(self, store, record.id, lease_id)
        return None

    def _refusal(self, record: KeyRecord, a: Admission, label: str) -> GatewayError:
        if a.refusal in ("missing", "revoked", "expired"):
            self.forget(record.id)
        return refusal(record, a, label)

    # -- calls: reservations and settlement (the orchestrator's CallMeter) ----------------------------------------

    def permits(self, model: str) -> bool:
        principal = current_principal()
        return principal is None or principal.permits(model)

    def worst_case(self, target: ModelTarget, request: ChatRequest | None, input_tokens: int) -> float:
        """The most one call to ``target`` may cost: input estimate plus the output limit, ``n`` times."""
        output = (request.max_tokens if request is not None else None) or self.config.default_max_output_tokens
        n = max(1, request.n if request is not None else 1)
        return (target.price.cost(input_tokens, output) or 0.0) * n

    async def reserve(self, target: ModelTarget, request: ChatRequest | None, input_tokens: int) -> Hold | None:
        """Reserve one call's worst case for the current key (None outside a virtual key's request);
        402 when the budget is spent."""
        principal = current_principal()
        if principal is None or principal.record is None:
            return None
        record = principal.record
        n = max(1, request.n if request is not None else 1)
        prompt_cost = (target.price.cost(input_tokens, 0) or 0.0) * n
        if record.budget_usd is None:
            return Hold(self, self.store, record, target.name, None, prompt_cost)
        amount, reservation_id = self.worst_case(target, request, input_tokens), _uid()
        ttl = self.config.reservation_ttl_s

        async def run(store: StateStore) -> Admission:
            try:
                return await store.reserve(record.id, reservation_id, amount, ttl)
            except asyncio.CancelledError:
                self.spawn(self._quiet(store.settle(record.id, reservation_id, 0.0, target.name, 0)))
                raise

        store = self.store
        try:
            admission = await self.shared(run)
        except StoreUnavailableError:
            store = await self._local_for(principal)
            admission = await run(store)
        if not admission.ok:
            raise self._refusal(record, admission, self.labels(record.name))
        return Hold(self, store, record, target.name, reservation_id, prompt_cost)

    async def settle_leftovers(self, holds: list[Hold]) -> None:
        """At the end of a request: settle the holds nobody settled (a stream never read) to their prompt."""
        for hold in holds:
            if not hold.done:
                await hold.settle(hold.prompt_cost, None)

    async def settle(self, hold: Hold, cost: float, usage: Usage) -> None:
        record = hold.record
        tokens = usage.input_tokens + usage.output_tokens
        record_key_spend(self.labels(record.name), hold.model, cost, usage.input_tokens, usage.output_tokens)
        if hold.store is self.store:
            try:
                await self.shared(lambda s: s.settle(record.id, hold.reservation_id, cost, hold.model, tokens))
                return
            except StoreUnavailableError:
                self._queue(_Pending(record.id, hold.reservation_id, cost, hold.model, tokens))
                if record.id in self._seeded:  # local limits see it too
                    await self.local.settle(record.id, None, cost, hold.model, tokens)
                return
        self._queue(_Pending(record.id, None, cost, hold.model, tokens))  # the shared store learns it later
        await hold.store.settle(record.id, hold.reservation_id, cost, hold.model, tokens)

    def _queue(self, item: _Pending) -> None:
        if len(self._pending) < MAX_PENDING:
            self._pending.append(item)

    # -- key management ---------------------------------------------------------------------------------------

    async def create_key(self, body: KeyCreate) -> tuple[KeyRecord, str]:
        return await self._manage(lambda: self.admin.create(body))

    async def list_keys(self) -> list[KeyRecord]:
        return await self._manage(self.admin.list)

    async def get_key(self, key_id: str) -> tuple[KeyRecord, KeyUsage]:
        return await self._manage(lambda: self.admin.get(key_id))

    async def update_key(self, key_id: str, body: KeyUpdate) -> KeyRecord:
        self.forget(key_id)
        return await self._manage(lambda: self.admin.update(key_id, body))

    async def revoke_key(self, key_id: str) -> KeyRecord:
        self.forget(key_id)
        return await self._manage(lambda: self.admin.revoke(key_id))

    async def _manage(self, work: Callable[[], Awaitable[T]]) -> T:
        try:
            return await self.shared(lambda _store: work())
        except StoreUnavailableError:
            raise StateUnavailableError("the key store is unreachable; try again shortly") from None


_uid_prefix = os.urandom(8).hex()


def _new_uid_prefix() -> None:
    global _uid_prefix
    _uid_prefix = os.urandom(8).hex()


os.register_at_fork(after_in_child=_new_uid_prefix)  # a forked worker must not repeat its parent's ids
_uid_counter = itertools.count()


def _uid() -> str:
    """An id for a lease or a reservation, unique across processes and replicas (a random
    per-process prefix and a counter: no system call per id, as ``uuid4`` made)."""
    return f"{_uid_prefix}{next(_uid_counter):x}"
