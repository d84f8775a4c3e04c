"""One data-agent replica pushes the periodic market data; the others only answer look-ups.

Every replica fetches through the shared cache, so exchange calls are not multiplied either way;
the lease only keeps consumers from receiving each update once per replica. It is a Redis key set
with ``NX`` and a TTL of a few poll intervals, renewed by its holder with compare-and-expire. If
Redis is unreachable every replica publishes: duplicates are harmless (updates are idempotent,
latest-value data), silence is not.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""


class PublisherLease:
    def __init__(self, redis: Any, key: str, holder: str, ttl_s: float) -> None:
        self.redis = redis
        self.key = key
        self.holder = holder
        self.ttl_ms = max(1, int(ttl_s * 1000))
        self.held = False

    async def refresh(self) -> bool:
        """Take or renew the lease; True if this replica should publish now."""
        try:
            if self.held and await self.redis.eval(_RENEW, 1, self.key, self.holder, self.ttl_ms):
                return True
            self.held = bool(await self.redis.set(self.key, self.holder, nx=True, px=self.ttl_ms))
            if self.held:
                log.info("this replica now publishes market data")
            return self.held
        except Exception as exc:  # Redis down: publish rather than go silent
            log.debug("publisher lease unavailable (%s); publishing anyway", exc)
            self.held = False
            return True

    async def release(self) -> None:
        if self.held:
            try:
                if await self.redis.get(self.key) == self.holder.encode():
                    await self.redis.delete(self.key)
            except Exception:
                pass
            self.held = False
