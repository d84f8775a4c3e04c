"""A :class:`~tradingbot_agents.exchange.limiter.WeightBudget` kept in Redis, shared per egress IP.

Binance counts weight per IP, so every process behind one egress (data-agent replicas, several
bots) must draw from one budget (field note: Hummingbot #7017). The key therefore names the egress,
not the bot: ``<prefix>:<egress>:w:<window start>`` (an integer, ``INCRBY``, expiring after two
windows) and ``<prefix>:<egress>:block`` (a 429/418 block, expiring when it ends). Each operation is
one Lua script, so a check-and-reserve is atomic across processes.

When Redis is unreachable the budget falls back to a process-local one (trading on, each process
counting alone, which is what a single replica would do) and says so in ``degraded``, which the
limiter's ``health()`` reports; it returns to Redis on the next call that succeeds.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

from redis.exceptions import RedisError

from tradingbot_agents.exchange.limiter import Block, BlockKind, InMemoryWeightBudget

_RESERVE = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local weight, limit, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if used + weight <= limit or (used == 0 and weight > limit) then
  redis.call('INCRBY', KEYS[1], weight)
  redis.call('PEXPIRE', KEYS[1], ttl)
  return 1
end
return 0
"""

_OBSERVE = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > used then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', tonumber(ARGV[2]))
end
return 1
"""

# A block replaces the current one when it ends later, or when it is a ban (a ban always wins).
_BLOCK = """
local current = redis.call('GET', KEYS[1])
if current then
  local c = cjson.decode(current)
  if c['kind'] == 'banned' and ARGV[2] ~= 'banned' and tonumber(c['until']) > tonumber(ARGV[3]) then
    return 0
  end
  if ARGV[2] ~= 'banned' and tonumber(c['until']) >= tonumber(ARGV[3]) then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', tonumber(ARGV[4]))
return 1
"""


class RedisWeightBudget:
    """Weight budget shared through Redis (``redis.asyncio`` client passed in)."""

    def __init__(self, redis: Any, egress: str = "default", *, prefix: str = "tb:exchange-weight") -> None:
        self._redis = redis
        self._base = f"{prefix}:{egress}"
        self._reserve = redis.register_script(_RESERVE)
        self._observe = redis.register_script(_OBSERVE)
        self._block = redis.register_script(_BLOCK)
        self._local = InMemoryWeightBudget()
        self.degraded = ""

    def _lost(self, exc: Exception) -> None:
        self.degraded = f"weight budget in Redis unreachable ({type(exc).__name__}); counting locally"

    def _window_key(self, window_s: float, at: float) -> tuple[str, float]:
        start = math.floor(at / window_s) * window_s
        return f"{self._base}:w:{int(start * 1000)}", start

    async def try_reserve(self, weight: int, limit: int, window_s: float, now: float) -> float:
        key, start = self._window_key(window_s, now)
        try:
            ok = await self._reserve(keys=[key], args=[weight, limit, int(window_s * 2000)])
        except RedisError as exc:
            self._lost(exc)
            return await self._local.try_reserve(weight, limit, window_s, now)
        self.degraded = ""
        return 0.0 if int(ok) == 1 else max(start + window_s - now, 0.001)

    async def observe_used(self, used: int, window_s: float, at: float) -> None:
        key, _ = self._window_key(window_s, at)
        try:
            await self._observe(keys=[key], args=[used, int(window_s * 2000)])
        except RedisError as exc:
            self._lost(exc)
            await self._local.observe_used(used, window_s, at)

    async def used(self, window_s: float, now: float) -> int:
        key, _ = self._window_key(window_s, now)
        try:
            return int(await self._redis.get(key) or 0)
        except RedisError as exc:
            self._lost(exc)
            return await self._local.used(window_s, now)

    async def block(self, block: Block) -> None:
        ttl_ms = max(int((block.until - time.time()) * 1000), 1)
        payload = json.dumps({"kind": block.kind.value, "until": block.until, "reason": block.reason})
        await self._local.block(block)  # also kept locally: a block must survive a Redis outage
        try:
            await self._block(keys=[f"{self._base}:block"], args=[payload, block.kind.value, block.until, ttl_ms])
        except RedisError as exc:
            self._lost(exc)

    async def current_block(self, now: float) -> Block | None:
        try:
            raw = await self._redis.get(f"{self._base}:block")
        except RedisError as exc:
            self._lost(exc)
            return await self._local.current_block(now)
        if raw is None:
            return await self._local.current_block(now)
        data = json.loads(raw)
        if float(data["until"]) <= now:
            return None
        return Block(BlockKind(data["kind"]), float(data["until"]), str(data["reason"]))
