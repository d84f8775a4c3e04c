"""Redis dies mid-run: the cache keeps serving from L1, says it is degraded and why, and comes back
to two tiers on its own when a Redis returns on the same address, with no new cache object."""

from __future__ import annotations

import asyncio
import signal
import time

import redis.asyncio as aioredis

from tradingbot_agents.cache import TierUnavailable
from tradingbot_agents.localservers import ServerProcess, free_port, start_redis

from .conftest import MakeCache


async def _wait_health(cache, want: str, timeout: float = 5.0) -> float:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    while cache.health()[0] != want:
        if time.monotonic() - started > timeout:
            raise AssertionError(f"health stayed {cache.health()} for {timeout}s, wanted {want}")
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def test_redis_killed_then_back_on_the_same_port(make_cache: MakeCache, bot_name: str) -> None:
    servers: list[ServerProcess] = [await asyncio.to_thread(start_redis)]
    try:
        port = servers[0].port
        cache = make_cache(url=servers[0].url, socket_timeout=0.5, probe_interval=0.1)
        calls: list[str] = []

        async def fetch_price() -> dict[str, str]:
            calls.append("price")
            return {"price": "37000"}

        await cache.set("ticker:BTCUSDT", {"price": "1"}, ttl=60)
        assert cache.health()[0] == "ok"

        servers[0].kill()

        # Served from L1 as if nothing happened.
        assert await cache.get("ticker:BTCUSDT") == {"price": "1"}
        # A miss has to reach for Redis, finds it gone, and still answers via a fetch.
        started = time.monotonic()
        assert await cache.get_or_fetch("ticker:ETHUSDT", fetch_price, ttl=60) == {"price": "37000"}
        assert time.monotonic() - started < 1.5
        status, reason = cache.health()
        assert status == "degraded"
        assert "redis unavailable" in reason and "L1 only" in reason
        assert cache.stats().redis_status == "down"
        # Fails fast while down: no socket timeout per call.
        started = time.monotonic()
        for i in range(20):
            await cache.set(f"k{i}", i, ttl=60)
            assert await cache.get(f"k{i}") == i
        assert time.monotonic() - started < 0.5
        assert cache.redis is not None
        try:
            await cache.redis.get("x")
            raise AssertionError("a down tier must raise TierUnavailable")
        except TierUnavailable:
            pass

        servers.append(await asyncio.to_thread(start_redis, port=port))
        await _wait_health(cache, "ok")
        assert cache.health() == ("ok", "L1 + Redis")
        assert cache.stats().redis_outages == 1

        # Two tiers again: a write lands in the new Redis, visible to a fresh client.
        await cache.set("ticker:SOLUSDT", {"price": "60"}, ttl=60)
        client = aioredis.Redis.from_url(servers[-1].url)
        try:
            assert await client.exists(f"tb:test:{bot_name}:cache:ticker:SOLUSDT") == 1
        finally:
            await client.aclose()
        assert await make_cache(url=servers[-1].url).get("ticker:SOLUSDT") == {"price": "60"}
    finally:
        for server in servers:
            await asyncio.to_thread(server.stop)


async def test_redis_that_hangs_times_out_to_degraded_and_recovers(make_cache: MakeCache) -> None:
    """A frozen Redis (SIGSTOP: the port still accepts, nothing answers) is an outage too."""
    server = await asyncio.to_thread(start_redis)
    try:
        cache = make_cache(url=server.url, socket_timeout=0.2, probe_interval=0.1)
        await cache.set("ticker:BTCUSDT", {"price": "1"}, ttl=60)
        server.process.send_signal(signal.SIGSTOP)
        try:
            started = time.monotonic()
            assert await cache.get_or_fetch("ticker:ETHUSDT", _constant({"price": "2"}), ttl=60) == {
                "price": "2"}
            assert time.monotonic() - started < 1.5  # bounded by the socket timeout, not hung
            status, reason = cache.health()
            assert status == "degraded" and "Timeout" in reason
            assert await cache.get("ticker:BTCUSDT") == {"price": "1"}
        finally:
            server.process.send_signal(signal.SIGCONT)
        await _wait_health(cache, "ok")
        await cache.set("after", 1, ttl=60)
        assert await make_cache(url=server.url).get("after") == 1
    finally:
        await asyncio.to_thread(server.stop)


def _constant(value: object):  # type: ignore[no-untyped-def]
    async def fetch() -> object:
        return value

    return fetch


async def test_redis_down_from_the_start_is_reported_by_check(make_cache: MakeCache) -> None:
    cache = make_cache(url=f"redis://127.0.0.1:{free_port()}/0", socket_timeout=0.2)
    status, reason = await cache.check()
    assert status == "degraded" and "redis unavailable" in reason
    # Still a working cache, on L1 alone.
    assert await cache.get_or_fetch("ticker:BTCUSDT", _constant({"price": "1"}), ttl=60) == {"price": "1"}
    assert await cache.get("ticker:BTCUSDT") == {"price": "1"}
    assert cache.stats().redis_status == "down"
