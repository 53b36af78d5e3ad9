"""``kv_scan``, the store interface's listing of a key/value namespace, against both implementations (the
embedded SQLite file and a real redis-server)."""

from __future__ import annotations

import asyncio

from app.state import StateStore


async def test_scan_lists_the_live_pairs_of_one_namespace_only(store: StateStore) -> None:
    for i in range(5):
        await store.kv_set("fb", f"req-{i}", f"value {i}".encode())
    await store.kv_set("fb-other", "req-9", b"other namespace")
    await store.kv_set("f", "b:req-8", b"a prefix of the namespace is not the namespace")
    await store.kv_set("fb", "gone", b"expires", ttl_s=0.05)
    await asyncio.sleep(0.15)
    pairs = sorted(await store.kv_scan("fb"))
    assert pairs == [(f"req-{i}", f"value {i}".encode()) for i in range(5)]
    assert await store.kv_scan("fb-other") == [("req-9", b"other namespace")]
    assert await store.kv_scan("nothing-here") == []


async def test_scan_honours_the_limit(store: StateStore) -> None:
    for i in range(1200):  # more than one SCAN batch in Redis
        await store.kv_set("many", f"k{i:04d}", str(i).encode())
    assert len(await store.kv_scan("many")) == 1200
    some = await store.kv_scan("many", limit=7)
    assert len(some) == 7 and all(int(value) == int(key[1:]) for key, value in some)
    assert await store.kv_scan("many", limit=0) == []


async def test_glob_characters_in_the_namespace_are_literal(store: StateStore) -> None:
    await store.kv_set("a*", "x", b"1")
    await store.kv_set("ab", "y", b"2")
    await store.kv_set("a?[c]", "z", b"3")
    await store.kv_set("abc]", "w", b"4")
    assert await store.kv_scan("a*") == [("x", b"1")]
    assert await store.kv_scan("a?[c]") == [("z", b"3")]


async def test_keys_with_colons_come_back_whole(store: StateStore) -> None:
    await store.kv_set("ns", "tenant:42:req", b"v")
    assert await store.kv_scan("ns") == [("tenant:42:req", b"v")]


async def test_set_many_writes_every_pair_with_its_expiry(store: StateStore) -> None:
    items = [(f"k{i}", f"v{i}".encode()) for i in range(600)]
    await store.kv_set_many("batch", items, ttl_s=0.3)
    await store.kv_set_many("batch", [], ttl_s=0.3)  # nothing to write is a no-op
    assert sorted(await store.kv_scan("batch")) == sorted(items)
    await store.kv_set_many("batch", [("k1", b"new")])  # replaces, and without expiry stays
    assert await store.kv_get("batch", "k1") == b"new"
    await asyncio.sleep(0.5)
    assert await store.kv_scan("batch") == [("k1", b"new")]
