"""The governance service: what the gateway, its middleware and its orchestrator reach when a master key is
configured. It puts together, over one ``StateStore``:

- **authentication** (``authentication.py``): the master key or a virtual key, cached briefly;
- **admission** (``admit``, here): one atomic store operation per request: revoked/expired key, spent
  budget, rpm, tpm, and a ``max_parallel`` lease (renewed while the request runs, released when it ends
  however it ends, expiring by itself if the worker dies);
- **calls** (``metering.py``): a budget reservation around every upstream call, settled to its exact cost;
- **store down** (``failover.py``): keys validated within ``store_grace_s`` are served with local limits,
  their spend replayed later; an unknown key then gets 503 ``state_unavailable``. Nothing waits longer than
  the store's own timeout;
- **key management** (``admin.py``), for the master key.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Coroutine
from typing import Any, TypeVar

from app.domain import ChatRequest, Usage
from app.errors import AuthenticationError, GatewayError
from app.governance.admin import KeyAdmin
from app.governance.authentication import Authenticator
from app.governance.context import Principal
from app.governance.failover import StoreFailover, unreachable
from app.governance.handles import LEASE_TTL_S, GovernanceConfig, Hold, Lease
from app.governance.ids import new_id
from app.governance.keys import KeyCreate, KeyUpdate
from app.governance.limits import AuthFailures, KeyLabels
from app.governance.master import is_loopback_host, master_key
from app.governance.metering import BudgetMeter
from app.governance.refusals import auth_error, refusal
from app.observability.metrics import record_key_request
from app.providers.base import ModelTarget
from app.settings.orchestration import OrchestrationConfig
from app.settings.settings import Settings
from app.state import open_store
from app.state.base import StateStore, StoreUnavailableError
from app.state.records import Admission, KeyRecord, KeyUsage

log = logging.getLogger("switchyard.governance")
T = TypeVar("T")

__all__ = ["Governance", "GovernanceConfig", "Hold", "Lease"]


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
        self.config, self.clock, self.wall = config, clock, wall
        self.stores = StoreFailover(store, grace_s=config.store_grace_s, local=local, clock=clock, wall=wall)
        self.auth = Authenticator(self.stores, config.master_key, config.key_cache_ttl_s)
        self.labels = KeyLabels(config.metrics_max_key_names)
        self.meter = BudgetMeter(
            self.stores,
            self.labels,
            self._refusal,
            default_max_output_tokens=config.default_max_output_tokens,
            reservation_ttl_s=config.reservation_ttl_s,
        )
        self.admin = KeyAdmin(store, known_models, wall)
        self.failures = AuthFailures(config.auth_failures_per_minute, config.auth_lockout_s, clock=clock)

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

    async def start(self) -> None:
        await self.stores.start()
        log.info("access control on: keys in the %s", self.stores.store.description)

    async def aclose(self) -> None:
        await self.stores.aclose()

    async def shielded(self, work: Coroutine[Any, Any, Any]) -> None:
        """Run ``work`` to its end even if the caller is cancelled meanwhile; log instead of raising."""
        await self.stores.shielded(work)

    # -- authentication -------------------------------------------------------------------------------------

    async def authenticate(self, secret: str) -> Principal:
        """The principal of ``secret``: 401 for an unknown, revoked or expired key."""
        return await self.auth.authenticate(secret)

    def is_master(self, secret: str) -> bool:
        return self.auth.is_master(secret)

    def recognises(self, secret: str) -> bool:
        """Whether ``secret`` is the master key or a key seen valid here (what a locked-out address may use)."""
        return self.auth.recognises(secret)

    @staticmethod
    def auth_error(reason: str) -> AuthenticationError:
        return auth_error(reason)

    # -- admission ------------------------------------------------------------------------------------------

    async def admit(self, principal: Principal) -> Lease | None:
        """Admit one request of a virtual key (rpm, tpm, budget, max_parallel); its lease, if it takes one."""
        record = principal.record
        assert record is not None
        lease_id = new_id() if record.max_parallel is not None else None

        async def run(store: StateStore) -> Admission:
            try:
                return await store.admit(record.id, lease_id, LEASE_TTL_S)
            except asyncio.CancelledError:  # the lease may have been taken: give it back
                if lease_id is not None:
                    self.stores.spawn(store.release_lease(record.id, lease_id))
                raise

        store, admission = await self.stores.either(principal, run)
        if not admission.ok:
            raise self._refusal(record, admission)
        self.stores.saw_spent(record.id, admission.spent)
        record_key_request(self.labels(record.name))
        if admission.leased and lease_id is not None:
            return Lease(self, store, record.id, lease_id)
        return None

    def _refusal(self, record: KeyRecord, admission: Admission) -> GatewayError:
        if admission.refusal in ("missing", "revoked", "expired"):
            self.auth.forget(record.id)
        return refusal(record, admission, self.labels(record.name))

    # -- calls (the orchestrator's CallMeter) ---------------------------------------------------------------

    def permits(self, model: str) -> bool:
        return self.meter.permits(model)

    def worst_case(self, target: ModelTarget, request: ChatRequest | None, input_tokens: int) -> float:
        return self.meter.worst_case(target, request, input_tokens)

    async def reserve(self, target: ModelTarget, request: ChatRequest | None, input_tokens: int) -> Hold | None:
        return await self.meter.reserve(target, request, input_tokens)

    async def settle_leftovers(self, holds: list[Hold]) -> None:
        await self.meter.settle_leftovers(holds)

    async def settle(self, hold: Hold, cost: float, usage: Usage) -> None:
        await self.meter.settle(hold, cost, usage)

    # -- key management -------------------------------------------------------------------------------------

    async def create_key(self, body: KeyCreate) -> tuple[KeyRecord, str]:
        return await self._manage(lambda: self.admin.create(body))

    async def list_keys(self) -> list[KeyRecord]:
        return await self._manage(self.admin.list)

    async def get_key(self, key_id: str) -> tuple[KeyRecord, KeyUsage]:
        return await self._manage(lambda: self.admin.get(key_id))

    async def update_key(self, key_id: str, body: KeyUpdate) -> KeyRecord:
        self.auth.forget(key_id)
        return await self._manage(lambda: self.admin.update(key_id, body))

    async def revoke_key(self, key_id: str) -> KeyRecord:
        self.auth.forget(key_id)
        return await self._manage(lambda: self.admin.revoke(key_id))

    async def _manage(self, work: Callable[[], Awaitable[T]]) -> T:
        try:
            return await self.stores.shared(lambda _store: work())
        except StoreUnavailableError:
            raise unreachable() from None
