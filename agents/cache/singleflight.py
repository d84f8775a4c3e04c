"""One fetch per key at a time: within a process, and across the replicas sharing one Redis.

Why: a cache miss on a hot key (every consumer asks for ``ticker:BTCUSDT`` as its TTL ends) would
otherwise send one exchange request per waiting coroutine, per replica, all at the same instant; the
exchange's request-weight budget is per IP and shared (decisions.md), so a stampede costs real
budget and can get the IP banned.

* :class:`SingleFlight` (in process): the first caller starts the fetch as a task; every concurrent
  caller awaits the same task and gets the same result or the same exception. The fetch runs as its
  own task so a cancelled caller does not cancel it for the others.
* :class:`DistributedFlight` (across processes): a short Redis lock (``SET NX PX``) elects one
  fetcher. The others poll Redis for the winner's value with a bounded backoff; if the lock vanishes
  without a value (the holder failed, or died and its lock expired), they contend again, and if the
  whole wait exceeds ``wait_timeout`` they fetch themselves: a slow peer delays a miss, it never
  fails it. With Redis down it degrades to a plain local fetch.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from tradingbot_agents.cache.redis_tier import RedisTier, TierUnavailable

T = TypeVar("T")


class SingleFlight:
    """Collapse concurrent calls for one key into one execution."""

    def __init__(self) -> None:
        self._inflight: dict[str, asyncio.Task[Any]] = {}

    def in_flight(self, key: str) -> bool:
        return key in self._inflight

    async def do(self, key: str, fn: Callable[[], Awaitable[T]]) -> T:
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.ensure_future(fn())
            self._inflight[key] = task
            task.add_done_callback(lambda t, k=key: self._done(k, t))
        return await asyncio.shield(task)

    def _done(self, key: str, task: asyncio.Task[Any]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]
        if not task.cancelled():
            task.exception()  # mark retrieved: waiters got it; no "never retrieved" warning

    async def cancel_all(self) -> None:
        tasks = list(self._inflight.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task


class DistributedFlight:
    """Elect one fetcher per key among processes sharing ``tier``.

    ``lock_ttl`` bounds how long a dead holder blocks the others, so it should exceed a normal
    fetch but stay short (seconds). Polling starts at ``poll_initial`` and grows by 1.5× to
    ``poll_max``.
    """

    def __init__(self, tier: RedisTier, *, lock_ttl: float = 5.0, wait_timeout: float = 10.0,
                 poll_initial: float = 0.005, poll_max: float = 0.1) -> None:
        self.tier = tier
        self.lock_ttl = lock_ttl
        self.wait_timeout = wait_timeout
        self.poll_initial = poll_initial
        self.poll_max = poll_max
        self.won = 0
        self.waited = 0

    async def run(self, key: str, fetch_and_store: Callable[[], Awaitable[T]],
                  read_shared: Callable[[], Awaitable[T | None]]) -> T:
        """``fetch_and_store`` fetches and writes the shared tier (only the lock holder calls it);
        ``read_shared`` returns the peer's value from Redis, or None while there is none yet."""
        token = uuid.uuid4().hex
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_timeout
        delay = self.poll_initial
        try:
            while True:
                if await self.tier.try_lock(key, token, self.lock_ttl):
                    self.won += 1
                    try:
                        # Double-check under the lock: a peer may have stored the value and released
                        # the lock between our read of the shared tier and our lock.
                        value = await read_shared()
                        if value is not None:
                            return value
                        return await fetch_and_store()
                    finally:
                        with contextlib.suppress(TierUnavailable):
                            await self.tier.unlock(key, token)
                self.waited += 1
                # Someone else is fetching: wait for their value, or for their lock to go away.
                while loop.time() < deadline:
                    await asyncio.sleep(delay)
                    delay = min(self.poll_max, delay * 1.5)
                    value = await read_shared()
                    if value is not None:
                        return value
                    if not await self.tier.lock_held(key):
                        break  # holder finished without a value, or died: contend again
                else:
                    return await fetch_and_store()  # waited long enough: fetch ourselves
        except TierUnavailable:
            return await fetch_and_store()
