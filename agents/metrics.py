"""Prometheus metrics of the runtime and the bus.

Each agent owns a private ``CollectorRegistry`` rather than the global one: tests run several
agents in one process, and a global registry would refuse the second set of collectors.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)


class BusMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.received = Counter(
            "tradingbot_bus_messages_received_total", "Messages delivered to handlers",
            ["subscription"], registry=registry)
        self.published = Counter(
            "tradingbot_bus_messages_published_total", "Messages published", ["kind"], registry=registry)
        self.dropped = Counter(
            "tradingbot_bus_messages_dropped_total",
            "Messages dropped before a handler: not JSON, wrong schema, or duplicate",
            ["subscription", "reason"], registry=registry)
        self.handler_errors = Counter(
            "tradingbot_bus_handler_errors_total", "Handlers that raised", ["subscription"],
            registry=registry)
        self.request_seconds = Histogram(
            "tradingbot_bus_request_seconds", "Request/reply round trips",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.5),
            registry=registry)
        self.request_timeouts = Counter(
            "tradingbot_bus_request_timeouts_total", "Requests without a reply in time", registry=registry)
        self.reconnects = Counter(
            "tradingbot_bus_reconnects_total", "Reconnections to NATS", registry=registry)
        self.connected = Gauge("tradingbot_bus_connected", "1 while connected to NATS", registry=registry)


class RuntimeMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        self.info = Gauge("tradingbot_agent_info", "Agent identity", ["kind", "agent_id", "bot"],
                          registry=registry)
        self.health = Gauge("tradingbot_agent_health",
                            "Own health: 0 ok, 1 degraded, 2 failed", registry=registry)
        self.heartbeats = Counter("tradingbot_heartbeats_sent_total", "Heartbeats published",
                                  registry=registry)
        self.loop_lag = Gauge("tradingbot_event_loop_lag_seconds", "Latest event-loop lag sample",
                              registry=registry)
        self.queue_depth = Gauge("tradingbot_queue_depth", "Messages pending or in handlers",
                                 registry=registry)
