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
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from app.routing.base import RouteDecision
from app.settings.routing import FeedbackConfig
from app.state.base import StateStore, StoreUnavailableError

log = logging.getLogger("switchyard.routing")
DECISIONS = "routing-decision"
FEEDBACK = "routing-feedback"
MISS_RETRIES, MISS_RETRY_S = 2, 0.05
BATCH = 500  # decisions per store round trip
GATHER_S = 0.1  # a decision waits this long for others to share its store round trip (drain() does not wait)
MAX_PENDING = 50_000  # decisions waiting for the store, at most
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
    """Writes decision records off the response path and adds feedback to them. Records wait in a bounded
    buffer that one background writer empties, many per store round trip (``kv_set_many``): a request costs
    an append, not a task and a transaction of its own (the writer gathers for ``GATHER_S`` first, so a
    quiet server too writes one transaction per interval, not one per request)."""

    def __init__(self, store: Callable[[], Awaitable[StateStore]], config: FeedbackConfig) -> None:
        self._store, self.config = store, config
        self._pending: list[tuple[str, bytes]] = []
        self._writer: asyncio.Task[None] | None = None
        self._now = asyncio.Event()  # set by drain(): write what is pending without gathering more
        self._dropped = 0

    def record(self, request_id: str, record: dict[str, Any]) -> None:
        """Store ``record`` for ``request_id`` in the background (a store failure is logged, not raised)."""
        if len(self._pending) >= MAX_PENDING:
            self._dropped += 1  # the store is far behind: shed decisions rather than memory
            return
        self._pending.append((request_id, orjson.dumps(record, default=str, option=orjson.OPT_NON_STR_KEYS)))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write_pending())

    async def _write_pending(self) -> None:
        """Write what is pending, a batch per ``GATHER_S`` (or per ``BATCH`` decisions); end when a gathering
        interval brought nothing."""
        while True:
            if len(self._pending) < BATCH and not self._now.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(GATHER_S):
                        await self._now.wait()
            if not self._pending:
                break
            batch, self._pending = self._pending[:BATCH], self._pending[BATCH:]
            try:
                store = await self._store()
                await store.kv_set_many(DECISIONS, batch, self.config.ttl_s)
            except (StoreUnavailableError, OSError) as exc:
                log.warning("%d routing decisions not recorded: %s", len(batch), type(exc).__name__)
        if self._dropped:
            log.warning("%d routing decisions not recorded: the store could not keep up", self._dropped)
            self._dropped = 0

    async def drain(self) -> None:
        """Write the pending decisions now and wait for them (at shutdown, before feedback is looked up)."""
        self._now.set()
        try:
            while self._writer is not None and not self._writer.done():
                await asyncio.gather(self._writer, return_exceptions=True)
        finally:
            self._now.clear()

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
