"""Feedback on routing decisions, kept in the shared state store (``kv_*``, SQLite or Redis).

When ``routing.feedback.enabled``, the gateway records every answered request's decision under its request
id (namespace ``routing-decision``): strategy, reason, the planned first model, the model that answered,
the task or predicted qualities, the prompt's token estimate, and the prompt itself only with
``routing.feedback.keep_prompts``. ``POST /v1/feedback`` adds ``{score, comment}`` to that record
(namespace ``routing-feedback``); ``switchyard router train --from-feedback`` exports those rows
(``export_rows``, through the store's ``kv_scan``) as training data ``{prompt, model, score}``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from app.routing.base import RouteDecision
from app.settings.routing import FeedbackConfig
from app.state.base import StateStore, StoreUnavailableError

log = logging.getLogger("switchyard.routing")
DECISIONS = "routing-decision"
FEEDBACK = "routing-feedback"
MISS_RETRIES, MISS_RETRY_S = 2, 0.05
_DETAIL_KEYS = ("task", "level", "predicted_quality", "quality_tolerance", "rule", "detector")


def decision_record(decision: RouteDecision, model: str, tokens: int, prompt: str | None) -> dict[str, Any]:
    record: dict[str, Any] = {
        "strategy": decision.strategy,
        "reason": decision.reason,
        "planned": decision.model,
        "model": model,
        "tokens": tokens,
        "details": {k: decision.details[k] for k in _DETAIL_KEYS if k in decision.details},
    }
    if prompt is not None:
        record["prompt"] = prompt
    return record


class FeedbackLog:
    """Writes decision records off the response path and adds feedback to them."""

    def __init__(self, store: Callable[[], Awaitable[StateStore]], config: FeedbackConfig) -> None:
        self._store, self.config = store, config
        self._tasks: set[asyncio.Task[None]] = set()

    def record(self, request_id: str, record: dict[str, Any]) -> None:
        """Store ``record`` for ``request_id`` in the background (a store failure is logged, not raised)."""
        task = asyncio.get_running_loop().create_task(self._write(request_id, record))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _write(self, request_id: str, record: dict[str, Any]) -> None:
        try:
            store = await self._store()
            await store.kv_set(DECISIONS, request_id, json.dumps(record).encode(), self.config.ttl_s)
        except (StoreUnavailableError, OSError) as exc:
            log.warning("routing decision of %s not recorded: %s", request_id, type(exc).__name__)

    async def drain(self) -> None:
        """Wait for the pending writes (at shutdown, and in tests)."""
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def add(self, request_id: str, score: float, comment: str | None) -> dict[str, Any] | None:
        """Attach feedback to the request's decision; None when no decision is recorded under that id."""
        await self.drain()  # a decision written a moment ago by this process is there
        store = await self._store()
        raw = await store.kv_get(DECISIONS, request_id)
        for _ in range(MISS_RETRIES):  # another worker may still be writing a decision it answered a moment ago
            if raw is not None:
                break
            await asyncio.sleep(MISS_RETRY_S)
            raw = await store.kv_get(DECISIONS, request_id)
        if raw is None:
            return None
        row = {**json.loads(raw), "request_id": request_id, "score": score, "at": round(time.time(), 3)}
        if comment:
            row["comment"] = comment
        await store.kv_set(FEEDBACK, request_id, json.dumps(row).encode(), self.config.ttl_s)
        return row


async def export_rows(store: StateStore) -> list[dict[str, Any]]:
    """The feedback rows, oldest first."""
    rows = [json.loads(value) for _, value in await store.kv_scan(FEEDBACK)]
    return sorted(rows, key=lambda r: r.get("at", 0))
