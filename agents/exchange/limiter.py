"""Weight-aware rate limiting for one exchange IP budget.

Binance limits request *weight* per IP per window (``REQUEST_WEIGHT`` in exchangeInfo, 2400/min on
mainnet per the docs; the recorded testnet payload says 6000, so the limit is read, never
hardcoded). Three rules from the field notes shape this module:

- wait locally instead of sending when the budget is spent: a 429 is the exchange telling us we
  already failed;
- on a 429, honour ``Retry-After`` and block *every* caller that shares the budget, not just the one
  that got it: callers that keep sending after a 429 get the IP banned (418), minutes to days;
- on a 418, send nothing until the ban ends, and say so in health.

The counting state lives behind :class:`WeightBudget` so that several processes behind one egress IP
can share it: the in-memory implementation here serves one process; a Redis implementation (one key
per IP and window, ``INCRBY`` + ``EXPIRE``, a block key with a TTL) can replace it without touching
the limiter or the client. Windows are fixed and aligned on the epoch (wall clock, not monotonic) so
that processes agree on where a window starts, as the exchange's own counter does.
"""

from __future__ import annotations

import asyncio
import enum
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from tradingbot_agents.exchange.errors import IPBanned, RateLimited


class BlockKind(enum.StrEnum):
    RATE_LIMITED = "rate_limited"  # 429: wait, then continue
    BANNED = "banned"  # 418: nothing is sent until the ban ends


@dataclass(frozen=True)
class Block:
    kind: BlockKind
    until: float  # epoch seconds
    reason: str


class WeightBudget(Protocol):
    """Shared counting state of one IP's weight budget. All methods may do I/O (Redis)."""

    async def try_reserve(self, weight: int, limit: int, window_s: float, now: float) -> float:
        """Reserve ``weight`` in the window containing ``now``; 0.0 when reserved, else the seconds
        to wait until a window with room starts."""
        ...

    async def observe_used(self, used: int, window_s: float, at: float) -> None:
        """The exchange reported ``used`` weight in the window containing ``at``."""
        ...

    async def used(self, window_s: float, now: float) -> int: ...

    async def block(self, block: Block) -> None:
        """Block every sharer until ``block.until`` (a later block wins over an earlier one)."""
        ...

    async def current_block(self, now: float) -> Block | None: ...


class InMemoryWeightBudget:
    """One process's budget. Not thread-safe; asyncio callers on one loop only."""

    def __init__(self) -> None:
        self._window_start = 0.0
        self._used = 0
        self._block: Block | None = None

    def _roll(self, window_s: float, now: float) -> None:
        start = math.floor(now / window_s) * window_s
        if start != self._window_start:
            self._window_start = start
            self._used = 0

    async def try_reserve(self, weight: int, limit: int, window_s: float, now: float) -> float:
        self._roll(window_s, now)
        # A call heavier than the whole limit still goes out alone in a fresh window.
        if self._used + weight <= limit or (self._used == 0 and weight > limit):
            self._used += weight
            return 0.0
        return max(self._window_start + window_s - now, 0.001)

    async def observe_used(self, used: int, window_s: float, at: float) -> None:
        self._roll(window_s, time.time())
        if math.floor(at / window_s) * window_s != self._window_start:
            return  # the answer describes a window that is already over
        # Take the larger: a higher server count means other processes on this IP spend too; a lower
        # one usually means our own requests still in flight, which the server has not counted yet.
        self._used = max(self._used, used)

    async def used(self, window_s: float, now: float) -> int:
        self._roll(window_s, now)
        return self._used

    async def block(self, block: Block) -> None:
        current = self._block
        if current is None or block.until >= current.until or block.kind is BlockKind.BANNED:
            self._block = block

    async def current_block(self, now: float) -> Block | None:
        if self._block is not None and self._block.until <= now:
            self._block = None
        return self._block


@dataclass
class RateLimitConfig:
    limit: int
    window_s: float

    @classmethod
    def from_exchange_info(cls, rate_limits: list[Mapping[str, object]]) -> RateLimitConfig | None:
        """The REQUEST_WEIGHT entry of exchangeInfo ``rateLimits``, or None when absent."""
        seconds = {"SECOND": 1, "MINUTE": 60, "HOUR": 3600, "DAY": 86400}
        for entry in rate_limits:
            if entry.get("rateLimitType") == "REQUEST_WEIGHT":
                unit = seconds.get(str(entry.get("interval")), 60)
                num = int(str(entry.get("intervalNum", 1)))
                return cls(limit=int(str(entry["limit"])), window_s=float(unit * num))
        return None

    @property
    def header_name(self) -> str:
        """The used-weight header for this window, e.g. ``x-mbx-used-weight-1m``."""
        for letter, unit in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
            if self.window_s % unit == 0:
                return f"x-mbx-used-weight-{int(self.window_s // unit)}{letter}"
        return "x-mbx-used-weight-1m"


# Until exchangeInfo has been read, spend at most this much per minute: half of the 2400/min the
# futures docs give for mainnet. Not smaller: with a budget shared in Redis, the window may already
# hold other processes' weight (the exchange reports the IP's total), and a tiny bootstrap limit
# would stall the very exchangeInfo call that lifts it for up to a minute.
BOOTSTRAP = RateLimitConfig(limit=1200, window_s=60.0)


class RateLimiter:
    """Gatekeeper in front of every request to one exchange IP budget."""

    def __init__(self, budget: WeightBudget | None = None, config: RateLimitConfig | None = None, *,
                 max_wait_s: float = 120.0, clock: Callable[[], float] = time.time) -> None:
        self._budget: WeightBudget = budget or InMemoryWeightBudget()
        self.config = config or BOOTSTRAP
        self.configured = config is not None
        self.max_wait_s = max_wait_s
        self._clock = clock
        self._last_block: Block | None = None
        self.waits = 0  # how many times a caller had to wait (for metrics and tests)

    def configure(self, config: RateLimitConfig) -> None:
        self.config = config
        self.configured = True

    async def acquire(self, weight: int) -> None:
        """Wait until ``weight`` fits the budget and no block is active.

        Raises :class:`IPBanned` during a ban (waiting minutes to days inside a request would hide
        the outage) and :class:`RateLimited` when the wait would exceed ``max_wait_s``."""
        while True:
            now = self._clock()
            block = await self._budget.current_block(now)
            if block is not None:
                self._last_block = block
                if block.kind is BlockKind.BANNED:
                    raise IPBanned(block.until, block.reason)
                wait = block.until - now
                if wait > self.max_wait_s:
                    raise RateLimited(wait, block.reason)
                self.waits += 1
                await asyncio.sleep(wait)
                continue
            wait = await self._budget.try_reserve(weight, self.config.limit, self.config.window_s, now)
            if wait <= 0:
                return
            if wait > self.max_wait_s:
                raise RateLimited(wait, "local weight budget exhausted")
            self.waits += 1
            await asyncio.sleep(wait)

    async def observe_headers(self, headers: Mapping[str, str], sent_at: float) -> None:
        """Correct the local count from the exchange's used-weight header (case-insensitive)."""
        wanted = self.config.header_name
        for name, value in headers.items():
            if name.lower() == wanted:
                try:
                    used = int(value)
                except ValueError:
                    return
                await self._budget.observe_used(used, self.config.window_s, sent_at)
                return

    async def on_rate_limited(self, retry_after_s: float) -> None:
        """A 429 arrived: every caller on this budget waits ``retry_after_s``."""
        until = self._clock() + max(retry_after_s, 0.0)
        block = Block(BlockKind.RATE_LIMITED, until, f"HTTP 429: waiting {retry_after_s:.2f}s (Retry-After)")
        self._last_block = block
        await self._budget.block(block)

    async def on_banned(self, until_epoch: float, message: str = "") -> None:
        """A 418 arrived: nothing is sent until ``until_epoch``."""
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(until_epoch))
        reason = f"HTTP 418: IP banned until {when}" + (f" ({message})" if message else "")
        block = Block(BlockKind.BANNED, until_epoch, reason)
        self._last_block = block
        await self._budget.block(block)

    async def used(self) -> int:
        return await self._budget.used(self.config.window_s, self._clock())

    def health(self) -> tuple[str, str]:
        """``("ok" | "degraded" | "failed", reason)`` from the last block seen by this process.

        Synchronous so a health endpoint can call it; it reflects what this process has observed
        (a Redis budget's blocks are seen on the next ``acquire``)."""
        block = self._last_block
        now = self._clock()
        if block is None or block.until <= now:
            degraded = str(getattr(self._budget, "degraded", ""))
            return ("degraded", degraded) if degraded else ("ok", "")
        if block.kind is BlockKind.BANNED:
            return "failed", block.reason
        return "degraded", block.reason
