"""The two-tier cache on a real Redis: single-flight, replicas, isolation, TTL, prefetch, metrics."""

from __future__ import annotations

import asyncio
import json

import pytest
import redis.asyncio as aioredis
from prometheus_client import generate_latest

from tradingbot_agents.cache import (
    Codec,
    TwoTierCache,
    cache_decorator,
    get_global_cache,
    set_global_cache,
)

from .conftest import MakeCache


class Counter:
    """An async fetch that counts its calls and takes a while, like an exchange request."""

    def __init__(self, value: object = None, delay: float = 0.05, fail: Exception | None = None) -> None:
        self.calls = 0
        self.value = value
        self.delay = delay
        self.fail = fail

    async def __call__(self) -> object:
        self.calls += 1
        await asyncio.sleep(self.delay)
        if self.fail is not None:
            raise self.fail
        return self.value


async def test_100_concurrent_gets_make_one_fetch(make_cache: MakeCache) -> None:
    cache = make_cache()
    fetch = Counter({"symbol": "BTCUSDT", "price": "37000.1"}, delay=0.1)
    results = await asyncio.gather(*(cache.get_or_fetch("ticker:BTCUSDT", fetch, ttl=30)
                                     for _ in range(100)))
    assert fetch.calls == 1
    assert all(r == {"symbol": "BTCUSDT", "price": "37000.1"} for r in results)
    results[0]["price"] = "mutated"  # each caller has its own copy
    assert results[1]["price"] == "37000.1"
    stats = cache.stats()
    assert stats.fetches == 1 and stats.coalesced == 99
    # Now cached: no more fetches, all L1 hits.
    await asyncio.gather(*(cache.get_or_fetch("ticker:BTCUSDT", fetch, ttl=30) for _ in range(50)))
    assert fetch.calls == 1
    assert cache.stats().l1_hits >= 50


async def test_concurrent_waiters_share_the_exception_and_errors_are_not_cached(
        make_cache: MakeCache) -> None:
    cache = make_cache()
    failing = Counter(delay=0.05, fail=RuntimeError("exchange 503"))
    results = await asyncio.gather(*(cache.get_or_fetch("ticker:ETHUSDT", failing) for _ in range(20)),
                                   return_exceptions=True)
    assert failing.calls == 1
    assert all(isinstance(r, RuntimeError) and str(r) == "exchange 503" for r in results)
    assert cache.stats().fetch_errors == 1
    ok = Counter({"price": "2000"})
    assert await cache.get_or_fetch("ticker:ETHUSDT", ok) == {"price": "2000"}
    assert ok.calls == 1


async def test_two_replicas_on_one_redis_fetch_once(make_cache: MakeCache) -> None:
    a, b = make_cache(), make_cache()  # same bot, separate processes' worth of state
    fetch = Counter([1, 2, 3], delay=0.2)
    results = await asyncio.gather(*(c.get_or_fetch("klines:1h:BTCUSDT", fetch, ttl=30)
                                     for _ in range(25) for c in (a, b)))
    assert fetch.calls == 1
    assert all(r == [1, 2, 3] for r in results)
    assert {a.stats().fetches, b.stats().fetches} == {0, 1}
    loser = a if a.stats().fetches == 0 else b
    assert loser.stats().l2_hits >= 1  # it got the winner's value from Redis


async def test_replica_fetches_itself_when_the_lock_holder_dies(make_cache: MakeCache) -> None:
    cache = make_cache(lock_ttl=5.0)
    assert cache.redis is not None
    # A "dead replica" took the lock with a short life and will never write a value.
    assert await cache.redis.try_lock("ticker:SOLUSDT", "dead-replica", ttl=0.3)
    fetch = Counter({"price": "60"}, delay=0.0)
    started = asyncio.get_running_loop().time()
    assert await cache.get_or_fetch("ticker:SOLUSDT", fetch, ttl=30) == {"price": "60"}
    waited = asyncio.get_running_loop().time() - started
    assert fetch.calls == 1
    assert 0.25 <= waited < 2.0  # waited for the lock to expire, not for the full wait bound


async def test_values_are_shared_through_redis_with_its_ttl(
        make_cache: MakeCache, raw_redis: aioredis.Redis, bot_name: str) -> None:
    writer, reader = make_cache(), make_cache()
    await writer.set("exchangeinfo", {"symbols": ["BTCUSDT"]}, ttl=0.3)
    pttl = await raw_redis.pttl(f"tb:test:{bot_name}:cache:exchangeinfo")
    assert 0 < pttl <= 300
    assert await reader.get("exchangeinfo") == {"symbols": ["BTCUSDT"]}
    assert reader.stats().l2_hits == 1
    assert reader.l1.remaining_ttl("exchangeinfo") <= 0.3  # L1 copy expires with Redis's
    await asyncio.sleep(0.4)
    assert await reader.get("exchangeinfo") is None
    assert await make_cache().get("exchangeinfo", default="gone") == "gone"
    await writer.set("k", 1, ttl=30)
    await writer.delete("k")
    assert await reader.get("k") is None


async def test_two_bot_identities_never_collide(
        make_cache: MakeCache, raw_redis: aioredis.Redis, bot_name: str) -> None:
    bot_a, bot_b = f"{bot_name}-a", f"{bot_name}-b"
    a, b = make_cache(bot=bot_a), make_cache(bot=bot_b)
    await a.set("ticker:BTCUSDT", {"price": "1"}, ttl=30)
    assert await b.get("ticker:BTCUSDT") is None
    fetch_b = Counter({"price": "2"}, delay=0.0)
    assert await b.get_or_fetch("ticker:BTCUSDT", fetch_b, ttl=30) == {"price": "2"}
    assert fetch_b.calls == 1  # a's value was not visible to b
    assert await make_cache(bot=bot_a).get("ticker:BTCUSDT") == {"price": "1"}
    assert await make_cache(bot=bot_b).get("ticker:BTCUSDT") == {"price": "2"}
    keys = sorted([k.decode() async for k in raw_redis.scan_iter(match=f"tb:test:{bot_name}-*")])
    assert keys == [f"tb:test:{bot_a}:cache:ticker:BTCUSDT", f"tb:test:{bot_b}:cache:ticker:BTCUSDT"]


async def test_compressed_bytes_in_redis_round_trip(
        make_cache: MakeCache, raw_redis: aioredis.Redis, bot_name: str) -> None:
    klines = [[1700000000000 + i * 3600_000, "37000.1", "37100.0", "36900.5", "37050.2"]
              for i in range(300)]
    cache = make_cache()
    await cache.set("klines:1h:BTCUSDT", klines, ttl=30)
    raw = await raw_redis.get(f"tb:test:{bot_name}:cache:klines:1h:BTCUSDT")
    assert raw is not None and Codec.is_compressed(raw)
    assert len(raw) < len(json.dumps(klines)) / 3
    assert await make_cache().get("klines:1h:BTCUSDT") == klines  # decoded by another instance

    plain = make_cache(enable_compression=False)
    await plain.set("klines:1h:ETHUSDT", klines, ttl=30)
    raw = await raw_redis.get(f"tb:test:{bot_name}:cache:klines:1h:ETHUSDT")
    assert raw is not None and not Codec.is_compressed(raw)


async def test_adaptive_ttl_applies_when_no_ttl_is_given(make_cache: MakeCache) -> None:
    from tradingbot_agents.cache import TtlPolicy

    cache = make_cache(default_ttl=10, ttl_policy=TtlPolicy(max_staleness={"ticker:": 3.0}))
    for _ in range(50):
        await cache.get("klines:hot")
    await cache.set("klines:hot", [1], ttl=None)
    await cache.set("klines:cold", [1], ttl=None)
    await cache.set("ticker:hot", [1], ttl=None)
    for _ in range(50):
        await cache.get("ticker:hot")
    await cache.set("ticker:hot", [1], ttl=None)
    hot, cold = cache.l1.ttl_of("klines:hot"), cache.l1.ttl_of("klines:cold")
    assert hot is not None and cold is not None
    assert hot > 10 > cold
    assert cache.l1.ttl_of("ticker:hot") == 3.0


async def test_prefetch_learns_a_to_b_and_counts_accuracy(make_cache: MakeCache) -> None:
    cache = make_cache(prefetch_min_support=2, prefetch_threshold=0.5)
    prefetched: list[str] = []

    async def klines_fetcher(key: str) -> list[str]:
        prefetched.append(key)
        return [key]

    cache.register_prefetcher("klines", klines_fetcher)
    ticker = Counter({"price": "1"}, delay=0.0)
    direct = Counter(["direct"], delay=0.0)
    for _ in range(2):  # a consumer reads the ticker, then the klines of the same pair
        await cache.get_or_fetch("ticker:BTCUSDT", ticker, ttl=30)
        await cache.get_or_fetch("klines:BTCUSDT", direct, ttl=30)
        await cache.delete("klines:BTCUSDT")
    await cache.prefetcher.drain()
    assert prefetched == []  # not enough support yet

    await cache.get_or_fetch("ticker:BTCUSDT", ticker, ttl=30)
    await cache.prefetcher.drain()
    assert prefetched == ["klines:BTCUSDT"]
    assert cache.l1.peek("klines:BTCUSDT") is not None  # there before anyone asked
    calls_before = direct.calls
    assert await cache.get_or_fetch("klines:BTCUSDT", direct, ttl=30) == ["klines:BTCUSDT"]
    assert direct.calls == calls_before  # served from the prefetch
    stats = cache.stats()
    assert (stats.prefetch_issued, stats.prefetch_used, stats.prefetch_accuracy) == (1, 1, 1.0)

    # A fresh key is not prefetched again; a key with no fetcher never is.
    await cache.get_or_fetch("ticker:BTCUSDT", ticker, ttl=30)
    await cache.prefetcher.drain()
    assert prefetched == ["klines:BTCUSDT"]

    # A prefetch nobody reads lowers the accuracy.
    for _ in range(2):
        await cache.get_or_fetch("ticker:ETHUSDT", ticker, ttl=30)
        await cache.get_or_fetch("klines:ETHUSDT", direct, ttl=30)
        await cache.delete("klines:ETHUSDT")
    await cache.get_or_fetch("ticker:ETHUSDT", ticker, ttl=30)
    await cache.prefetcher.drain()
    stats = cache.stats()
    assert prefetched[-1] == "klines:ETHUSDT"
    assert (stats.prefetch_issued, stats.prefetch_used, stats.prefetch_accuracy) == (2, 1, 0.5)


async def test_prefetch_can_be_disabled(make_cache: MakeCache) -> None:
    cache = make_cache(enable_prefetching=False, prefetch_min_support=1)
    calls: list[str] = []

    async def fetcher(key: str) -> int:
        calls.append(key)
        return 1

    cache.register_prefetcher("b", fetcher)
    for _ in range(3):
        await cache.get("a:1")
        await cache.get("b:1")
    await cache.prefetcher.drain()
    assert calls == [] and cache.stats().prefetch_issued == 0


async def test_cache_decorator_on_an_async_function(make_cache: MakeCache, raw_redis: aioredis.Redis,
                                                    bot_name: str) -> None:
    cache = make_cache()
    calls: list[tuple[str, str]] = []

    @cache_decorator(ttl=30, key_prefix="price", cache=cache)
    async def price(symbol: str, quote: str = "USDT") -> dict[str, str]:
        calls.append((symbol, quote))
        return {"symbol": symbol + quote}

    assert await price("BTC") == {"symbol": "BTCUSDT"}
    assert await price("BTC") == {"symbol": "BTCUSDT"}
    assert await price(symbol="BTC", quote="USDT") == {"symbol": "BTCUSDT"}  # same key
    assert await price("ETH") == {"symbol": "ETHUSDT"}
    assert calls == [("BTC", "USDT"), ("ETH", "USDT")]
    assert await raw_redis.exists(f"tb:test:{bot_name}:cache:price:BTC:USDT") == 1
    assert price.__name__ == "price"

    with pytest.raises(TypeError):
        cache_decorator(ttl=1)(lambda: 1)  # type: ignore[arg-type]


async def test_global_cache_and_decorator_default(make_cache: MakeCache) -> None:
    previous = get_global_cache()
    assert isinstance(previous, TwoTierCache)
    assert get_global_cache() is previous
    installed = make_cache()
    set_global_cache(installed)
    try:
        hits: list[int] = []

        @cache_decorator(ttl=30)
        async def square(x: int) -> int:
            hits.append(x)
            return x * x

        assert [await square(3), await square(3), await square(x=3)] == [9, 9, 9]
        assert hits == [3]
        assert installed.stats().hits == 2
    finally:
        set_global_cache(previous)


async def test_metrics_and_stats(make_cache: MakeCache) -> None:
    cache = make_cache()
    fetch = Counter({"p": 1}, delay=0.01)
    await cache.get_or_fetch("ticker:A", fetch, ttl=30)
    for _ in range(3):
        await cache.get_or_fetch("ticker:A", fetch, ttl=30)
    stats = cache.stats()
    assert (stats.requests, stats.hits, stats.misses) == (4, 3, 1)
    assert stats.hit_rate_percent == 75.0
    assert stats.l1_bytes > 0 and stats.redis_status == "up"
    text = generate_latest(cache.metrics.registry).decode()
    assert 'tradingbot_cache_hits_total{tier="l1"} 3.0' in text
    assert 'tradingbot_cache_misses_total{tier="l2"} 1.0' in text
    assert "tradingbot_cache_hit_rate 0.75" in text
    assert "tradingbot_cache_fetch_seconds_count 1.0" in text
    assert f"tradingbot_cache_l1_bytes {float(stats.l1_bytes)}" in text
    assert "tradingbot_cache_redis_up 1.0" in text
    assert cache.health() == ("ok", "L1 + Redis")


async def test_cleanup_loop_purges_expired_entries(make_cache: MakeCache) -> None:
    cache = make_cache()
    for i in range(10):
        await cache.set(f"short:{i}", i, ttl=0.05)
    await cache.set("long", 1, ttl=60)
    task = asyncio.create_task(cache.cleanup_loop(0.05))
    try:
        await asyncio.sleep(0.25)
    finally:
        task.cancel()
    assert len(cache.l1) == 1 and cache.stats().expirations == 10


async def test_prefetch_keeps_the_callers_explicit_ttl(redis_url: str, bot_name: str) -> None:
    """A key the caller stores with ttl=0.3 must not live longer because a prefetch refreshed it."""
    from tradingbot_agents.cache import RedisTier
    from tradingbot_agents.config import CacheSettings

    tier = RedisTier.from_url(redis_url, namespace="test", bot=bot_name)
    cache = TwoTierCache(CacheSettings(default_ttl=300), redis=tier, prefetch_min_support=1,
                         prefetch_threshold=0.1)
    fetched: list[str] = []

    async def fetcher(key: str) -> str:
        fetched.append(key)
        return key

    cache.register_prefetcher("b", fetcher)
    for _ in range(3):  # teach a:1 -> b:1
        await cache.get_or_fetch("a:1", lambda: fetcher("a:1"), ttl=0.3)
        await cache.get_or_fetch("b:1", lambda: fetcher("b:1"), ttl=0.3)
        await asyncio.sleep(0.35)
    await cache.get_or_fetch("a:1", lambda: fetcher("a:1"), ttl=0.3)
    await asyncio.sleep(0.1)  # let a prefetch of b:1 land
    assert cache.stats().prefetch_issued >= 1
    left = cache.l1.remaining_ttl("b:1")
    assert left is not None and left <= 0.3
    await cache.close()
