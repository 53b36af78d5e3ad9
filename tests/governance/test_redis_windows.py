"""The Redis store's rate windows keep a running total (``sum``) and their first live slice (``lo``): an
admission reads only the slices that leave the window. These tests check the stored shape against the
slices themselves, and that a window without its total (or left idle past a window) is worked out again
from its slices, on a real redis-server."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from app.state import KeyRecord, RedisStore
from app.state.records import WINDOW_SLICES
from tests.governance.conftest import WINDOW_S
from tests.governance.support import RedisServer


@pytest.fixture
async def redis_store(redis_server: RedisServer) -> AsyncIterator[RedisStore]:
    store = RedisStore(redis_server.url, timeout_s=5.0, window_s=WINDOW_S)
    await store.start()
    try:
        yield store
    finally:
        await store.aclose()


def limited_key(**limits: int) -> KeyRecord:
    return KeyRecord(
        id="key_" + uuid.uuid4().hex[:8], name="k", secret_hash=uuid.uuid4().hex, created_at=time.time(), **limits
    )


async def window(store: RedisStore, key: KeyRecord, kind: str) -> tuple[dict[str, str], dict[int, tuple[int, float]]]:
    """The window hash's meta fields and its slices (index -> amount, latest)."""
    client: Any = store._client  # the stored shape is what these tests are about
    raw = await client.hgetall(f"switchyard:{kind}:{{{key.id}}}")
    fields = {k.decode(): v.decode() for k, v in raw.items()}
    meta = {k: fields.pop(k) for k in ("sum", "lo") if k in fields}
    slices = {int(k): (int(v.split(":")[0]), float(v.split(":")[1])) for k, v in fields.items()}
    return meta, slices


async def test_the_total_is_the_sum_of_the_live_slices(redis_store: RedisStore) -> None:
    key = limited_key(rpm=1_000_000, tpm=1_000_000_000)
    await redis_store.create_key(key)
    loop = asyncio.get_running_loop()
    ends = loop.time() + 1.6 * WINDOW_S
    while loop.time() < ends:  # long enough for slices to leave the window
        assert (await redis_store.admit(key.id, None, 10)).ok
        await redis_store.settle(key.id, None, 0.0, "m", 3)
        meta, slices = await window(redis_store, key, "rpmc")
        assert int(meta["sum"]) == sum(amount for amount, _ in slices.values())
        assert int(meta["lo"]) <= min(slices)  # no slice below "lo"
    assert len(slices) <= WINDOW_SLICES + 1
    usage = await redis_store.usage(key.id)
    meta, slices = await window(redis_store, key, "tpmc")
    assert usage.tokens_in_window == int(meta["sum"]) == sum(amount for amount, _ in slices.values())
    assert usage.tokens_in_window % 3 == 0


async def test_a_window_without_its_total_is_worked_out_from_its_slices(redis_store: RedisStore) -> None:
    """A hash with slices but no ``sum``/``lo`` (a damaged one): the next admission counts from the slices."""
    key = limited_key(rpm=5)
    await redis_store.create_key(key)
    assert all([(await redis_store.admit(key.id, None, 10)).ok for _ in range(3)])
    client: Any = redis_store._client
    await client.hdel(f"switchyard:rpmc:{{{key.id}}}", "sum", "lo")
    results = [await redis_store.admit(key.id, None, 10) for _ in range(4)]
    assert [r.ok for r in results] == [True, True, False, False]  # 3 were already in the window
    assert results[-1].refusal == "rpm" and results[-1].retry_after is not None
    assert 0 < results[-1].retry_after <= WINDOW_S
    assert (await redis_store.usage(key.id)).requests_in_window == 5


async def test_a_first_slice_far_behind_is_worked_out_again(redis_store: RedisStore) -> None:
    """A ``lo`` more than a window behind (a window idle that long while its hash lived on) makes the next
    admission read the slices once instead of walking every slice index since."""
    key = limited_key(rpm=4)
    await redis_store.create_key(key)
    assert (await redis_store.admit(key.id, None, 10)).ok
    client: Any = redis_store._client
    await client.hset(f"switchyard:rpmc:{{{key.id}}}", "lo", "0")  # slice 0: the Unix epoch
    assert [(await redis_store.admit(key.id, None, 10)).ok for _ in range(4)] == [True, True, True, False]
    meta, slices = await window(redis_store, key, "rpmc")
    assert int(meta["lo"]) == min(slices) and int(meta["sum"]) == 4


async def test_refusals_wait_for_the_oldest_slices_to_leave(redis_store: RedisStore) -> None:
    """At the limit, the retry-after is when enough of the oldest slices have left: admitting again then
    succeeds, and not much earlier."""
    key = limited_key(rpm=3)
    await redis_store.create_key(key)
    for _ in range(3):
        assert (await redis_store.admit(key.id, None, 10)).ok
        await asyncio.sleep(WINDOW_S / 6)
    refused = await redis_store.admit(key.id, None, 10)
    assert refused.refusal == "rpm" and refused.retry_after is not None
    assert refused.retry_after < WINDOW_S / 2 + 0.1  # the first admission left half a window in
    await asyncio.sleep(refused.retry_after + 0.05)
    assert (await redis_store.admit(key.id, None, 10)).ok
