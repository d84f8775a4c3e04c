"""Access-pattern prefetch: learn which key tends to follow which, and fetch it before it is asked.

Why first-order transitions: the data agent's consumers read in fixed rhythms (a worker reads
``ticker:BTCUSDT`` then ``klines:1h:BTCUSDT``; the pair selector sweeps pairs in the same order), so
"what came right after A last times" predicts the next read well, costs one counter per observed
pair, and needs no training phase. A prediction is acted on only when it is likely
(``P(B|A) ≥ threshold``), has support (``A`` seen at least ``min_support`` times), B is missing or
close to expiry, and someone registered a fetcher for B's key prefix: a prefetcher must never
invent requests it cannot serve.

Accuracy is measured, not assumed: ``used / issued``, where a prefetched key counts as used when it
is read before it is prefetched again. A low accuracy is the signal to raise the threshold.

This module holds the model and the bookkeeping; :class:`~.cache.TwoTierCache` supplies the
callbacks that check freshness and load through the normal miss path (with single-flight).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from tradingbot_agents.cache.policy import key_prefix

log = logging.getLogger(__name__)

Fetcher = Callable[[str], Awaitable[Any]]


@dataclass
class TransitionModel:
    """First-order transition counts ``A → B``, bounded in memory.

    At most ``max_sources`` source keys are kept (least recently seen forgotten first) and at most
    ``max_successors`` successors per source (the rarest dropped), so a long tail of one-off keys
    cannot grow it without bound.
    """

    max_sources: int = 10_000
    max_successors: int = 8
    _counts: OrderedDict[str, dict[str, int]] = field(default_factory=OrderedDict)
    _totals: dict[str, int] = field(default_factory=dict)

    def record(self, prev: str, cur: str) -> None:
        if prev == cur:
            return  # a re-read is not a transition; it would only dilute the real ones
        succ = self._counts.pop(prev, None) or {}
        self._counts[prev] = succ
        succ[cur] = succ.get(cur, 0) + 1
        self._totals[prev] = self._totals.get(prev, 0) + 1
        if len(succ) > self.max_successors:
            rarest = min(succ, key=succ.__getitem__)
            self._totals[prev] -= succ.pop(rarest)
        if len(self._counts) > self.max_sources:
            old, _ = self._counts.popitem(last=False)
            self._totals.pop(old, None)

    def support(self, prev: str) -> int:
        return self._totals.get(prev, 0)

    def probability(self, prev: str, cur: str) -> float:
        total = self._totals.get(prev, 0)
        return self._counts.get(prev, {}).get(cur, 0) / total if total else 0.0

    def predict(self, prev: str, threshold: float, min_support: int = 1) -> list[tuple[str, float]]:
        """Successors of ``prev`` with probability ≥ threshold, most likely first."""
        total = self._totals.get(prev, 0)
        if total < max(1, min_support):
            return []
        succ = self._counts.get(prev, {})
        found = [(k, n / total) for k, n in succ.items() if n / total >= threshold]
        return sorted(found, key=lambda kv: -kv[1])


@dataclass
class PrefetchCounters:
    issued: int = 0
    used: int = 0
    failed: int = 0
    skipped_fresh: int = 0

    @property
    def accuracy(self) -> float:
        return self.used / self.issued if self.issued else 0.0


class Prefetcher:
    """Observe accesses, predict the next key, and fetch it ahead in the background.

    ``needs_refresh(key)`` says whether ``key`` is missing or near expiry; ``load(key, fetcher)``
    fetches and stores it through the cache's normal miss path. At most ``max_inflight`` prefetches
    run at once; beyond that a prediction is dropped (prefetch is an optimisation, never a queue).
    """

    def __init__(self, *, needs_refresh: Callable[[str], bool],
                 load: Callable[[str, Fetcher], Awaitable[Any]], threshold: float = 0.5,
                 min_support: int = 2, max_inflight: int = 16, enabled: bool = True) -> None:
        self.model = TransitionModel()
        self.counters = PrefetchCounters()
        self.threshold = threshold
        self.min_support = min_support
        self.max_inflight = max_inflight
        self.enabled = enabled
        self._needs_refresh = needs_refresh
        self._load = load
        self._fetchers: dict[str, Fetcher] = {}
        self._last: str | None = None
        self._pending: set[str] = set()  # prefetched and not read yet
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def register(self, prefix: str, fetcher: Fetcher) -> None:
        """``fetcher(key)`` fetches any key whose prefix (text before the first ``:``) is ``prefix``."""
        self._fetchers[prefix.rstrip(":")] = fetcher

    def fetcher_for(self, key: str) -> Fetcher | None:
        return self._fetchers.get(key_prefix(key))

    def on_access(self, key: str) -> None:
        """Record a read of ``key`` (hit or miss) and start prefetches it predicts."""
        if key in self._pending:
            self._pending.discard(key)
            self.counters.used += 1
        if self._last is not None:
            self.model.record(self._last, key)
        self._last = key
        if not self.enabled:
            return
        for nxt, _p in self.model.predict(key, self.threshold, self.min_support):
            self._maybe_prefetch(nxt)

    def _maybe_prefetch(self, key: str) -> None:
        fetcher = self.fetcher_for(key)
        if fetcher is None or key in self._tasks or len(self._tasks) >= self.max_inflight:
            return
        if not self._needs_refresh(key):
            self.counters.skipped_fresh += 1
            return
        self.counters.issued += 1
        self._pending.add(key)
        task = asyncio.get_running_loop().create_task(self._run(key, fetcher))
        self._tasks[key] = task
        task.add_done_callback(lambda _t, k=key: self._tasks.pop(k, None))

    async def _run(self, key: str, fetcher: Fetcher) -> None:
        try:
            await self._load(key, fetcher)
        except Exception as exc:
            self.counters.failed += 1
            self._pending.discard(key)
            log.debug("prefetch of %s failed: %s", key, exc)

    async def drain(self) -> None:
        """Wait for the prefetches under way (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()
        await self.drain()
