"""Small in-process helpers of governance: brute-force protection per client address, and the bounded set
of key names used as metric labels."""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable

OTHER = "other"


class AuthFailures:
    """More than ``limit`` failed authentications from one address within ``window_s`` lock the address out
    for ``lockout_s`` (every request from it is refused with 429 meanwhile). Per process; at most
    ``max_addresses`` addresses are remembered (the least recently failing are forgotten first)."""

    def __init__(
        self,
        limit: int,
        lockout_s: float,
        *,
        window_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        max_addresses: int = 10_000,
    ) -> None:
        self.limit, self.lockout_s, self.window_s, self.clock = limit, lockout_s, window_s, clock
        self.max_addresses = max_addresses
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._locked: dict[str, float] = {}

    def locked_for(self, address: str) -> float | None:
        """Seconds the address stays locked out, or None."""
        until = self._locked.get(address)
        if until is None:
            return None
        left = until - self.clock()
        if left <= 0:
            del self._locked[address]
            return None
        return left

    def failed(self, address: str) -> None:
        now = self.clock()
        times = self._failures.pop(address, None) or deque()
        times.append(now)
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if len(times) > self.limit:
            self._locked[address] = now + self.lockout_s
            times.clear()
        self._failures[address] = times
        while len(self._failures) > self.max_addresses:
            self._failures.popitem(last=False)
        if len(self._locked) > self.max_addresses:
            for stale in [a for a, until in self._locked.items() if until <= now]:
                del self._locked[stale]


class KeyLabels:
    """Key names as metric labels: the first ``cap`` distinct names seen by this process keep their name,
    any further one is counted as ``other`` (bounded cardinality whatever keys are created)."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._names: set[str] = set()

    def __call__(self, name: str) -> str:
        if name in self._names:
            return name
        if len(self._names) < self.cap:
            self._names.add(name)
            return name
        return OTHER
