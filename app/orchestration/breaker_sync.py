"""Circuit-breaker transitions shared between worker processes through Redis (``SWITCHYARD_REDIS_URL``).

The per-call decision (``CircuitBreaker.allow``) stays local and synchronous; only *transitions* travel.
When a worker's breaker opens (failures) or closes (a successful half-open probe), ``BreakerBoard`` reports
it here: it is queued (the latest per model), and a background publisher writes the hash
``switchyard:breaker:<model>`` (state, until, at, origin; expiring) and PUBLISHes it on ``switchyard:breaker``.
Every worker's subscriber applies the others' transitions to its own breakers (open until the shared
wall-clock ``until``; close), and on (re)connecting first loads the hashes of the catalogue's models.

Redis is best effort: when it is unreachable, requests and local breakers work as without it, a warning is
logged at most every ``WARN_EVERY_S`` seconds, and both loops reconnect with exponential backoff. Keys and
applied messages are limited to the catalogue's model names. ``redis`` is imported only when a sync starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import socket
import time
import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import asdict
from typing import Any, Literal

from app.orchestration.breaker import BreakerBoard, State
from app.records import record

log = logging.getLogger(__name__)

CHANNEL = "switchyard:breaker"
KEY_PREFIX = "switchyard:breaker:"
CLOSED_TTL_S = 3600.0  # how long a "closed" hash (and an open one past its until) stays for inspection
WARN_EVERY_S = 30.0
WallClock = Callable[[], float]
Shared = Literal["open", "closed"]


@record
class Transition:
    """One worker's breaker transition, in wall-clock seconds (comparable across processes)."""

    model: str
    state: Shared
    until: float  # open until (== ``at`` when closed)
    at: float  # when it happened
    origin: str  # the worker that decided it

    def fields(self) -> dict[str, str]:
        return {k: repr(v) if isinstance(v, float) else v for k, v in asdict(self).items()}

    def encode(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    def ttl_ms(self) -> int:
        """Expiry of the model's hash: the open period plus ``CLOSED_TTL_S``."""
        return max(1, int((max(0.0, self.until - self.at) + CLOSED_TTL_S) * 1000))


def decode(raw: str | bytes | Mapping[str, Any], models: Collection[str]) -> Transition | None:
    """A ``Transition`` from a published JSON message or a hash's fields; None when malformed or about a
    model outside ``models``."""
    try:
        data = json.loads(raw) if isinstance(raw, str | bytes) else raw
        model, state, origin = data["model"], data["state"], data["origin"]
        until, at = float(data["until"]), float(data["at"])
    except (ValueError, TypeError, KeyError):
        return None
    if model not in models or state not in ("open", "closed") or not isinstance(origin, str):
        return None
    if not (math.isfinite(until) and math.isfinite(at)):
        return None
    return Transition(model, state, until, at, origin)


class RateLimitedWarning:
    """``log.warning`` at most once every ``interval_s`` (counting the suppressed ones)."""

    def __init__(self, logger: logging.Logger, interval_s: float = WARN_EVERY_S, clock: WallClock = time.monotonic):
        self.logger, self.interval_s, self.clock = logger, interval_s, clock
        self._last: float | None = None
        self.suppressed = 0

    def __call__(self, message: str, *args: object) -> bool:
        now = self.clock()
        if self._last is not None and now - self._last < self.interval_s:
            self.suppressed += 1
            return False
        if self.suppressed:
            message += f" ({self.suppressed} similar warnings suppressed)"
        self._last, self.suppressed = now, 0
        self.logger.warning(message, *args)
        return True


class BreakerSync:
    """Shares one ``BreakerBoard``'s transitions with other processes through the Redis at ``url``."""

    def __init__(
        self,
        url: str,
        board: BreakerBoard,
        models: Collection[str],
        *,
        wall: WallClock = time.time,
        origin: str | None = None,
        backoff: tuple[float, float] = (0.5, 30.0),
        startup_wait_s: float = 2.0,
    ) -> None:
        self.url, self.board, self.models, self.wall = url, board, frozenset(models), wall
        self.origin = origin or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.backoff, self.startup_wait_s = backoff, startup_wait_s
        self.warn = RateLimitedWarning(log)
        self._pending: dict[str, Transition] = {}  # latest unpublished transition per model
        self._last_at: dict[str, float] = {}  # newest transition known per model
        self._wake = asyncio.Event()
        self._attempted = asyncio.Event()  # the first connect-and-load attempt ended (either way)
        self._task: asyncio.Task[None] | None = None
        self._client: Any = None
        board.on_transition = self.local

    # -- pure logic -------------------------------------------------------------------------------------

    def local(self, model: str, state: State, seconds: float) -> None:
        """The board's hook: queue a locally decided transition for publishing (no I/O here)."""
        if model not in self.models or state == "half_open":
            return
        now = self.wall()
        self._last_at[model] = now
        self._pending[model] = Transition(model, state, now + seconds, now, self.origin)
        self._wake.set()

    def apply(self, transition: Transition) -> bool:
        """Apply another worker's transition to the local breaker, unless it is ours, about an unknown model,
        or older than what we know. Returns whether the breaker changed."""
        t = transition
        if t.origin == self.origin or t.model not in self.models or t.at <= self._last_at.get(t.model, -math.inf):
            return False
        self._last_at[t.model] = t.at
        breaker = self.board.get(t.model)
        changed = breaker.apply_open(t.until - self.wall()) if t.state == "open" else breaker.apply_close()
        if changed:
            log.info("circuit of %s %s by another worker", t.model, "opened" if t.state == "open" else "closed")
        return changed

    def pending(self) -> dict[str, Transition]:
        return dict(self._pending)

    # -- Redis ------------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the background task and wait (at most ``startup_wait_s``) for the first state load."""
        import redis.asyncio as aioredis  # only when sharing is configured

        self._client = aioredis.Redis.from_url(
            self.url, decode_responses=True, socket_connect_timeout=2.0, socket_timeout=5.0
        )
        self._task = asyncio.create_task(self._run(), name="breaker-sync")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.startup_wait_s):
                await self._attempted.wait()

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.aclose()
            self._client = None

    async def _run(self) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self._subscribe_loop())
            group.create_task(self._publish_loop())

    async def _publish_loop(self) -> None:
        delay = self.backoff[0]
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                model, transition = next(iter(self._pending.items()))
                try:
                    await self._publish(transition)
                except Exception as exc:  # Redis down must never matter beyond a warning
                    self.warn("breaker sync: cannot publish to Redis (%s: %s); retrying", type(exc).__name__, exc)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self.backoff[1])
                    continue
                delay = self.backoff[0]
                if self._pending.get(model) is transition:
                    del self._pending[model]

    async def _publish(self, t: Transition) -> None:
        key = KEY_PREFIX + t.model
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping=t.fields())
            pipe.pexpire(key, t.ttl_ms())
            pipe.publish(CHANNEL, t.encode())
            await pipe.execute()

    async def _subscribe_loop(self) -> None:
        delay = self.backoff[0]
        while True:
            pubsub = self._client.pubsub()
            try:
                await pubsub.subscribe(CHANNEL)  # before loading, so no transition falls in between
                await self._load()
                self._attempted.set()
                delay = self.backoff[0]
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        transition = decode(message["data"], self.models)
                        if transition is not None:
                            self.apply(transition)
            except Exception as exc:  # reconnect with backoff
                self._attempted.set()
                self.warn("breaker sync: Redis unavailable (%s: %s); breakers stay local", type(exc).__name__, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.backoff[1])
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    async def _load(self) -> None:
        """Apply the stored state of every catalogue model (one round trip)."""
        models = sorted(self.models)
        async with self._client.pipeline(transaction=False) as pipe:
            for model in models:
                pipe.hgetall(KEY_PREFIX + model)
            results = await pipe.execute()
        for fields in results:
            transition = decode(fields, self.models) if fields else None
            if transition is not None:
                self.apply(transition)
