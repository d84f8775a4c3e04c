"""Prometheus view of the cache, read from its own counters at scrape time.

Why a collector instead of incrementing prometheus counters alongside our own: the numbers already
exist (L1 counters, prefetch counters, tier state) and ``stats()`` must report them too; reading them
at scrape time keeps one source of truth and costs nothing per cache operation. Only fetch latency
is a real :class:`~prometheus_client.Histogram`, because its buckets are not derivable afterwards.

The registry is passed in (default: a private one) so two caches in one process, as in the tests,
or an agent with its own registry never collide on metric names.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from tradingbot_agents.cache.cache import CacheStats

PREFIX = "tradingbot_cache"
FETCH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _StatsCollector(Collector):
    def __init__(self, stats: Callable[[], CacheStats]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        s = self._stats()
        hits = CounterMetricFamily(f"{PREFIX}_hits", "Cache hits per tier", labels=["tier"])
        hits.add_metric(["l1"], s.l1_hits)
        hits.add_metric(["l2"], s.l2_hits)
        yield hits
        misses = CounterMetricFamily(f"{PREFIX}_misses", "Cache misses per tier", labels=["tier"])
        misses.add_metric(["l1"], s.l1_misses)
        misses.add_metric(["l2"], s.l2_misses)
        yield misses
        yield GaugeMetricFamily(f"{PREFIX}_hit_rate", "Requests served without a fetch, 0..1",
                                value=s.hit_rate_percent / 100)
        yield GaugeMetricFamily(f"{PREFIX}_l1_bytes", "Bytes held by the in-process tier",
                                value=s.l1_bytes)
        yield GaugeMetricFamily(f"{PREFIX}_l1_max_bytes", "Byte bound of the in-process tier",
                                value=s.l1_max_bytes)
        yield GaugeMetricFamily(f"{PREFIX}_l1_items", "Entries in the in-process tier",
                                value=s.l1_items)
        yield CounterMetricFamily(f"{PREFIX}_evictions", "L1 evictions to stay under the bound",
                                  value=s.evictions)
        yield CounterMetricFamily(f"{PREFIX}_fetch_errors", "Fetches that raised",
                                  value=s.fetch_errors)
        yield CounterMetricFamily(f"{PREFIX}_prefetch_issued", "Prefetches started",
                                  value=s.prefetch_issued)
        yield CounterMetricFamily(f"{PREFIX}_prefetch_used", "Prefetched keys read afterwards",
                                  value=s.prefetch_used)
        yield GaugeMetricFamily(f"{PREFIX}_prefetch_accuracy", "prefetch used / issued, 0..1",
                                value=s.prefetch_accuracy)
        yield GaugeMetricFamily(f"{PREFIX}_redis_up", "1 when the Redis tier is reachable",
                                value=1.0 if s.redis_status == "up" else 0.0)


class CacheMetrics:
    """Registers the collector and owns the fetch-latency histogram."""

    def __init__(self, stats: Callable[[], CacheStats], registry: CollectorRegistry | None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.fetch_seconds = Histogram(f"{PREFIX}_fetch_seconds", "Latency of fetches on a miss",
                                       buckets=FETCH_BUCKETS, registry=self.registry)
        self._collector = _StatsCollector(stats)
        self.registry.register(self._collector)

    def unregister(self) -> None:
        for collector in (self._collector, self.fetch_seconds):
            with contextlib.suppress(KeyError):
                self.registry.unregister(collector)
