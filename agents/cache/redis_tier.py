"""The shared tier: the same encoded bytes in Redis, seen by every agent and replica of one bot.

Keys: ``tb:<namespace>:<bot>:cache:<key>`` (see ``/work/shared/decisions.md``: one bot, one
namespace), so two TradingBots on one Redis never read each other's values. Expiry is Redis's own
(``SET ... PX``): no sweeper, and every replica sees the same deadline.

Failure model. Redis going away must cost the bot its shared cache, never its data: every operation
that hits a connection error or a timeout raises :class:`TierUnavailable`, the tier marks itself
*down* with the reason, and from then on fails fast (no socket timeout per call) while a background
probe PINGs every ``probe_interval`` seconds. The first PONG marks it *up* again and drops the pooled
connections that died with the old server, so recovery needs no restart and no new cache object.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable
from typing import TypeVar

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Errors that mean "Redis is not reachable", as opposed to a bad command.
OUTAGE_ERRORS: tuple[type[BaseException], ...] = (
    RedisConnectionError, RedisTimeoutError, OSError, asyncio.TimeoutError,
)

# Delete the lock only if we still hold it: a holder that overran its lock TTL must not release
# the lock a successor took since.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class TierUnavailable(Exception):
    """Redis is down or timed out; the two-tier cache goes L1-only until the probe succeeds."""


def cache_key_prefix(namespace: str, bot: str) -> str:
    return f"tb:{namespace}:{bot}:cache:"


class RedisTier:
    """Byte values in Redis under one bot's key namespace, with outage detection and recovery."""

    def __init__(self, client: aioredis.Redis, *, namespace: str, bot: str,
                 probe_interval: float = 0.5, owns_client: bool = False) -> None:
        """``client`` may be shared with other code (``owns_client=False``, not closed here); its
        own retry policy then applies. :meth:`from_url` builds one tuned for fast failure."""
        self.client = client
        self.owns_client = owns_client
        self.prefix = cache_key_prefix(namespace, bot)
        self.lock_prefix = f"tb:{namespace}:{bot}:cachelock:"
        self.probe_interval = probe_interval
        self._up = True
        self._reason = ""
        self._down_since: float | None = None
        self._probe: asyncio.Task[None] | None = None
        self._release = client.register_script(_RELEASE)
        self.outages = 0

    @classmethod
    def from_url(cls, url: str, *, namespace: str, bot: str, socket_timeout: float = 1.0,
                 probe_interval: float = 0.5) -> RedisTier:
        """One retry without backoff: it re-dials a pooled connection that went stale across a Redis
        restart, yet a real outage is reported at once instead of after redis-py's default
        exponential backoff (seconds of stalled reads that L1 could have served)."""
        client = aioredis.Redis.from_url(
            url, socket_timeout=socket_timeout, socket_connect_timeout=socket_timeout,
            retry=Retry(NoBackoff(), 1), health_check_interval=0,
        )
        return cls(client, namespace=namespace, bot=bot, probe_interval=probe_interval,
                   owns_client=True)

    # -- state -------------------------------------------------------------------------------
    @property
    def available(self) -> bool:
        return self._up

    @property
    def reason(self) -> str:
        return self._reason

    def full_key(self, key: str) -> str:
        return self.prefix + key

    def _check(self) -> None:
        if not self._up:
            raise TierUnavailable(self._reason)

    def _mark_down(self, exc: BaseException) -> TierUnavailable:
        detail = f"{type(exc).__name__}: {exc}".rstrip(": ")
        if self._up:
            self._up = False
            self._down_since = time.monotonic()
            self.outages += 1
            self._reason = f"redis unavailable ({detail}); serving from L1 only"
            log.warning("cache: %s", self._reason)
        if self._probe is None or self._probe.done():
            with contextlib.suppress(RuntimeError):  # no running loop: probe starts on next use
                self._probe = asyncio.get_running_loop().create_task(self._probe_loop())
        return TierUnavailable(self._reason)

    async def _probe_loop(self) -> None:
        while not self._up:
            await asyncio.sleep(self.probe_interval)
            try:
                await self.client.connection_pool.disconnect()  # stale sockets from the dead server
                await self.client.ping()
            except OUTAGE_ERRORS:
                continue
            down_for = time.monotonic() - (self._down_since or time.monotonic())
            self._up, self._reason, self._down_since = True, "", None
            log.warning("cache: redis is back after %.1fs; two-tier again", down_for)

    async def _run(self, coro: Awaitable[T]) -> T:
        """Await one Redis call, translating an outage into :class:`TierUnavailable`."""
        try:
            return await coro
        except OUTAGE_ERRORS as exc:
            raise self._mark_down(exc) from exc

    async def ping(self) -> bool:
        """Check Redis now (an agent's start-up, a readiness probe); False marks the tier down."""
        if not self._up:
            return False
        try:
            await self._run(self.client.ping())
        except TierUnavailable:
            return False
        return True

    # -- values ------------------------------------------------------------------------------
    async def get(self, key: str) -> bytes | None:
        self._check()
        return await self._run(self.client.get(self.full_key(key)))

    async def get_with_ttl(self, key: str) -> tuple[bytes | None, float | None]:
        """Value and seconds left, in one round trip. The copy into L1 must expire when the Redis
        value does, or L1 would serve a value for longer than its owner allowed."""
        self._check()
        full = self.full_key(key)
        pipe = self.client.pipeline(transaction=False)
        pipe.get(full)
        pipe.pttl(full)
        data, ms = await self._run(pipe.execute())
        if data is None:
            return None, None
        return data, (ms / 1000 if ms is not None and ms > 0 else None)

    async def set(self, key: str, data: bytes, ttl: float) -> None:
        self._check()
        await self._run(self.client.set(self.full_key(key), data, px=max(1, int(ttl * 1000))))

    async def delete(self, key: str) -> None:
        self._check()
        await self._run(self.client.delete(self.full_key(key)))

    async def remaining_ttl(self, key: str) -> float | None:
        self._check()
        ms = await self._run(self.client.pttl(self.full_key(key)))
        return ms / 1000 if ms is not None and ms > 0 else None

    # -- short locks for cross-process single-flight ------------------------------------------
    async def try_lock(self, key: str, token: str, ttl: float) -> bool:
        self._check()
        got = await self._run(self.client.set(self.lock_prefix + key, token, nx=True,
                                              px=max(1, int(ttl * 1000))))
        return bool(got)

    async def lock_held(self, key: str) -> bool:
        self._check()
        return bool(await self._run(self.client.exists(self.lock_prefix + key)))

    async def unlock(self, key: str, token: str) -> None:
        self._check()
        await self._run(self._release(keys=[self.lock_prefix + key], args=[token]))

    async def close(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._probe
        if self.owns_client:
            with contextlib.suppress(Exception):
                await self.client.aclose()
