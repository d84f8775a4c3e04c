"""The risk agent: positions from fills, risk metrics from prices, pre-trade checks, alerts.

* Fills arrive on the FILLS stream through the durable consumer ``risk``. Positions (one-way mode,
  average entry, realised PnL, fees) and the hourly equity marks are saved in the JetStream KV
  bucket ``<bot>_RISK`` (key ``book``) *before* each fill is acked, with the stream sequence of the
  last fill applied. A restart loads the book and the consumer resumes after the last ack; a fill
  delivered again (saved but not acked) has a sequence the book already holds and is skipped. So
  nothing is lost and nothing counted twice, and positions outlive the stream's ``max_age``. With no
  saved book (first start, bucket wiped) the consumer is reset and the whole stream is replayed.
* Prices come from the data agents through :class:`MarketDataClient`: pushed tickers for marks,
  1h klines (request/reply, cached by the data agents) for the return series.
* ``risk.check`` (request/reply, queue group ``risk``): ``OrderIntent`` → ``RiskDecision``.
* Every ``check_interval_seconds``: a ``RiskSnapshot`` on ``risk.metrics``, Prometheus gauges, and
  alerts (cooldown, de-duplicated by kind and subject) on JetStream and Telegram.

One replica: the book is the agent's own state, and two consumers sharing the durable would each
see half of the fills. The operator runs the risk agent as a singleton.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

import nats.js.errors
from nats.aio.msg import Msg
from nats.js.api import KeyValueConfig
from nats.js.kv import KeyValue
from prometheus_client import Counter, Gauge

from tradingbot_agents.bus import BusError
from tradingbot_agents.config import Config, Secrets
from tradingbot_agents.data.client import MarketDataClient, MarketDataUnavailable
from tradingbot_agents.kinds import AgentKind
from tradingbot_agents.messages import (
    ActivePairs,
    ControlCommand,
    FillEvent,
    HealthStatus,
    OrderIntent,
    RiskDecision,
    RiskSnapshot,
)
from tradingbot_agents.risk.alerts import AlertGate, AlertThresholds, evaluate
from tradingbot_agents.risk.checks import Limits, PortfolioState, check_intent
from tradingbot_agents.risk.metrics import aligned_returns
from tradingbot_agents.risk.notifier import AlertNotifier
from tradingbot_agents.risk.positions import PositionBook
from tradingbot_agents.risk.snapshot import build_snapshot
from tradingbot_agents.risk.telegram import TelegramClient
from tradingbot_agents.runtime import Agent

log = logging.getLogger(__name__)

DURABLE = "risk"
BOOK_KEY = "book"
INTERVAL = "1h"
HOUR_MS = 3_600_000
MAX_EQUITY_MARKS = 2_000
# Below the workers' risk_timeout (1 s): a check that must first fetch history still answers in time.
HISTORY_TIMEOUT_S = 0.6


class RiskAgent(Agent):
    kind = AgentKind.RISK

    def __init__(self, config: Config, *, secrets: Secrets | None = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.settings = config.risk_agent
        self.book = PositionBook()
        self.market = MarketDataClient(self.bus, self.subjects, self.agent_id)
        self.closes: dict[str, dict[int, float]] = {}  # symbol → closed 1h bar open time → close
        self.last_prices: dict[str, float] = {}  # symbol → close of the still-open bar
        self.market_time_ms = 0
        self.equity_marks: list[tuple[int, float]] = []  # (market hour, equity)
        self.halted = config.trading.halted
        self.watched: set[str] = set(config.pairs.static)
        self.last_snapshot: RiskSnapshot | None = None
        self.checks_approved = 0
        self.checks_rejected = 0
        self._kv: KeyValue | None = None
        secrets = secrets if secrets is not None else Secrets.from_env()
        self.telegram: TelegramClient | None = None
        if secrets.telegram_bot_token is not None and secrets.telegram_chat_id:
            self.telegram = TelegramClient(secrets.telegram_bot_token, secrets.telegram_chat_id,
                                           api_url=self.settings.telegram_api_url)
        self.notifier = AlertNotifier(self.bus, self.subjects, AlertGate(self.settings.alert_cooldown_minutes * 60),
                                      telegram=self.telegram, registry=self.registry)
        self._gauges = {
            name: Gauge(f"tradingbot_risk_{name}", help_text, registry=self.registry)
            for name, help_text in {
                "var_95": "Portfolio 1h historical VaR at 95%, fraction of equity",
                "var_99": "Portfolio 1h historical VaR at 99%, fraction of equity",
                "var_95_parametric": "Portfolio 1h Gaussian VaR at 95%, fraction of equity",
                "cvar_95": "Portfolio 1h expected shortfall at 95%, fraction of equity",
                "var_limit": "risk_agent.max_portfolio_var",
                "equity": "Equity in USDT (initial equity + PnL)",
                "pnl": "Realised + unrealised PnL − fees, USDT",
                "exposure_total": "Gross exposure, USDT",
                "leverage": "Gross exposure / equity",
                "drawdown": "Current fall of equity below its peak, fraction",
                "max_drawdown": "Largest fall of equity below its peak, fraction",
                "open_positions": "Open positions",
            }.items()
        }
        self._gauges["var_limit"].set(self.settings.max_portfolio_var)
        self._checks = Counter("tradingbot_risk_checks", "Pre-trade checks by result", ["result"],
                               registry=self.registry)
        self._fills = Counter("tradingbot_risk_fills", "Fills applied to the book", registry=self.registry)

    # -- lifecycle ----------------------------------------------------------------------------
    async def setup(self) -> None:
        await self.bus.ensure_stream(self.subjects.fills_stream)
        await self.bus.ensure_stream(self.subjects.alerts_stream)
        self._kv = await self._open_kv()
        if not await self._restore():
            await self._reset_consumer()
        await self.bus.subscribe(self.subjects.control, ControlCommand, self._on_control)
        await self.bus.subscribe(self.subjects.pairs_active, ActivePairs, self._on_pairs)
        await self._update_interest()
        await self.bus.serve(self.subjects.risk_check, OrderIntent, self.check, queue="risk")
        await self.bus.consume(self.subjects.fills_stream.name, DURABLE, self.subjects.fills_stream.subjects[0],
                               FillEvent, self._on_fill)
        self.spawn(self.notifier.run(), "telegram")
        if self.telegram is None:
            log.info("Telegram not configured (TELEGRAM_BOT_TOKEN/TELEGRAM_CHAT_ID): alerts go to JetStream only")

    async def run(self) -> None:
        await self.every(self.settings.check_interval_seconds, self.check_once)

    async def teardown(self) -> None:
        await self.market.close()
        if self.telegram is not None:
            await self.telegram.aclose()

    # -- persistence --------------------------------------------------------------------------
    async def _open_kv(self) -> KeyValue:
        bucket = self.subjects.kv_bucket("RISK")
        try:
            return await self.bus.js.key_value(bucket)
        except nats.js.errors.BucketNotFoundError:
            return await self.bus.js.create_key_value(KeyValueConfig(bucket=bucket, history=1))

    async def _restore(self) -> bool:
        assert self._kv is not None
        try:
            entry = await self._kv.get(BOOK_KEY)
        except nats.js.errors.KeyNotFoundError:
            return False
        data = json.loads(entry.value or b"{}")
        self.book = PositionBook.from_dict(data.get("book", {}))
        self.equity_marks = [(int(h), float(e)) for h, e in data.get("equity_marks", [])]
        log.info("restored %d positions after stream sequence %d (%d trades)", len(self.book.open_positions()),
                 self.book.last_seq, self.book.trades)
        return True

    async def _reset_consumer(self) -> None:
        """No saved book: replay the FILLS stream from its start into an empty one."""
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await self.bus.js.delete_consumer(self.subjects.fills_stream.name, DURABLE)

    async def _save(self) -> None:
        assert self._kv is not None
        document = {"book": self.book.to_dict(), "equity_marks": self.equity_marks, "saved_at": time.time()}
        await self._kv.put(BOOK_KEY, json.dumps(document).encode())

    # -- inputs -------------------------------------------------------------------------------
    async def _on_fill(self, fill: FillEvent, msg: Msg) -> None:
        before = self.book.to_dict()
        if not self.book.apply(fill, msg.metadata.sequence.stream):
            return
        try:
            await self._save()
        except Exception:
            self.book = PositionBook.from_dict(before)  # not saved → not applied; the nak redelivers it
            raise
        self._fills.inc()
        if fill.symbol not in self.market.symbols:
            await self._update_interest()

    async def _on_control(self, command: ControlCommand, _msg: Msg) -> None:
        self.halted = command.command == "halt"
        log.warning("trading %s by control command%s", "halted" if self.halted else "resumed",
                    f": {command.reason}" if command.reason else "")

    async def _on_pairs(self, pairs: ActivePairs, _msg: Msg) -> None:
        self.watched = set(self.config.pairs.static) | set(pairs.pairs)
        await self._update_interest()
        # Warm the history of newly active pairs now, so their first pre-trade check needs no fetch.
        await asyncio.gather(*(self._load_history(s) for s in self.watched - set(self.closes)))

    async def _update_interest(self) -> None:
        symbols = self.watched | set(self.book.symbols())
        if symbols and self.bus.connected:
            await self.market.want(symbols, [INTERVAL])

    # -- market data --------------------------------------------------------------------------
    async def _load_history(self, symbol: str) -> bool:
        limit = min(max(self.settings.var_window, self.settings.correlation_window) + 2, 1500)
        try:
            data = await self.market.klines(symbol, INTERVAL, limit, timeout=HISTORY_TIMEOUT_S)
        except (MarketDataUnavailable, BusError) as exc:
            log.info("no %s history for %s: %s", INTERVAL, symbol, exc)
            return False
        if not data.bars:
            return False
        # The last bar is the candle still forming: its close is today's price, not a bar return.
        *closed, current = data.bars
        self.closes[symbol] = {bar.open_time: bar.close for bar in closed}
        self.last_prices[symbol] = current.close
        self.market_time_ms = max(self.market_time_ms, current.open_time)
        return True

    async def _refresh_history(self, symbols: set[str]) -> None:
        if not symbols:
            return
        results = await asyncio.gather(*(self._load_history(s) for s in sorted(symbols)))
        missing = [s for s, ok in zip(sorted(symbols), results, strict=True) if not ok]
        if missing:
            self.health.set("market_data", HealthStatus.DEGRADED, f"no price history for {', '.join(missing)}")
        else:
            self.health.ok("market_data")

    def marks(self) -> dict[str, float]:
        marks = dict(self.last_prices)
        marks.update({s: t.price for s, t in self.market.tickers.items()})
        return marks

    # -- the pre-trade check ------------------------------------------------------------------
    def limits(self) -> Limits:
        s = self.settings
        return Limits(max_position_notional=s.max_position_notional, max_total_exposure=s.max_total_exposure,
                      max_leverage=s.max_leverage, max_portfolio_var=s.max_portfolio_var)

    async def check(self, intent: OrderIntent) -> RiskDecision:
        try:
            decision = await self._check(intent)
        except Exception as exc:
            log.exception("risk check of %s failed", intent.intent_id)
            decision = RiskDecision(intent_id=intent.intent_id, approved=False,
                                    reason=f"risk check failed internally ({type(exc).__name__}); retry later")
        if decision.approved:
            self.checks_approved += 1
        else:
            self.checks_rejected += 1
            log.info("rejected %s %s %g %s from %s: %s", intent.intent_id, intent.side.value, intent.quantity,
                     intent.symbol, intent.worker_id, decision.reason)
        self._checks.labels("approved" if decision.approved else "rejected").inc()
        return decision

    async def _check(self, intent: OrderIntent) -> RiskDecision:
        held = set(self.book.symbols())
        needs_history = not intent.reduce_only and not self.halted
        if needs_history:
            missing = {intent.symbol, *held} - set(self.closes)
            if missing:
                await asyncio.gather(*(self._load_history(s) for s in missing))
        marks = self.marks()
        symbols = [s for s in {intent.symbol, *held} if s in self.closes]
        state = PortfolioState(
            quantities={s: self.book.quantity(s) for s in {intent.symbol, *held}},
            notionals=self.book.notionals(marks),
            equity=self.settings.initial_equity + self.book.pnl(marks),
            returns=aligned_returns({s: self.closes[s] for s in symbols}, self.settings.var_window),
            halted=self.halted,
        )
        return check_intent(intent, state, self.limits())

    # -- the periodic round -------------------------------------------------------------------
    async def check_once(self) -> RiskSnapshot:
        """Refresh prices, publish a snapshot, record the hourly equity mark, raise alerts."""
        await self._refresh_history(self.watched | set(self.book.symbols()))
        snapshot = self.compute_snapshot()
        self.last_snapshot = snapshot
        self._export(snapshot)
        await self.bus.publish(self.subjects.risk_metrics, snapshot)
        await self._mark_equity(snapshot.equity)
        s = self.settings
        thresholds = AlertThresholds(max_portfolio_var=s.max_portfolio_var, max_drawdown=s.max_drawdown_alert,
                                     max_total_exposure=s.max_total_exposure,
                                     max_position_notional=s.max_position_notional, max_leverage=s.max_leverage)
        await self.notifier.raise_alerts(evaluate(snapshot, thresholds, current_drawdown=snapshot.drawdown))
        return snapshot

    def compute_snapshot(self) -> RiskSnapshot:
        recent = self.equity_marks[-(self.settings.var_window + 1):]
        spacing = (recent[-1][0] - recent[0][0]) / (len(recent) - 1) if len(recent) >= 2 else 1.0
        return build_snapshot(
            book=self.book, marks=self.marks(), initial_equity=self.settings.initial_equity, closes=self.closes,
            watched=sorted(self.watched), var_window=self.settings.var_window,
            correlation_window=self.settings.correlation_window,
            equity_marks=[e for _, e in recent], mark_spacing_hours=spacing,
        )

    async def _mark_equity(self, equity: float) -> None:
        """One equity mark per market hour (simulated hours in a replay), so Sharpe and Sortino
        annualise like hourly bars."""
        times = [t.time_ms for t in self.market.tickers.values() if t.time_ms]
        now_ms = max([self.market_time_ms, *times]) or int(time.time() * 1000)
        hour = now_ms // HOUR_MS
        if self.equity_marks and self.equity_marks[-1][0] >= hour:
            return
        self.equity_marks = [*self.equity_marks, (hour, equity)][-MAX_EQUITY_MARKS:]
        await self._save()

    def _export(self, snapshot: RiskSnapshot) -> None:
        g = self._gauges
        for name, value in (("var_95", snapshot.var_95_historical), ("var_99", snapshot.var_99_historical),
                            ("var_95_parametric", snapshot.var_95_parametric), ("cvar_95", snapshot.cvar_95),
                            ("max_drawdown", snapshot.max_drawdown)):
            if value is not None:
                g[name].set(value)
        g["equity"].set(snapshot.equity)
        g["pnl"].set(snapshot.pnl)
        g["exposure_total"].set(snapshot.exposure_total)
        g["leverage"].set(snapshot.leverage)
        g["drawdown"].set(snapshot.drawdown)
        g["open_positions"].set(snapshot.open_positions)

    # -- heartbeat ----------------------------------------------------------------------------
    def stats(self) -> dict[str, float]:
        marks = self.marks()
        stats = {
            "pnl": self.book.pnl(marks),
            "equity": self.settings.initial_equity + self.book.pnl(marks),
            "open_positions": float(len(self.book.open_positions())),
            "trades": float(self.book.trades),
            "checks_approved": float(self.checks_approved),
            "checks_rejected": float(self.checks_rejected),
            "alerts": float(self.notifier.raised),
        }
        snap = self.last_snapshot
        if snap is not None:
            for key, value in (("var_95", snap.var_95_historical), ("cvar_95", snap.cvar_95),
                               ("sharpe", snap.sharpe), ("max_drawdown", snap.max_drawdown)):
                if value is not None:
                    stats[key] = value
            stats["exposure_total"] = snap.exposure_total
            stats["leverage"] = snap.leverage
        return stats
