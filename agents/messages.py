"""Every NATS subject and every message model of the system: the only place a subject is spelled.

Subjects carry the bot's identity (``tb.<namespace>.<bot>.…``) and JetStream streams are named
``TB_<namespace>_<bot>_<BASE>``, so two bots sharing one NATS never see each other's traffic.
Messages are pydantic v2 models serialised as JSON: a consumer validates what it receives, and a
malformed message is dropped and counted by the bus rather than crashing a handler.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tradingbot_agents.config import BotIdentity
from tradingbot_agents.kinds import AgentKind


class Message(BaseModel):
    """Base of every bus message. Unknown fields are ignored so that a newer sender does not break
    an older receiver during a rolling upgrade."""

    model_config = ConfigDict(extra="ignore", frozen=True)


# --------------------------------------------------------------------------------------------
# Subjects and streams


@dataclass(frozen=True)
class StreamSpec:
    """A JetStream stream: what must not be lost (orders, fills, alerts)."""

    name: str
    subjects: tuple[str, ...]
    max_age_s: float = 7 * 24 * 3600
    duplicate_window_s: float = 120.0


class Subjects:
    """The subjects and streams of one bot."""

    def __init__(self, identity: BotIdentity) -> None:
        self.identity = identity
        self.prefix = f"tb.{identity.namespace}.{identity.name}"
        self._stream_prefix = f"TB_{identity.namespace}_{identity.name}".replace("-", "_")

    # Agent control plane -------------------------------------------------------------------
    def heartbeat(self, kind: AgentKind, instance: str) -> str:
        return f"{self.prefix}.agent.heartbeat.{kind.value}.{instance}"

    @property
    def heartbeats(self) -> str:
        return f"{self.prefix}.agent.heartbeat.>"

    @property
    def status_request(self) -> str:
        """Request/reply: ``StatusRequest`` → ``SystemStatus`` (the coordinator answers)."""
        return f"{self.prefix}.coordinator.status"

    # Market data -------------------------------------------------------------------------------
    def ticker(self, symbol: str) -> str:
        return f"{self.prefix}.md.ticker.{symbol}"

    def kline(self, symbol: str, interval: str) -> str:
        return f"{self.prefix}.md.kline.{symbol}.{interval}"

    @property
    def md_interest(self) -> str:
        """Consumers announce (and renew) which symbols and intervals they need."""
        return f"{self.prefix}.md.interest"

    @property
    def md_get_ticker(self) -> str:
        """Request/reply: ``TickerRequest`` → ``TickerReply`` from the cache (any data replica)."""
        return f"{self.prefix}.md.get.ticker"

    @property
    def md_get_klines(self) -> str:
        """Request/reply: ``KlinesRequest`` → ``KlinesReply``."""
        return f"{self.prefix}.md.get.klines"

    # Durable streams -------------------------------------------------------------------------
    @property
    def alerts(self) -> str:
        return f"{self.prefix}.alerts"

    def stream_name(self, base: str) -> str:
        return f"{self._stream_prefix}_{base}"

    @property
    def alerts_stream(self) -> StreamSpec:
        return StreamSpec(self.stream_name("ALERTS"), (self.alerts, f"{self.alerts}.>"))

    def durable_streams(self) -> list[StreamSpec]:
        return [self.alerts_stream]


def sanitize_token(value: str) -> str:
    """Make a string safe as one NATS subject token (no dots, spaces or wildcards)."""
    cleaned = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in value)
    return cleaned.strip("-") or "x"


# --------------------------------------------------------------------------------------------
# Health and load


class HealthStatus(enum.StrEnum):
    OK = "ok"
    DEGRADED = "degraded"
    FAILED = "failed"

    @property
    def rank(self) -> int:
        return {HealthStatus.OK: 0, HealthStatus.DEGRADED: 1, HealthStatus.FAILED: 2}[self]


class Health(Message):
    status: HealthStatus = HealthStatus.OK
    reason: str = ""


class Load(Message):
    """What an agent reports of its own load; the operator scales on it."""

    loop_lag_ms: float = Field(default=0.0, ge=0)
    queue_depth: int = Field(default=0, ge=0)
    msgs_per_s: float = Field(default=0.0, ge=0)
    cpu_percent: float = Field(default=0.0, ge=0)
    rss_mb: float = Field(default=0.0, ge=0)


class Heartbeat(Message):
    agent_id: str
    kind: AgentKind
    instance: str
    pid: int
    seq: int = Field(ge=0)
    interval_s: float = Field(gt=0)
    started_at: float
    sent_at: float = Field(default_factory=time.time)
    http_port: int | None = None
    health: Health = Field(default_factory=Health)
    load: Load = Field(default_factory=Load)
    # Agent-specific counters (e.g. cache_hits, cache_misses) the coordinator aggregates.
    stats: dict[str, float] = Field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# System status (the seed's get_system_status() shape)


class StatusRequest(Message):
    pass


class AgentState(Message):
    agent_id: str
    kind: AgentKind
    instance: str
    health: Health
    load: Load
    score: float = Field(ge=0, le=100, description="health score, percent")
    last_seen_s: float = Field(ge=0, description="seconds since the last heartbeat")
    uptime_s: float = Field(ge=0)
    http_port: int | None = None
    stats: dict[str, float] = Field(default_factory=dict)


class SystemStats(Message):
    system_health: float = Field(ge=0, le=100, description="percent")
    agents_total: int = 0
    agents_ok: int = 0
    agents_degraded: int = 0
    agents_failed: int = 0
    uptime_s: float = 0.0


class CacheStats(Message):
    hit_rate_percent: float | None = Field(default=None, description="None until a cache reports")
    hits: int = 0
    misses: int = 0


class SystemStatus(Message):
    bot: str
    generated_at: float = Field(default_factory=time.time)
    system_stats: SystemStats
    cache_stats: CacheStats = Field(default_factory=CacheStats)
    agents: dict[str, AgentState] = Field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# Market data


class MarketDataInterest(Message):
    consumer_id: str
    symbols: list[str] = Field(default_factory=list)
    intervals: list[str] = Field(default_factory=list, description="kline intervals, e.g. 1h, 4h")


class TickerData(Message):
    symbol: str
    price: float = Field(gt=0)
    time_ms: int | None = None
    fetched_at: float = Field(description="epoch seconds when the data agent got it from the exchange")
    published_at: float = Field(default_factory=time.time)


class KlineBar(Message):
    open_time: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    close_time: int


class KlineData(Message):
    symbol: str
    interval: str
    bars: list[KlineBar]
    fetched_at: float
    published_at: float = Field(default_factory=time.time)


class TickerRequest(Message):
    symbol: str


class KlinesRequest(Message):
    symbol: str
    interval: str = "1h"
    limit: int = Field(default=100, ge=1, le=1500)


class TickerReply(Message):
    ok: bool
    error: str = ""
    ticker: TickerData | None = None


class KlinesReply(Message):
    ok: bool
    error: str = ""
    klines: KlineData | None = None


# --------------------------------------------------------------------------------------------
# Alerts (durable: JetStream)


class Alert(Message):
    alert_id: str
    kind: str
    subject: str
    severity: str = Field(default="warning", pattern="^(info|warning|critical)$")
    message: str
    created_at: float = Field(default_factory=time.time)
    data: dict[str, Any] = Field(default_factory=dict)
