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

    @property
    def md_get_symbols(self) -> str:
        """Request/reply: ``SymbolsRequest`` → ``SymbolsReply`` (tradable symbols from exchangeInfo)."""
        return f"{self.prefix}.md.get.symbols"

    # Sentiment, risk, pairs, trading, RL ---------------------------------------------------------
    def sentiment(self, symbol: str) -> str:
        """``SentimentScore`` per symbol, published by the sentiment agent."""
        return f"{self.prefix}.sentiment.{symbol}"

    @property
    def sentiment_all(self) -> str:
        return f"{self.prefix}.sentiment.*"

    @property
    def risk_check(self) -> str:
        """Request/reply: ``OrderIntent`` → ``RiskDecision`` (pre-trade check by the risk agent)."""
        return f"{self.prefix}.risk.check"

    @property
    def risk_metrics(self) -> str:
        """``RiskSnapshot`` published by the risk agent every check interval."""
        return f"{self.prefix}.risk.metrics"

    @property
    def pairs_active(self) -> str:
        """``ActivePairs`` published by the pair selector (also kept in the PAIRS KV bucket)."""
        return f"{self.prefix}.pairs.active"

    @property
    def assignment(self) -> str:
        """``PairAssignment``: the coordinator's desired pairs per worker, from reported load."""
        return f"{self.prefix}.coordinator.assignment"

    def orders(self, symbol: str) -> str:
        return f"{self.prefix}.orders.{symbol}"

    def fills(self, symbol: str) -> str:
        return f"{self.prefix}.fills.{symbol}"

    def signals(self, symbol: str) -> str:
        """``TradeSignal``: what a worker decided for a pair and why (observability)."""
        return f"{self.prefix}.signals.{symbol}"

    def rl_advice(self, symbol: str) -> str:
        """``RLAdvice`` per symbol from the RL agent."""
        return f"{self.prefix}.rl.advice.{symbol}"

    @property
    def control(self) -> str:
        """``ControlCommand`` (e.g. halt) pushed by the operator or an admin; agents also read config."""
        return f"{self.prefix}.control"

    @property
    def restart(self) -> str:
        """``RestartRequest``: the coordinator asks whoever runs the agent's process to restart it."""
        return f"{self.prefix}.coordinator.restart"

    # JetStream names -------------------------------------------------------------------------
    @property
    def orders_stream(self) -> StreamSpec:
        return StreamSpec(self.stream_name("ORDERS"), (f"{self.prefix}.orders.>",))

    @property
    def fills_stream(self) -> StreamSpec:
        return StreamSpec(self.stream_name("FILLS"), (f"{self.prefix}.fills.>",))

    def kv_bucket(self, base: str) -> str:
        """KV bucket names: ``LEASES`` (pair → worker, with TTL), ``PAIRS``, ``POSITIONS``, ``MODELS``."""
        return self.stream_name(base)

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
        return [self.alerts_stream, self.orders_stream, self.fills_stream]


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
    pid: int | None = None
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


class MarketDataStats(Message):
    exchange_calls: int = Field(default=0, description="calls the data agents made to the exchange")
    consumers: int = 0
    fetch_latency_p50_ms: float | None = None
    fetch_latency_p99_ms: float | None = None


class TradingStats(Message):
    """From the risk agent's and the workers' reports; None until they report."""

    open_positions: int = 0
    trades: int = 0
    pnl: float | None = None
    var_95: float | None = None
    sharpe: float | None = None
    max_drawdown: float | None = None
    pairs_active: list[str] = Field(default_factory=list)
    assignment: dict[str, list[str]] = Field(default_factory=dict)


class SystemStatus(Message):
    bot: str
    generated_at: float = Field(default_factory=time.time)
    system_stats: SystemStats
    cache_stats: CacheStats = Field(default_factory=CacheStats)
    market_data: MarketDataStats = Field(default_factory=MarketDataStats)
    trading: TradingStats = Field(default_factory=TradingStats)
    agents: dict[str, AgentState] = Field(default_factory=dict)


class RestartRequest(Message):
    agent_id: str
    kind: AgentKind
    instance: str
    pid: int | None = None
    reason: str
    attempt: int = Field(ge=1)
    at: float = Field(default_factory=time.time)


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


class SymbolsRequest(Message):
    quote_asset: str | None = Field(default=None, description="only symbols quoted in this asset")


class SymbolsReply(Message):
    ok: bool
    error: str = ""
    symbols: list[str] = Field(default_factory=list)


class TickerReply(Message):
    ok: bool
    error: str = ""
    ticker: TickerData | None = None


class KlinesReply(Message):
    ok: bool
    error: str = ""
    klines: KlineData | None = None


# --------------------------------------------------------------------------------------------
# Sentiment


class SentimentScore(Message):
    symbol: str
    score: float = Field(ge=-1, le=1, description="smoothed (EMA) weighted score")
    raw_score: float = Field(ge=-1, le=1, description="this round's weighted score, before smoothing")
    sources: dict[str, float] = Field(default_factory=dict, description="per-source score this round")
    weights: dict[str, float] = Field(
        default_factory=dict, description="effective weight per source this round, after redistribution")
    samples: int = Field(ge=0, description="texts scored this round")
    at: float = Field(default_factory=time.time)


# --------------------------------------------------------------------------------------------
# Trading: intents, risk decisions, orders, fills


class Side(enum.StrEnum):
    BUY = "BUY"
    SELL = "SELL"


class OrderIntent(Message):
    """What a worker wants to do, sent to the risk agent before anything reaches a broker."""

    intent_id: str
    worker_id: str
    symbol: str
    side: Side
    quantity: float = Field(gt=0)
    price: float = Field(gt=0, description="expected fill price (last price)")
    reduce_only: bool = False

    @property
    def notional(self) -> float:
        return self.quantity * self.price


class RiskDecision(Message):
    intent_id: str
    approved: bool
    reason: str = ""
    checks: dict[str, float] = Field(default_factory=dict, description="the figures the decision used")


class OrderEvent(Message):
    client_order_id: str
    worker_id: str
    symbol: str
    side: Side
    order_type: str = "MARKET"
    quantity: float = Field(gt=0)
    price: float | None = None
    status: str
    mode: str = Field(description="shadow (paper) or production")
    at: float = Field(default_factory=time.time)


class FillEvent(Message):
    fill_id: str
    client_order_id: str
    worker_id: str
    symbol: str
    side: Side
    quantity: float = Field(gt=0)
    price: float = Field(gt=0)
    fee: float = Field(ge=0)
    realized_pnl: float = 0.0
    mode: str
    at: float = Field(default_factory=time.time)


class TradeSignal(Message):
    symbol: str
    worker_id: str
    score: float = Field(ge=-1, le=1)
    action: str = Field(pattern="^(buy|sell|hold)$")
    components: dict[str, float] = Field(default_factory=dict)
    at: float = Field(default_factory=time.time)


class RiskSnapshot(Message):
    at: float = Field(default_factory=time.time)
    equity: float = 0.0
    pnl: float = 0.0
    var_95_historical: float | None = None
    var_99_historical: float | None = None
    var_95_parametric: float | None = None
    var_99_parametric: float | None = None
    cvar_95: float | None = None
    cvar_99: float | None = None
    sharpe: float | None = None
    sortino: float | None = None
    max_drawdown: float | None = None
    exposure_total: float = 0.0
    exposure_by_symbol: dict[str, float] = Field(default_factory=dict)
    leverage: float = 0.0
    leverage_by_symbol: dict[str, float] = Field(default_factory=dict)
    drawdown: float = Field(default=0.0, description="current fall of equity below its peak, fraction")
    correlation: dict[str, dict[str, float]] = Field(default_factory=dict)
    open_positions: int = 0
    trades: int = 0


# --------------------------------------------------------------------------------------------
# Pairs and their distribution over workers


class PairScore(Message):
    symbol: str
    score: float
    quote_volume_24h: float = 0.0
    volatility: float = 0.0
    spread_bps: float = 0.0


class ActivePairs(Message):
    pairs: list[str]
    ranked: list[PairScore] = Field(default_factory=list)
    at: float = Field(default_factory=time.time)


class PairAssignment(Message):
    """Desired pairs per worker id; workers release what is not theirs and take what is."""

    assignments: dict[str, list[str]]
    at: float = Field(default_factory=time.time)


# --------------------------------------------------------------------------------------------
# RL


class RLAdvice(Message):
    symbol: str
    action: str = Field(pattern="^(buy|sell|hold)$")
    confidence: float = Field(ge=0, le=1)
    q_values: list[float] = Field(default_factory=list)
    model_version: str
    at: float = Field(default_factory=time.time)


# --------------------------------------------------------------------------------------------
# Control


class ControlCommand(Message):
    command: str = Field(pattern="^(halt|resume)$")
    reason: str = ""
    at: float = Field(default_factory=time.time)


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
