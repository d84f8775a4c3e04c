"""Fixtures for the cache tests: caches on the session's real Redis, closed after each test.

Each test gets its own bot identity (``bot_name``), so its keys never meet another test's, the same
isolation two TradingBots get on one Redis.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

from tradingbot_agents.cache import RedisTier, TwoTierCache
from tradingbot_agents.config import CacheSettings

MakeCache = Callable[..., TwoTierCache]


@pytest.fixture
async def make_cache(redis_url: str, bot_name: str) -> AsyncIterator[MakeCache]:
    """``make_cache(bot=..., url=..., **kwargs)``: a TwoTierCache with a private registry.

    Settings keys (``max_size_mb``, ``default_ttl``, ...) go to :class:`CacheSettings`; the rest to
    :class:`TwoTierCache`. Redis-tier options: ``socket_timeout``, ``probe_interval``."""
    made: list[TwoTierCache] = []
    settings_keys = set(CacheSettings.model_fields)

    def build(*, bot: str | None = None, url: str | None = None, namespace: str = "test",
              socket_timeout: float = 0.5, probe_interval: float = 0.1, **kwargs: Any) -> TwoTierCache:
        settings = CacheSettings(**{k: kwargs.pop(k) for k in list(kwargs) if k in settings_keys})
        tier = RedisTier.from_url(url or redis_url, namespace=namespace, bot=bot or bot_name,
                                  socket_timeout=socket_timeout, probe_interval=probe_interval)
        cache = TwoTierCache(settings, redis=tier, registry=CollectorRegistry(), **kwargs)
        made.append(cache)
        return cache

    yield build
    for cache in made:
        await cache.close()


@pytest.fixture
async def raw_redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """A plain client, to look at what the cache really wrote."""
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()
