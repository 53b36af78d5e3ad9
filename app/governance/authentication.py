"""Who a request's key is: the master key (constant-time comparison), or a virtual key looked up by the
SHA-256 of its secret. Lookups are cached for ``key_cache_ttl_s`` (at most 1 s: a revocation is seen
everywhere within a second; requests that call models are also checked by the store itself at admission, at
once). While the store is down, a key this process validated within ``store_grace_s`` is still accepted."""

from __future__ import annotations

import hmac
from collections import OrderedDict
from dataclasses import dataclass

from app.governance.context import MASTER, Principal
from app.governance.failover import StoreFailover, unreachable
from app.governance.keys import KEY_PREFIX, hash_secret, same_hash
from app.governance.refusals import auth_error
from app.state.base import StoreUnavailableError
from app.state.records import KeyRecord

MAX_CACHED_KEYS = 10_000
MAX_SECRET_CHARS = 256


@dataclass(slots=True)
class _Cached:
    record: KeyRecord
    validated_at: float  # monotonic time the store last confirmed the record


class Authenticator:
    """See the module docstring."""

    def __init__(self, stores: StoreFailover, master_key: str, cache_ttl_s: float) -> None:
        self.stores, self.cache_ttl_s = stores, cache_ttl_s
        self._master_digest = hash_secret(master_key)
        self._cache: OrderedDict[str, _Cached] = OrderedDict()

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
        if not secret.startswith(KEY_PREFIX) or len(secret) > MAX_SECRET_CHARS:
            raise auth_error("invalid")
        record, validated = await self._lookup(digest)
        if not same_hash(record.secret_hash, digest):
            raise auth_error("invalid")
        if record.revoked_at is not None:
            raise auth_error("revoked")
        if record.is_expired(self.stores.wall()):
            raise auth_error("expired")
        return Principal(record, validated)

    async def _lookup(self, digest: str) -> tuple[KeyRecord, float]:
        """The key with this digest and when the store last confirmed it (from the cache when fresh)."""
        now = self.stores.clock()
        cached = self._cache.get(digest)
        if cached is not None and now - cached.validated_at < self.cache_ttl_s:
            return cached.record, cached.validated_at
        try:
            found = await self.stores.shared(lambda s: s.find_key(digest))
        except StoreUnavailableError:
            if cached is None or not self.stores.usable_offline(cached.validated_at):
                raise unreachable() from None
            return cached.record, cached.validated_at
        if found is None:
            self._cache.pop(digest, None)
            raise auth_error("invalid")
        self._remember(digest, found, now)
        return found, now

    def recognises(self, secret: str) -> bool:
        """Whether ``secret`` is the master key or a key this process has seen valid (no store lookup): what
        an address locked out for guessing may still use."""
        return self.is_master(secret) or (len(secret) <= MAX_SECRET_CHARS and hash_secret(secret) in self._cache)

    def _remember(self, digest: str, record: KeyRecord, now: float) -> None:
        self._cache[digest] = _Cached(record, now)
        self._cache.move_to_end(digest)
        while len(self._cache) > MAX_CACHED_KEYS:
            self._cache.popitem(last=False)

    def forget(self, key_id: str) -> None:
        """Drop ``key_id`` from this process's cache (after a change through this process)."""
        for digest in [d for d, c in self._cache.items() if c.record.id == key_id]:
            del self._cache[digest]
