"""The two-tier cache: in-process L1 → shared Redis L2 → fetch, with single-flight and prefetch.

Read path of :meth:`TwoTierCache.get_or_fetch`:

1. L1 (bytes in this process): a hit costs a dict lookup and a decode.
2. On an L1 miss, one coroutine per key per process goes on (:class:`SingleFlight`); the others wait.
3. L2 (Redis, shared by every agent and replica of the bot): a hit is copied into L1 with Redis's
   remaining TTL, so L1 never outlives the shared value.
4. On an L2 miss, one replica fetches (:class:`DistributedFlight`, a short Redis lock); the others
   read its value from Redis when it lands. The fetched value is written to both tiers.

TTL: an explicit ``ttl`` is a freshness contract and is used as given. Without one, the TTL adapts
to the key's read rate around ``default_ttl`` (:class:`~.policy.TtlPolicy`), never above the
max staleness configured for the key's prefix.

Redis down: every tier call fails fast with :class:`~.redis_tier.TierUnavailable`, the cache serves
and fills L1 only, and :meth:`health` says ``degraded`` with the reason until the tier's background
probe sees Redis again.

Values must be JSON-serializable or ``bytes`` (see :mod:`.codec`); each caller gets its own decoded
copy, so one consumer mutating a result cannot corrupt another's.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal

from prometheus_client import CollectorRegistry
from pydantic import BaseModel

from tradingbot_agents.cache.codec import Codec
from tradingbot_agents.cache.l1 import L1Cache
from tradingbot_agents.cache.metrics import CacheMetrics
from tradingbot_agents.cache.policy import AccessTracker, TtlPolicy, key_prefix
from tradingbot_agents.cache.prefetch import Fetcher, Prefetcher
from tradingbot_agents.cache.redis_tier import RedisTier, TierUnavailable
from tradingbot_agents.cache.singleflight import DistributedFlight, SingleFlight
from tradingbot_agents.config import CacheSettings

if TYPE_CHECKING:
    from tradingbot_agents.config import Config

Source = Literal["l2", "peer", "fetch"]
#: How many keys' explicit TTLs are remembered (least recently set forgotten first).
EXPLICIT_TTL_MEMORY = 50_000

#: A prefetch refreshes a key whose remaining L1 life is below this fraction of its TTL.
NEAR_EXPIRY_FRACTION = 0.2
DEFAULT_COST = 1e-3


class CacheStats(BaseModel):
    """Plain numbers for the status API (the coordinator reports ``hit_rate_percent``)."""

    requests: int
    hits: int
    misses: int
    hit_rate_percent: float
    l1_hits: int
    l1_misses: int
    l2_hits: int
    l2_misses: int
    l1_bytes: int
    l1_max_bytes: int
    l1_items: int
    evictions: int
    expirations: int
    fetches: int
    fetch_errors: int
    coalesced: int
    prefetch_issued: int
    prefetch_used: int
    prefetch_accuracy: float
    redis_status: Literal["up", "down", "disabled"]
    redis_outages: int


class TwoTierCache:
    """L1 + Redis cache for one bot. ``redis=None`` runs L1-only (tests, single-process tools)."""

    def __init__(
        self,
        settings: CacheSettings | None = None,
        *,
        redis: RedisTier | None = None,
        registry: CollectorRegistry | None = None,
        ttl_policy: TtlPolicy | None = None,
        compress_threshold: int = 1024,
        lock_ttl: float = 5.0,
        lock_wait: float = 10.0,
        prefetch_threshold: float = 0.5,
        prefetch_min_support: int = 2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings or CacheSettings()
        self.codec = Codec(enable_compression=self.settings.enable_compression,
                           compress_threshold=compress_threshold)
        self.l1 = L1Cache(int(self.settings.max_size_mb * 1024 * 1024), clock=clock)
        self.redis = redis
        self.ttl_policy = ttl_policy or TtlPolicy()
        self.tracker = AccessTracker(half_life=max(1.0, self.settings.default_ttl))
        self._clock = clock
        self._flight = SingleFlight()
        self._dflight = (DistributedFlight(redis, lock_ttl=lock_ttl, wait_timeout=lock_wait)
                         if redis is not None else None)
        self.prefetcher = Prefetcher(
            needs_refresh=self._needs_refresh, load=self._prefetch_load,
            threshold=prefetch_threshold, min_support=prefetch_min_support,
            enabled=self.settings.enable_prefetching,
        )
        self._cost_ewma: dict[str, float] = {}
        self._explicit_ttl: OrderedDict[str, float] = OrderedDict()
        self._requests = self._hits = self._misses = 0
        self._l2_hits = self._l2_misses = 0
        self._fetches = self._fetch_errors = self._coalesced = 0
        self.metrics = CacheMetrics(self.stats, registry)

    @classmethod
    def from_config(cls, config: Config, *, registry: CollectorRegistry | None = None,
                    settings: CacheSettings | None = None, **kwargs: Any) -> TwoTierCache:
        """The cache of the bot ``config.bot`` on ``config.redis``. ``settings`` overrides
        ``config.cache`` (e.g. the data agent's own ``cache_size_mb``)."""
        tier = RedisTier.from_url(config.redis.url, namespace=config.bot.namespace,
                                  bot=config.bot.name, socket_timeout=config.redis.socket_timeout)
        return cls(settings or config.cache, redis=tier, registry=registry, **kwargs)

    # -- public API --------------------------------------------------------------------------
    async def get(self, key: str, default: Any = None) -> Any:
        """The cached value (L1, then L2), or ``default``; never fetches."""
        self._access(key)
        self._requests += 1
        data = self.l1.get(key)
        if data is None:
            data = await self._read_l2(key)
        if data is None:
            self._misses += 1
            return default
        self._hits += 1
        return self.codec.decode(data)

    async def set(self, key: str, value: Any, ttl: float | None = None,
                  cost: float | None = None) -> None:
        await self._store(key, self.codec.encode(value), self._ttl(key, ttl),
                          cost if cost is not None else self._cost_estimate(key))

    async def delete(self, key: str) -> None:
        self.l1.delete(key)
        if self._redis_usable():
            with contextlib.suppress(TierUnavailable):
                await self.redis.delete(key)  # type: ignore[union-attr]

    async def get_or_fetch(self, key: str, fetch: Callable[[], Awaitable[Any]],
                           ttl: float | None = None, cost: float | None = None) -> Any:
        """The cached value, or ``await fetch()`` once (per key, across this process and every
        replica on the same Redis) stored in both tiers. ``cost`` overrides the measured fetch
        latency as the eviction cost; a fetch's exception reaches every waiting caller."""
        return self.codec.decode(await self.get_or_fetch_encoded(key, fetch, ttl, cost))

    async def get_or_fetch_encoded(self, key: str, fetch: Callable[[], Awaitable[Any]],
                                   ttl: float | None = None, cost: float | None = None) -> bytes:
        """As :meth:`get_or_fetch`, but the stored bytes, not decoded. The same bytes object comes
        back for as long as the entry is unchanged, so a caller that derives something costly from
        a value (a folded series, an encoded reply) can keep the derivation while ``is`` holds, and
        skip decoding on the hot path."""
        self._access(key)
        self._requests += 1
        data = self.l1.get(key)
        if data is not None:
            self._hits += 1
            return data
        leader = not self._flight.in_flight(key)
        data, source = await self._flight.do(key, lambda: self._load(key, fetch, ttl, cost))
        if not leader:
            self._coalesced += 1
        if source == "fetch":
            self._misses += 1
        else:
            self._hits += 1
        return data

    def decode(self, data: bytes) -> Any:
        """Decode bytes returned by :meth:`get_or_fetch_encoded`."""
        return self.codec.decode(data)

    def register_prefetcher(self, prefix: str, fetcher: Fetcher) -> None:
        """Let the prefetcher fetch keys of ``prefix`` ahead: ``fetcher(key)`` returns the value."""
        self.prefetcher.register(prefix, fetcher)

    def purge_expired(self) -> int:
        """Drop expired L1 entries now (the data agent's ``cleanup_interval``)."""
        return self.l1.purge_expired()

    async def cleanup_loop(self, interval: float) -> None:
        """Purge expired L1 entries every ``interval`` seconds until cancelled (run it as a task
        with ``data_agent.cleanup_interval``); between sweeps, expired entries go when touched or
        when room is needed."""
        while True:
            await asyncio.sleep(interval)
            self.purge_expired()

    async def check(self) -> tuple[str, str]:
        """Probe Redis now and return :meth:`health`: at agent start, so a Redis that is down from
        the beginning shows as ``degraded`` before the first cache miss would reveal it."""
        if self.redis is not None:
            await self.redis.ping()
        return self.health()

    def health(self) -> tuple[str, str]:
        if self.redis is None:
            return "ok", "L1 only (no Redis configured)"
        if self.redis.available:
            return "ok", "L1 + Redis"
        return "degraded", self.redis.reason

    def stats(self) -> CacheStats:
        l1 = self.l1.counters
        pf = self.prefetcher.counters
        status: Literal["up", "down", "disabled"] = (
            "disabled" if self.redis is None else "up" if self.redis.available else "down")
        return CacheStats(
            requests=self._requests, hits=self._hits, misses=self._misses,
            hit_rate_percent=round(100.0 * self._hits / self._requests, 3) if self._requests else 0.0,
            l1_hits=l1.hits, l1_misses=l1.misses, l2_hits=self._l2_hits, l2_misses=self._l2_misses,
            l1_bytes=self.l1.bytes_used, l1_max_bytes=self.l1.max_bytes, l1_items=len(self.l1),
            evictions=l1.evictions, expirations=l1.expirations,
            fetches=self._fetches, fetch_errors=self._fetch_errors, coalesced=self._coalesced,
            prefetch_issued=pf.issued, prefetch_used=pf.used, prefetch_accuracy=pf.accuracy,
            redis_status=status, redis_outages=self.redis.outages if self.redis else 0,
        )

    async def close(self) -> None:
        await self.prefetcher.close()
        await self._flight.cancel_all()
        if self.redis is not None:
            await self.redis.close()
        self.metrics.unregister()

    # -- internals ---------------------------------------------------------------------------
    def _access(self, key: str) -> None:
        self.tracker.record(key, self._clock())
        self.prefetcher.on_access(key)

    def _ttl(self, key: str, ttl: float | None) -> float:
        """An explicit TTL wins and is remembered for the key, so that a refresh the caller did not
        make (a prefetch) keeps the caller's freshness rule instead of the adaptive default."""
        if ttl is not None:
            self._explicit_ttl[key] = ttl
            self._explicit_ttl.move_to_end(key)
            while len(self._explicit_ttl) > EXPLICIT_TTL_MEMORY:
                self._explicit_ttl.popitem(last=False)
            return ttl
        remembered = self._explicit_ttl.get(key)
        if remembered is not None:
            return remembered
        rate = self.tracker.rate(key, self._clock())
        return self.ttl_policy.ttl_for(key, self.settings.default_ttl, rate)

    def _cost_estimate(self, key: str) -> float:
        return self._cost_ewma.get(key_prefix(key), DEFAULT_COST)

    def _redis_usable(self) -> bool:
        return self.redis is not None and self.redis.available

    async def _read_l2(self, key: str, fresh_for: float = 0.0, *, count_miss: bool = True) -> bytes | None:
        """L2 lookup; a hit is copied into L1 for the rest of its Redis lifetime. A value with less
        than ``fresh_for`` seconds left counts as a miss (a prefetch refreshing a key near expiry).
        Re-reads while waiting for a peer's fetch pass ``count_miss=False``: one lookup, one miss."""
        if not self._redis_usable():
            return None
        try:
            data, left = await self.redis.get_with_ttl(key)  # type: ignore[union-attr]
        except TierUnavailable:
            return None
        if data is None or (fresh_for > 0 and left is not None and left < fresh_for):
            if count_miss:
                self._l2_misses += 1
            return None
        self._l2_hits += 1
        self.l1.set(key, data, left if left is not None else self._ttl(key, None),
                    self._cost_estimate(key))
        return data

    async def _store(self, key: str, data: bytes, ttl: float, cost: float) -> None:
        self.l1.set(key, data, ttl, cost)
        if self._redis_usable():
            with contextlib.suppress(TierUnavailable):
                await self.redis.set(key, data, ttl)  # type: ignore[union-attr]

    async def _load(self, key: str, fetch: Callable[[], Awaitable[Any]], ttl: float | None,
                    cost: float | None, fresh_for: float = 0.0) -> tuple[bytes, Source]:
        data = await self._read_l2(key, fresh_for)
        if data is not None:
            return data, "l2"

        async def fetch_and_store() -> tuple[bytes, Source]:
            started = time.perf_counter()
            try:
                value = await fetch()
            except Exception:
                self._fetch_errors += 1
                raise
            elapsed = time.perf_counter() - started
            self._fetches += 1
            self.metrics.fetch_seconds.observe(elapsed)
            prefix = key_prefix(key)
            self._cost_ewma[prefix] = 0.8 * self._cost_ewma.get(prefix, elapsed) + 0.2 * elapsed
            encoded = self.codec.encode(value)
            await self._store(key, encoded, self._ttl(key, ttl), cost if cost is not None else elapsed)
            return encoded, "fetch"

        async def read_peer() -> tuple[bytes, Source] | None:
            shared = await self._read_l2(key, fresh_for, count_miss=False)
            return (shared, "peer") if shared is not None else None

        if self._dflight is not None and self._redis_usable():
            return await self._dflight.run(key, fetch_and_store, read_peer)
        return await fetch_and_store()

    def _needs_refresh(self, key: str) -> bool:
        left = self.l1.remaining_ttl(key)
        if left is None:
            return True
        ttl = self.l1.ttl_of(key) or 0.0
        return left < NEAR_EXPIRY_FRACTION * ttl

    async def _prefetch_load(self, key: str, fetcher: Fetcher) -> None:
        async def fetch() -> Any:
            return await fetcher(key)

        # A key near expiry in L1 is likely near expiry in Redis too: only a value with at least
        # the near-expiry margin left saves the fetch.
        fresh_for = NEAR_EXPIRY_FRACTION * (self.l1.ttl_of(key) or 0.0)
        await self._flight.do(key, lambda: self._load(key, fetch, None, None, fresh_for))


_global: TwoTierCache | None = None


def get_global_cache() -> TwoTierCache:
    """The process-wide cache (the seed's API). An agent installs its configured cache with
    :func:`set_global_cache` at start; until then this is an L1-only cache with default settings,
    so library code using :func:`cache_decorator` works in scripts and tests without Redis."""
    global _global  # noqa: PLW0603 - the seed's API is a process-wide singleton
    if _global is None:
        _global = TwoTierCache()
    return _global


def set_global_cache(cache: TwoTierCache | None) -> None:
    global _global  # noqa: PLW0603
    _global = cache
