"""The operator's own Prometheus metrics (kopf has none), served at ``/metrics``.

Why a private registry: two operators in one process (tests, benchmarks) must not collide on
metric names, and the process-wide default registry would mix in whatever else is imported.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server


@dataclasses.dataclass
class OperatorMetrics:
    registry: CollectorRegistry = dataclasses.field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.reconciles = Counter(
            "tradingbot_operator_reconciles", "Reconciles of TradingBots, by result.", ["result"], registry=r
        )
        self.reconcile_duration = Histogram(
            "tradingbot_operator_reconcile_duration_seconds", "Time of one reconcile.", registry=r,
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.errors = Counter(
            "tradingbot_operator_errors", "Errors, by where they happened.", ["stage"], registry=r
        )
        self.objects_changed = Counter(
            "tradingbot_operator_objects_changed", "Children created, updated or deleted.", ["action", "kind"],
            registry=r,
        )
        self.restarts = Counter(
            "tradingbot_operator_restarts", "Rollout restarts issued, by agent.", ["agent"], registry=r
        )
        self.scale_changes = Counter(
            "tradingbot_operator_scale_changes", "Replica changes written, by agent and direction.",
            ["agent", "direction"], registry=r,
        )
        self.bots = Gauge("tradingbot_operator_control_loops", "Control loops running.", registry=r)
        self._server: Any = None
        self._lock = threading.Lock()

    def serve(self, port: int, addr: str = "0.0.0.0") -> int:
        """Start ``/metrics`` on ``port`` (0 = any free port); returns the port."""
        with self._lock:
            if self._server is None:
                result = start_http_server(port, addr=addr, registry=self.registry)
                self._server = result[0] if isinstance(result, tuple) else result
        return int(self._server.server_address[1])

    def shutdown(self) -> None:
        with self._lock:
            if self._server is not None:
                self._server.shutdown()
                self._server.server_close()
                self._server = None
