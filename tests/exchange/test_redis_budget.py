"""Two processes' limiters on one egress share the weight budget and the 429/418 blocks via Redis."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from tradingbot_agents.exchange import IPBanned, RateLimitConfig, RateLimiter
from tradingbot_agents.exchange.redis_budget import RedisWeightBudget


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[Any]:
    client = aioredis.from_url(redis_url)
    yield client
    await client.aclose()


async def test_two_limiters_share_one_budget(redis_client: Any) -> None:
    egress = f"ip-{uuid.uuid4().hex[:8]}"
    config = RateLimitConfig(limit=6, window_s=1.0)
    a = RateLimiter(RedisWeightBudget(redis_client, egress), config)
    b = RateLimiter(RedisWeightBudget(redis_client, egress), config)
    await asyncio.sleep(1.01 - time.time() % 1)  # start at a window's beginning
    for _ in range(3):
        await a.acquire(1)
        await b.acquire(1)
    assert await a.used() == 6 and await b.used() == 6  # one counter, seen by both
    started = time.monotonic()
    await b.acquire(1)  # the shared budget is spent: b waits for the next window
    assert time.monotonic() - started >= 0.5
    assert b.waits >= 1


async def test_a_429_or_418_seen_by_one_limiter_holds_the_other(redis_client: Any) -> None:
    egress = f"ip-{uuid.uuid4().hex[:8]}"
    config = RateLimitConfig(limit=100, window_s=60.0)
    a = RateLimiter(RedisWeightBudget(redis_client, egress), config)
    b = RateLimiter(RedisWeightBudget(redis_client, egress), config)
    await a.on_rate_limited(0.3)
    started = time.monotonic()
    await b.acquire(1)
    assert time.monotonic() - started >= 0.25
    await a.on_banned(time.time() + 0.3, "IP banned until ...")
    with pytest.raises(IPBanned):
        await b.acquire(1)
    assert b.health()[0] == "failed"
    await a.observe_headers({"X-MBX-USED-WEIGHT-1M": "42"}, time.time())
    assert await b.used() >= 42


async def test_redis_outage_falls_back_to_a_local_budget() -> None:
    dead = aioredis.from_url("redis://127.0.0.1:1", socket_connect_timeout=0.2)  # nothing listens on port 1
    limiter = RateLimiter(RedisWeightBudget(dead, "ip-dead"), RateLimitConfig(limit=3, window_s=60.0))
    try:
        for _ in range(3):
            await limiter.acquire(1)
        assert await limiter.used() == 3
        state, reason = limiter.health()
        assert state == "degraded" and "Redis" in reason
        await limiter.on_banned(time.time() + 0.2, "IP banned until ...")
        with pytest.raises(IPBanned):  # a ban is honoured even without Redis
            await limiter.acquire(1)
    finally:
        await dead.aclose()
