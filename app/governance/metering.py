"""Budget reservations around every upstream call (the orchestrator's ``CallMeter``), and their settlement.

The orchestrator's ``ModelCaller`` reserves each call's worst case (estimated input tokens plus
``max_tokens`` or ``default_max_output_tokens``, at the model's price, times ``n``) and settles it to the
call's exact cost; a refused reservation is 402. Keys without a budget skip the reservation but are still
settled (spend per key and model, tpm, metrics). Outside a virtual key's request nothing is metered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from app.domain import ChatRequest, Usage
from app.errors import GatewayError
from app.governance.context import current_principal
from app.governance.failover import Settlement, StoreFailover
from app.governance.handles import Hold
from app.governance.ids import new_id
from app.governance.limits import KeyLabels
from app.observability.metrics import record_key_spend
from app.providers.base import ModelTarget
from app.state.base import StateStore
from app.state.records import Admission, KeyRecord

Refuse = Callable[[KeyRecord, Admission], GatewayError]


class BudgetMeter:
    """See the module docstring. ``refuse`` turns a refused reservation into the error the client sees."""

    def __init__(
        self,
        stores: StoreFailover,
        labels: KeyLabels,
        refuse: Refuse,
        *,
        default_max_output_tokens: int,
        reservation_ttl_s: float,
    ) -> None:
        self.stores, self.labels, self.refuse = stores, labels, refuse
        self.default_max_output_tokens, self.reservation_ttl_s = default_max_output_tokens, reservation_ttl_s

    def permits(self, model: str) -> bool:
        principal = current_principal()
        return principal is None or principal.permits(model)

    def worst_case(self, target: ModelTarget, request: ChatRequest | None, input_tokens: int) -> float:
        """The most one call to ``target`` may cost: input estimate plus the output limit, ``n`` times."""
        output = (request.max_tokens if request is not None else None) or self.default_max_output_tokens
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
            return Hold(self, self.stores.store, record, target.name, None, prompt_cost)
        amount, reservation_id, ttl = self.worst_case(target, request, input_tokens), new_id(), self.reservation_ttl_s

        async def run(store: StateStore) -> Admission:
            try:
                return await store.reserve(record.id, reservation_id, amount, ttl)
            except asyncio.CancelledError:  # the reservation may have been made: give it back
                self.stores.spawn(store.settle(record.id, reservation_id, 0.0, target.name, 0))
                raise

        store, admission = await self.stores.either(principal, run)
        if not admission.ok:
            raise self.refuse(record, admission)
        return Hold(self, store, record, target.name, reservation_id, prompt_cost)

    async def settle_leftovers(self, holds: list[Hold]) -> None:
        """At the end of a request: settle the holds nobody settled (a stream never read) to their prompt."""
        for hold in holds:
            if not hold.done:
                await hold.settle(hold.prompt_cost, None)

    async def settle(self, hold: Hold, cost: float, usage: Usage) -> None:
        """Settle ``hold`` to ``cost`` on the store its reservation was made on (``Hold.settle`` calls this)."""
        record = hold.record
        record_key_spend(self.labels(record.name), hold.model, cost, usage.input_tokens, usage.output_tokens)
        tokens = usage.input_tokens + usage.output_tokens
        await self.stores.settle(hold.store, Settlement(record.id, hold.reservation_id, cost, hold.model, tokens))

    async def shielded(self, work: Coroutine[Any, Any, Any]) -> None:
        await self.stores.shielded(work)
