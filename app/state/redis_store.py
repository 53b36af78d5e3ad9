"""The Redis store (``SWITCHYARD_REDIS_URL``): keys, spend, rate windows and leases shared by every worker
and replica. Every deciding operation is one Lua script (``redis_scripts.py``); a key's update is an
optimistic transaction (``WATCH``/``MULTI``). Every call has a short timeout (``timeout_s``) and raises
``StoreUnavailableError`` rather than hang. ``redis`` is imported only when the store starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any, TypeVar
from urllib.parse import urlsplit

from app.state import redis_scripts as lua
from app.state.base import StoreUnavailableError
from app.state.records import RATE_WINDOW_S, Admission, KeyRecord, KeyUsage, Refusal

T = TypeVar("T")
PREFIX = "switchyard:"
INDEX = PREFIX + "keys"
SCAN_COUNT = 500  # keys per SCAN round trip
SCALARS = ("rpm", "tpm", "max_parallel", "budget_usd", "expires_at", "revoked_at")


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _opt(value: Any) -> float | None:
    return None if value in (None, b"", "") else float(_s(value))


def _keys(key_id: str, *parts: str) -> list[str]:
    return [f"{PREFIX}{part}:{{{key_id}}}" for part in parts]


def safe_description(url: str) -> str:
    """``redis host:port/db`` without credentials."""
    parts = urlsplit(url)
    return f"redis {parts.hostname or '?'}:{parts.port or 6379}{parts.path or ''}"


def _fields(record: KeyRecord) -> tuple[dict[str, str], list[str]]:
    """The hash fields of a record (set) and the scalar fields that are None (deleted)."""
    values: dict[str, Any] = {name: getattr(record, name) for name in SCALARS}
    values["period_s"] = record.period_s
    values["anchor"] = record.anchor
    present = {k: repr(float(v)) if isinstance(v, float) else str(v) for k, v in values.items() if v is not None}
    present.update(id=record.id, record=json.dumps(record.to_json()), secret_hash=record.secret_hash)
    return present, [k for k, v in values.items() if v is None]


class RedisStore:
    kind = "redis"

    def __init__(self, url: str, *, timeout_s: float = 0.5, window_s: float = RATE_WINDOW_S) -> None:
        self.url, self.timeout_s, self.window_s = url, timeout_s, window_s
        self.description = safe_description(url)
        self._client: Any = None
        self._scripts: dict[str, Any] = {}

    async def start(self) -> None:
        import redis.asyncio as aioredis

        if self._client is not None:
            return
        self._client = aioredis.Redis.from_url(
            self.url,
            decode_responses=False,
            socket_connect_timeout=self.timeout_s,
            socket_timeout=self.timeout_s,
            retry_on_timeout=False,
        )
        for name in ("ADMIT", "RESERVE", "SETTLE", "USAGE"):
            self._scripts[name] = self._client.register_script(getattr(lua, name))

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):  # closing a dead connection must not fail shutdown
                await client.aclose()

    async def _call(self, work: Callable[[], Awaitable[T]]) -> T:
        import redis.exceptions as rex

        if self._client is None:
            raise StoreUnavailableError("the Redis store is not started")
        try:
            async with asyncio.timeout(self.timeout_s * 2):
                return await work()
        except (rex.ConnectionError, rex.TimeoutError, TimeoutError, OSError) as exc:
            raise StoreUnavailableError(f"redis: {type(exc).__name__}") from exc

    async def _script(self, name: str, keys: list[str], args: list[Any]) -> Any:
        return await self._call(lambda: self._scripts[name](keys=keys, args=args))

    # -- keys ---------------------------------------------------------------------------------------------

    async def create_key(self, record: KeyRecord) -> None:
        present, _ = _fields(record)
        (key,) = _keys(record.id, "key")

        async def work() -> None:
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.hset(key, mapping=present)
                pipe.set(f"{PREFIX}keyhash:{record.secret_hash}", record.id)
                pipe.sadd(INDEX, record.id)
                await pipe.execute()

        await self._call(work)

    async def _record(self, key_id: str) -> KeyRecord | None:
        raw = await self._client.hget(_keys(key_id, "key")[0], "record")
        return None if raw is None else KeyRecord.from_json(json.loads(raw))

    async def get_key(self, key_id: str) -> KeyRecord | None:
        return await self._call(lambda: self._record(key_id))

    async def find_key(self, secret_hash: str) -> KeyRecord | None:
        async def work() -> KeyRecord | None:
            key_id = await self._client.get(f"{PREFIX}keyhash:{secret_hash}")
            return None if key_id is None else await self._record(_s(key_id))

        return await self._call(work)

    async def list_keys(self) -> list[KeyRecord]:
        async def work() -> list[KeyRecord]:
            ids = sorted(_s(i) for i in await self._client.smembers(INDEX))
            async with self._client.pipeline(transaction=False) as pipe:
                for key_id in ids:
                    pipe.hget(_keys(key_id, "key")[0], "record")
                raws = await pipe.execute()
            records = [KeyRecord.from_json(json.loads(r)) for r in raws if r is not None]
            return sorted(records, key=lambda k: (k.created_at, k.id))

        return await self._call(work)

    async def update_key(self, key_id: str, changes: dict[str, Any]) -> KeyRecord | None:
        import redis.exceptions as rex

        key, spend, mspend = _keys(key_id, "key", "spend", "mspend")

        async def work() -> KeyRecord | None:
            while True:
                async with self._client.pipeline(transaction=True) as pipe:
                    try:
                        await pipe.watch(key)
                        raw = await pipe.hget(key, "record")
                        if raw is None:
                            return None
                        seconds, micros = await pipe.time()
                        now = float(seconds) + float(micros) / 1e6
                        current = KeyRecord.from_json(json.loads(raw))
                        updated = current.with_changes(changes, now)
                        present, absent = _fields(updated)
                        pipe.multi()
                        pipe.hset(key, mapping=present)
                        if absent:
                            pipe.hdel(key, *absent)
                        if updated.anchor != current.anchor:  # a new budget period starts now
                            pipe.hset(spend, mapping={"period_start": repr(updated.anchor), "spent": "0"})
                            pipe.delete(mspend)
                        await pipe.execute()
                        return updated
                    except rex.WatchError:
                        continue  # changed meanwhile: apply the changes to the new version

        return await self._call(work)

    # -- governance ---------------------------------------------------------------------------------------

    async def admit(self, key_id: str, lease_id: str | None, lease_ttl_s: float) -> Admission:
        keys = _keys(key_id, "key", "spend", "mspend", "rpmc", "tpmc", "lease")
        out = [_s(x) for x in await self._script("ADMIT", keys, [lease_id or "", lease_ttl_s, self.window_s])]
        return _admission(out)

    async def release_lease(self, key_id: str, lease_id: str) -> None:
        (key,) = _keys(key_id, "lease")
        await self._call(lambda: self._client.zrem(key, lease_id))

    async def renew_lease(self, key_id: str, lease_id: str, ttl_s: float) -> None:
        (key,) = _keys(key_id, "lease")

        async def work() -> None:
            seconds, micros = await self._client.time()
            expiry = float(seconds) + float(micros) / 1e6 + ttl_s
            await self._client.zadd(key, {lease_id: expiry}, xx=True)
            await self._client.expire(key, int(ttl_s) + 2)

        await self._call(work)

    async def reserve(self, key_id: str, reservation_id: str, amount: float, ttl_s: float) -> Admission:
        keys = _keys(key_id, "key", "spend", "mspend", "resv", "resamt")
        out = [_s(x) for x in await self._script("RESERVE", keys, [reservation_id, repr(float(amount)), ttl_s])]
        admission = _admission(out)
        reserved = float(out[4]) if len(out) > 4 else 0.0
        return Admission(
            admission.ok, admission.refusal, admission.retry_after, admission.spent, reserved, admission.period_start
        )

    async def settle(self, key_id: str, reservation_id: str | None, cost: float, model: str, tokens: int) -> None:
        keys = _keys(key_id, "key", "spend", "mspend", "resv", "resamt", "tpmc")
        args = [reservation_id or "", repr(float(cost)), model, int(tokens), self.window_s]
        await self._script("SETTLE", keys, args)

    async def usage(self, key_id: str) -> KeyUsage:
        keys = _keys(key_id, "key", "spend", "mspend", "rpmc", "tpmc", "lease", "resv", "resamt")
        out = [_s(x) for x in await self._script("USAGE", keys, [self.window_s])]
        if not out:
            return KeyUsage(0.0, 0.0, 0.0, 0.0, {}, 0, 0, 0)
        start, spent, total, reserved = (float(v) for v in out[:4])
        requests, tokens, leases = (int(float(v)) for v in out[4:7])
        models = {out[i]: float(out[i + 1]) for i in range(7, len(out) - 1, 2)}
        return KeyUsage(start, spent, reserved, total, models, requests, tokens, leases)

    # -- key/value ----------------------------------------------------------------------------------------

    @staticmethod
    def _kv(namespace: str, key: str) -> str:
        return f"{PREFIX}kv:{namespace}:{key}"

    async def kv_get(self, namespace: str, key: str) -> bytes | None:
        value = await self._call(lambda: self._client.get(self._kv(namespace, key)))
        return None if value is None else bytes(value)

    async def kv_set(self, namespace: str, key: str, value: bytes, ttl_s: float | None = None) -> None:
        px = None if ttl_s is None else max(1, int(ttl_s * 1000))
        await self._call(lambda: self._client.set(self._kv(namespace, key), value, px=px))

    async def kv_set_many(self, namespace: str, items: Sequence[tuple[str, bytes]], ttl_s: float | None = None) -> None:
        if not items:
            return
        px = None if ttl_s is None else max(1, int(ttl_s * 1000))

        async def run() -> None:
            async with self._client.pipeline(transaction=False) as pipe:
                for key, value in items:
                    pipe.set(self._kv(namespace, key), value, px=px)
                await pipe.execute()

        await self._call(run)

    async def kv_delete(self, namespace: str, key: str) -> bool:
        return bool(await self._call(lambda: self._client.delete(self._kv(namespace, key))))

    async def kv_scan(self, namespace: str, limit: int | None = None) -> list[tuple[str, bytes]]:
        """``SCAN`` over ``switchyard:kv:<namespace>:*`` (glob characters of the namespace escaped), then
        one ``MGET`` per batch; a key that expires between the two is left out. Each round trip has the
        store's timeout."""
        if limit is not None and limit <= 0:
            return []
        prefix = self._kv(namespace, "")
        match = _glob_escape(prefix) + "*"
        out: list[tuple[str, bytes]] = []
        cursor: Any = 0
        while True:
            cursor, names = await self._call(partial(self._client.scan, cursor, match=match, count=SCAN_COUNT))
            if names:
                values = await self._call(partial(self._client.mget, names))
                for name, value in zip(names, values, strict=True):
                    if value is not None:
                        out.append((_s(name)[len(prefix) :], bytes(value)))
            if (limit is not None and len(out) >= limit) or not int(cursor):
                break
        return out if limit is None else out[:limit]


def _glob_escape(text: str) -> str:
    """``text`` matched literally by Redis glob patterns (``MATCH``)."""
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)


def _admission(out: list[str]) -> Admission:
    """``{status, retry_after, spent, period_start, ...}`` from a script."""
    status = out[0]
    retry = _opt(out[1]) if len(out) > 1 else None
    spent = float(out[2]) if len(out) > 2 else 0.0
    start = float(out[3]) if len(out) > 3 else 0.0
    if status == "ok":
        return Admission(True, spent=spent, period_start=start, leased=len(out) > 4 and out[4] == "1")
    refusal: Refusal = status  # type: ignore[assignment]
    return Admission(False, refusal, None if retry is None else max(retry, 0.0), spent, 0.0, start)
