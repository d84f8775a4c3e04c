"""Two-tier cache for the agents: in-process L1 (bytes, byte-bounded, GDSF eviction) over a shared
Redis L2, with single-flight fetches across processes, adaptive TTLs and access-pattern prefetch.

Start with :class:`TwoTierCache` (``TwoTierCache.from_config(config)`` in an agent) or the seed's
:func:`get_global_cache` / :func:`cache_decorator`.
"""

from tradingbot_agents.cache.cache import CacheStats, TwoTierCache, get_global_cache, set_global_cache
from tradingbot_agents.cache.codec import Codec, CodecError
from tradingbot_agents.cache.decorator import cache_decorator
from tradingbot_agents.cache.l1 import L1Cache
from tradingbot_agents.cache.policy import AccessTracker, TtlPolicy, gdsf_priority
from tradingbot_agents.cache.prefetch import Prefetcher, TransitionModel
from tradingbot_agents.cache.redis_tier import RedisTier, TierUnavailable, cache_key_prefix
from tradingbot_agents.cache.singleflight import DistributedFlight, SingleFlight

__all__ = [
    "AccessTracker",
    "CacheStats",
    "Codec",
    "CodecError",
    "DistributedFlight",
    "L1Cache",
    "Prefetcher",
    "RedisTier",
    "SingleFlight",
    "TierUnavailable",
    "TransitionModel",
    "TtlPolicy",
    "TwoTierCache",
    "cache_decorator",
    "cache_key_prefix",
    "gdsf_priority",
    "get_global_cache",
    "set_global_cache",
]
