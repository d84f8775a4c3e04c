"""The in-process tier: serialized values in a dict, bounded in bytes, evicted by GDSF priority.

Why a byte bound and not an item count: one kline history can weigh as much as a thousand tickers,
so "10,000 items" says nothing about memory; ``cache.max_size_mb`` is a promise about memory.

Accounting: an entry weighs ``len(value bytes) + len(key) + ENTRY_OVERHEAD``. The overhead is an
estimate of the per-entry bookkeeping (entry object, dict slot, heap slot), so a flood of tiny values
cannot blow through the bound while each counts as a few bytes.

Eviction (see :mod:`.policy`): expired entries go first, at no cost to anyone. Then the entry with
the lowest GreedyDual-Size-Frequency priority ``L + frequency × cost / size`` goes, and ``L`` rises to
its priority, which ages everything not touched since. Priorities live in a heap with lazy deletion
(stale heap slots are skipped and compacted when they outnumber live entries), so a get or a set is
O(log n).

Not thread-safe, and needs no lock: every agent is one asyncio event loop and nothing here awaits.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass

from tradingbot_agents.cache.policy import gdsf_priority

ENTRY_OVERHEAD = 96
#: A full cache sweeps for expired entries at most this often (seconds): a sweep is O(n), and
#: running one per insert would make a full 100 MB cache O(n) per write.
PURGE_EVERY = 1.0


@dataclass(slots=True)
class _Entry:
    data: bytes
    size: int
    expires_at: float
    ttl: float
    cost: float
    frequency: int
    priority: float
    token: int


@dataclass
class L1Counters:
    hits: int = 0
    misses: int = 0
    evictions: int = 0
    expirations: int = 0
    rejected: int = 0


class L1Cache:
    """Byte-bounded TTL cache of ``bytes`` values.

    ``clock`` is injectable so TTL tests need not sleep; it must be monotonic.
    """

    def __init__(self, max_bytes: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        self.max_bytes = max_bytes
        self.counters = L1Counters()
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._heap: list[tuple[float, int, str]] = []
        self._tokens = itertools.count()
        self._bytes = 0
        self._inflation = 0.0
        self._last_purge = float("-inf")

    # -- reads -------------------------------------------------------------------------------
    def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            self.counters.misses += 1
            return None
        if entry.expires_at <= self._clock():
            self._remove(key, entry)
            self.counters.expirations += 1
            self.counters.misses += 1
            return None
        entry.frequency += 1
        self._reprioritize(key, entry)
        self.counters.hits += 1
        return entry.data

    def peek(self, key: str) -> bytes | None:
        """The value without counting an access (prefetch decisions, tests)."""
        entry = self._entries.get(key)
        if entry is None or entry.expires_at <= self._clock():
            return None
        return entry.data

    def remaining_ttl(self, key: str) -> float | None:
        """Seconds left, or None when absent or expired."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        left = entry.expires_at - self._clock()
        return left if left > 0 else None

    def ttl_of(self, key: str) -> float | None:
        entry = self._entries.get(key)
        return entry.ttl if entry else None

    def __contains__(self, key: str) -> bool:
        return self.peek(key) is not None

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes_used(self) -> int:
        return self._bytes

    # -- writes ------------------------------------------------------------------------------
    def set(self, key: str, data: bytes, ttl: float, cost: float = 1e-3) -> bool:
        """Store ``data`` for ``ttl`` seconds. ``cost`` is what a miss would cost (seconds of fetch
        latency is the natural unit). Returns False when the value alone exceeds the bound."""
        size = len(data) + len(key) + ENTRY_OVERHEAD
        old = self._entries.get(key)
        if size > self.max_bytes:
            if old is not None:
                self._remove(key, old)
            self.counters.rejected += 1
            return False
        frequency = 1
        if old is not None:
            # A rewrite of a known key keeps its history: it is the same hot key with fresh data.
            frequency = old.frequency
            self._remove(key, old)
        self._make_room(size)
        token = next(self._tokens)
        priority = gdsf_priority(self._inflation, frequency, cost, size)
        entry = _Entry(data, size, self._clock() + ttl, ttl, cost, frequency, priority, token)
        self._entries[key] = entry
        self._bytes += size
        heapq.heappush(self._heap, (priority, token, key))
        return True

    def delete(self, key: str) -> bool:
        entry = self._entries.get(key)
        if entry is None:
            return False
        self._remove(key, entry)
        return True

    def clear(self) -> None:
        self._entries.clear()
        self._heap.clear()
        self._bytes = 0

    def purge_expired(self) -> int:
        """Drop every expired entry now (the data agent's ``cleanup_interval`` job)."""
        now = self._clock()
        expired = [k for k, e in self._entries.items() if e.expires_at <= now]
        for key in expired:
            self._remove(key, self._entries[key])
        self.counters.expirations += len(expired)
        self._compact_if_needed()
        return len(expired)

    # -- internals ---------------------------------------------------------------------------
    def _reprioritize(self, key: str, entry: _Entry) -> None:
        entry.priority = gdsf_priority(self._inflation, entry.frequency, entry.cost, entry.size)
        entry.token = next(self._tokens)
        heapq.heappush(self._heap, (entry.priority, entry.token, key))
        self._compact_if_needed()

    def _remove(self, key: str, entry: _Entry) -> None:
        del self._entries[key]
        self._bytes -= entry.size

    def _make_room(self, incoming: int) -> None:
        if self._bytes + incoming <= self.max_bytes:
            return
        now = self._clock()
        if now - self._last_purge >= PURGE_EVERY:
            self._last_purge = now
            if self.purge_expired() and self._bytes + incoming <= self.max_bytes:
                return
        while self._bytes + incoming > self.max_bytes and self._heap:
            priority, token, key = heapq.heappop(self._heap)
            entry = self._entries.get(key)
            if entry is None or entry.token != token:
                continue  # a stale heap slot: the entry was re-scored or removed
            self._remove(key, entry)
            if entry.expires_at <= now:
                self.counters.expirations += 1  # dead anyway: no reason to raise L
                continue
            self._inflation = max(self._inflation, priority)
            self.counters.evictions += 1

    def _compact_if_needed(self) -> None:
        if len(self._heap) > 2 * len(self._entries) + 64:
            self._heap = [(e.priority, e.token, k) for k, e in self._entries.items()]
            heapq.heapify(self._heap)
