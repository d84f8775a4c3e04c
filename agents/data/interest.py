"""Which consumers want which symbols and intervals (pure bookkeeping, no I/O).

Interest is a lease: a consumer renews it (every heartbeat or so) and it lapses after
``interest_ttl``, so a consumer that died stops costing exchange weight without saying goodbye.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from tradingbot_agents.messages import MarketDataInterest


@dataclass
class _Lease:
    interest: MarketDataInterest
    expires: float


class InterestRegistry:
    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._leases: dict[str, _Lease] = {}

    def renew(self, interest: MarketDataInterest) -> None:
        self._leases[interest.consumer_id] = _Lease(interest, self.clock() + self.ttl)

    def _live(self) -> list[MarketDataInterest]:
        now = self.clock()
        for consumer in [c for c, lease in self._leases.items() if lease.expires <= now]:
            del self._leases[consumer]
        return [lease.interest for lease in self._leases.values()]

    def symbols(self) -> list[str]:
        return sorted({s for interest in self._live() for s in interest.symbols})

    def klines(self) -> list[tuple[str, str]]:
        """(symbol, interval) pairs wanted by at least one consumer."""
        return sorted({(s, i) for it in self._live() for s in it.symbols for i in it.intervals})

    def consumers(self) -> int:
        return len(self._live())

    def audience(self, symbol: str, interval: str | None = None) -> int:
        """How many consumers get a push of ``symbol`` (klines of ``interval`` when given): each
        would have asked the exchange itself without the data agent."""
        return sum(1 for it in self._live()
                   if symbol in it.symbols and (interval is None or interval in it.intervals))
