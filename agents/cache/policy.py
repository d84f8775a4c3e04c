"""Cache policy as pure functions and small data structures: no I/O, no clocks of their own.

Two decisions live here, apart from the tiers that apply them, so they can be tested exactly and
tuned in one place:

* **Adaptive TTL.** A key read often is worth keeping longer: each extra second it lives saves more
  fetches. A key read rarely is mostly dead weight, so it should leave sooner. Freshness bounds all
  of it: a ticker must never be served older than its prefix's *max staleness*, however hot.
* **Eviction priority** (GreedyDual-Size-Frequency, Cherkasova 1998): keep what is hot *and*
  costly to refetch *per byte it occupies*. ``priority = L + frequency × cost / size``, where ``L``
  is an inflation value that rises to the priority of each evicted entry. New and recently touched
  entries are scored against the current ``L``, so an entry that was hot long ago but is no longer
  touched sinks below them over time: ``L`` is the recency decay, with no timers to run.

Times are passed in (``now``) so a test can drive them and the tiers can use ``time.monotonic``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

#: Cost and size floors keep a priority finite when a fetch was instant or a value tiny.
MIN_COST = 1e-6
MIN_SIZE = 1


def key_prefix(key: str, sep: str = ":") -> str:
    """The family a key belongs to (``ticker:BTCUSDT`` → ``ticker``); fetchers and staleness bounds
    are registered per family."""
    head, found, _ = key.partition(sep)
    return head if found else ""


def gdsf_priority(inflation: float, frequency: float, cost: float, size: int) -> float:
    """GreedyDual-Size-Frequency priority: higher stays, lowest is evicted first."""
    return inflation + frequency * max(cost, MIN_COST) / max(size, MIN_SIZE)


@dataclass
class _Rate:
    value: float
    at: float


@dataclass
class AccessTracker:
    """Per-key access rate as an exponentially decayed count (accesses per second).

    Why decayed and not a plain counter: a key that was hot an hour ago and is cold now should get a
    cold key's TTL. With half-life ``h``, each access adds ``ln 2 / h`` to the rate, which decays by
    half every ``h`` seconds; a steady stream of one access every ``t`` seconds converges to about
    ``1/t``. Memory is bounded by ``max_keys``: the least recently touched keys are forgotten first.
    """

    half_life: float = 60.0
    max_keys: int = 100_000
    _rates: dict[str, _Rate] = field(default_factory=dict)

    def _decayed(self, rate: _Rate, now: float) -> float:
        elapsed = max(0.0, now - rate.at)
        return rate.value * math.pow(0.5, elapsed / self.half_life)

    def record(self, key: str, now: float) -> float:
        """Count one access at ``now``; returns the new rate."""
        rate = self._rates.pop(key, None)  # pop + insert keeps dict order = recency order
        value = (self._decayed(rate, now) if rate else 0.0) + math.log(2) / self.half_life
        self._rates[key] = _Rate(value, now)
        if len(self._rates) > self.max_keys:
            del self._rates[next(iter(self._rates))]
        return value

    def rate(self, key: str, now: float) -> float:
        rate = self._rates.get(key)
        return self._decayed(rate, now) if rate else 0.0

    def forget(self, key: str) -> None:
        self._rates.pop(key, None)

    def __len__(self) -> int:
        return len(self._rates)


@dataclass(frozen=True)
class TtlPolicy:
    """Adaptive TTL from access rate, bounded by a per-prefix max staleness.

    With ``n = rate × base_ttl`` (the reads expected during one base TTL):

    * ``n < 1`` (cold): ``ttl = base × max(min_factor, n)``; a key read once in a while leaves
      sooner and frees its bytes;
    * ``n ≥ 1`` (warm/hot): ``ttl = base × min(max_factor, 1 + log2(n))``; grows with the
      logarithm of the read rate, so doubling the traffic adds one base TTL, up to the cap;
    * finally ``ttl = min(ttl, max_staleness[longest matching prefix])``: freshness beats heat.

    ``max_staleness`` maps key prefixes (matched with ``str.startswith``, longest wins) to seconds,
    e.g. ``{"ticker:": 2.0, "klines:1h:": 60.0}``.
    """

    min_factor: float = 0.25
    max_factor: float = 8.0
    max_staleness: Mapping[str, float] = field(default_factory=dict)

    def staleness_bound(self, key: str) -> float | None:
        best: str | None = None
        for prefix in self.max_staleness:
            if key.startswith(prefix) and (best is None or len(prefix) > len(best)):
                best = prefix
        return None if best is None else float(self.max_staleness[best])

    def factor(self, rate: float, base_ttl: float) -> float:
        expected = max(0.0, rate) * base_ttl
        if expected < 1.0:
            return max(self.min_factor, expected)
        return min(self.max_factor, 1.0 + math.log2(expected))

    def ttl_for(self, key: str, base_ttl: float, rate: float) -> float:
        ttl = base_ttl * self.factor(rate, base_ttl)
        bound = self.staleness_bound(key)
        return ttl if bound is None else min(ttl, bound)
