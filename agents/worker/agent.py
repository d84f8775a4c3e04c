"""The trading worker: the agent that scales out.

Each replica holds some pairs through leases (:mod:`.leases`), chosen by :mod:`.allocation`
(the coordinator's :class:`PairAssignment` when there is a fresh one, a fair share otherwise).
Every ``loop_interval``, for each pair it holds:

klines and last price (data agents) → indicators + sentiment + RL advice → :class:`TradeSignal`
→ :class:`OrderIntent` → risk pre-check (request/reply; no answer in ``risk_timeout`` = no trade)
→ execution: the in-process paper broker in shadow/debug mode (never an order endpoint), signed
orders in production → every order and fill on JetStream (ORDERS/FILLS streams).

State that must survive a restart is not kept here: positions are rebuilt from the FILLS stream on
start and the worker keeps following that stream, so a pair taken over from a dead worker comes with
its position. The kill switch (``trading.halted`` or a ``halt`` command on ``control``) is checked
right before every order: nothing new is opened from the moment it is seen, and open positions are
still closed on the opposite signal.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.js.kv import KeyValue

from tradingbot_agents.bus import BusError, RequestTimeout
from tradingbot_agents.config import Mode, Secrets
from tradingbot_agents.data.client import MarketDataClient, MarketDataUnavailable
from tradingbot_agents.exchange import ExchangeClient, ExchangeError
from tradingbot_agents.kinds import AgentKind
from tradingbot_agents.messages import (
    ActivePairs,
    ControlCommand,
    FillEvent,
    HealthStatus,
    Heartbeat,
    KlineBar,
    OrderEvent,
    OrderIntent,
    PairAssignment,
    RiskDecision,
    RLAdvice,
    SentimentScore,
    Side,
    TradeSignal,
)
from tradingbot_agents.pairselector.store import open_pairs_bucket, read_active_pairs
from tradingbot_agents.runtime import Agent
from tradingbot_agents.worker import allocation
from tradingbot_agents.worker.leases import LeaseTable, open_lease_bucket
from tradingbot_agents.worker.live import LiveBroker, client_order_id, production_refusal
from tradingbot_agents.worker.paper import Execution, MarketState, OrderRequest, PaperBroker, PaperSettings
from tradingbot_agents.worker.positions import EPSILON, PositionBook, realized_on
from tradingbot_agents.worker.signal import Signal, SignalSettings, combine, rl_component

log = logging.getLogger(__name__)

EXIT_REFUSED = 2
REBUILD_TIMEOUT_S = 10.0


class TradingWorkerAgent(Agent):
    kind = AgentKind.TRADING_WORKER

    def __init__(self, *args: Any, secrets: Secrets | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.settings = self.config.trading_worker
        self.secrets = secrets if secrets is not None else Secrets.from_env()
        self.lease_ttl = self.config.coordinator.missed_heartbeats_failed * self.config.runtime.heartbeat_interval
        self.book = PositionBook()
        self.paper = PaperBroker(
            PaperSettings(self.settings.paper_spread_bps, self.settings.paper_slippage_bps, self.settings.taker_fee,
                          self.settings.maker_fee, self.settings.max_volume_fraction),
            self.book, worker_id=self.agent_id, mode="shadow")
        self.live: LiveBroker | None = None
        self.market: MarketDataClient | None = None
        self.leases: LeaseTable | None = None
        self.halted = self.config.trading.halted
        self.active: list[str] = []
        self.assignment: PairAssignment | None = None
        self.peers: dict[str, float] = {}  # worker agent id -> monotonic time of its last heartbeat
        self.sentiment: dict[str, tuple[float, float]] = {}  # symbol -> (score, monotonic time)
        self.rl: dict[str, tuple[float, float]] = {}
        self.marks: dict[str, float] = {}
        self._last_candle: dict[str, int] = {}
        self._fills_sub: Any = None
        self._fills_seq = 0
        self._order_events: dict[str, int] = {}
        self.counters = {"trades": 0, "orders": 0, "signals": 0, "risk_rejected": 0, "risk_timeouts": 0,
                         "halted_skips": 0, "own_realized": 0.0}

    # -- lifecycle ----------------------------------------------------------------------------
    async def serve(self) -> int:
        refusal = production_refusal(self.config, self.secrets)
        if refusal is not None:
            log.error("%s", refusal)
            return EXIT_REFUSED
        return await super().serve()

    async def setup(self) -> None:
        if self.config.mode is Mode.DEBUG:
            logging.getLogger("tradingbot_agents.worker").setLevel(logging.DEBUG)
        for spec in (self.subjects.orders_stream, self.subjects.fills_stream):
            await self.bus.ensure_stream(spec)
        if self.config.mode is Mode.PRODUCTION:
            exchange = self.config.exchange
            self.live = LiveBroker(ExchangeClient(
                exchange.base_url, api_key=self.secrets.binance_api_key, api_secret=self.secrets.binance_api_secret,
                timeout_s=exchange.timeout_s, recv_window_ms=exchange.recv_window_ms, registry=self.registry,
                sync_on_enter=False), worker_id=self.agent_id, taker_fee=self.settings.taker_fee)
            await self.live.start()
        await self._rebuild_positions()
        self.market = MarketDataClient(self.bus, self.subjects, self.agent_id)
        kv = await open_lease_bucket(self.bus.js, self.subjects.kv_bucket("LEASES"), self.lease_ttl)
        # A bucket created earlier with another heartbeat setting keeps its TTL: fence on the shorter.
        bucket_ttl = (await kv.status()).ttl or self.lease_ttl
        if abs(bucket_ttl - self.lease_ttl) > 1e-3:
            log.warning("lease bucket TTL is %.3fs, not %.3fs (created with other settings)", bucket_ttl,
                        self.lease_ttl)
        self.lease_ttl = min(bucket_ttl, self.lease_ttl)
        self.leases = LeaseTable(kv, self.agent_id, self.lease_ttl)
        pairs_kv: KeyValue = await open_pairs_bucket(self.bus.js, self.subjects.kv_bucket("PAIRS"))
        current = await read_active_pairs(pairs_kv)
        if current is not None:
            self.active = list(current.pairs)
        subjects = self.subjects
        await self.bus.subscribe(subjects.pairs_active, ActivePairs, self._on_active)
        await self.bus.subscribe(subjects.assignment, PairAssignment, self._on_assignment)
        await self.bus.subscribe(subjects.sentiment_all, SentimentScore, self._on_sentiment)
        await self.bus.subscribe(subjects.rl_advice("*"), RLAdvice, self._on_rl)
        await self.bus.subscribe(subjects.control, ControlCommand, self._on_control)
        await self.bus.subscribe(subjects.heartbeat(self.kind, "*"), Heartbeat, self._on_peer)

    async def run(self) -> None:
        """Two loops: leases every quarter of their TTL (so a renewal is never late), trading every
        ``loop_interval``. Both end when the agent stops."""
        await asyncio.gather(self.every(self.lease_ttl / 4, self._balance),
                             self.every(self.settings.loop_interval, self.trade_round))

    async def teardown(self) -> None:
        if self.leases is not None:
            for symbol in self.leases.held:
                await self._publish_execution(Execution(orders=self.paper.cancel_all(symbol)))
            await self.leases.release_all()
        if self._fills_sub is not None:
            await self._fills_sub.unsubscribe()
        if self.market is not None:
            await self.market.close()
        if self.live is not None:
            await self.live.aclose()

    # -- positions from the FILLS stream ------------------------------------------------------
    async def _rebuild_positions(self) -> None:
        """Replay every fill of the bot (all workers) into the book, then keep following the stream.

        Waits until the stream's last sequence at start has been applied (bounded), so the worker
        never trades on a half-rebuilt position."""
        stream = self.subjects.fills_stream
        info = await self.bus.js.stream_info(stream.name)
        target = info.state.last_seq
        caught_up = asyncio.Event()
        if target == 0:
            caught_up.set()

        async def on_fill(msg: Msg) -> None:
            try:
                fill = FillEvent.model_validate_json(msg.data)
            except ValueError:
                log.warning("junk on the fills stream: %r", msg.data[:100])
                return
            self.book.apply(fill)
            self._fills_seq = msg.metadata.sequence.stream
            if self._fills_seq >= target:
                caught_up.set()

        self._fills_sub = await self.bus.js.subscribe(f"{self.subjects.prefix}.fills.>", cb=on_fill,
                                                      ordered_consumer=True, stream=stream.name)
        try:
            await asyncio.wait_for(caught_up.wait(), REBUILD_TIMEOUT_S)
        except TimeoutError:
            self.health.set("positions", HealthStatus.DEGRADED, "fills replay did not catch up")
            return
        log.info("positions rebuilt from %d fills: %d open", self.book.fills_applied, len(self.book.open_symbols()))
        self.health.ok("positions")

    # -- inputs -------------------------------------------------------------------------------
    async def _on_active(self, active: ActivePairs, _msg: Msg) -> None:
        self.active = list(active.pairs)

    async def _on_assignment(self, assignment: PairAssignment, _msg: Msg) -> None:
        self.assignment = assignment

    async def _on_sentiment(self, score: SentimentScore, _msg: Msg) -> None:
        self.sentiment[score.symbol] = (score.score, time.monotonic())

    async def _on_rl(self, advice: RLAdvice, _msg: Msg) -> None:
        self.rl[advice.symbol] = (rl_component(advice.action, advice.confidence), time.monotonic())

    async def _on_control(self, command: ControlCommand, _msg: Msg) -> None:
        halted = command.command == "halt" or (command.command == "resume" and self.config.trading.halted)
        if halted != self.halted:
            log.warning("trading %s by control command%s", "halted" if halted else "resumed",
                        f": {command.reason}" if command.reason else "")
        self.halted = halted

    async def _on_peer(self, beat: Heartbeat, _msg: Msg) -> None:
        self.peers[beat.agent_id] = time.monotonic()

    def live_workers(self) -> int:
        horizon = time.monotonic() - self.lease_ttl
        return len({self.agent_id, *(p for p, seen in self.peers.items() if seen >= horizon)})

    def _fresh(self, values: dict[str, tuple[float, float]], symbol: str) -> float | None:
        entry = values.get(symbol)
        if entry is None or time.monotonic() - entry[1] > self.settings.input_max_age:
            return None
        return entry[0]

    # -- leases -------------------------------------------------------------------------------
    def assigned(self) -> list[str] | None:
        assignment = self.assignment
        if assignment is None or time.time() - assignment.at > self.settings.assignment_max_age:
            return None
        return assignment.assignments.get(self.agent_id, [])

    async def _balance(self) -> None:
        """Renew, then release and take leases towards the plan (every quarter of the TTL)."""
        assert self.leases is not None
        for symbol in await self.leases.renew():
            await self._publish_execution(Execution(orders=self.paper.cancel_all(symbol)))
        managed = allocation.managed_pairs(self.active, self.book.open_symbols())
        plan = allocation.plan(managed, self.leases.held, assigned=self.assigned(),
                               live_workers=self.live_workers(), max_pairs=self.settings.max_pairs_per_worker)
        for symbol in plan.release:
            await self._publish_execution(Execution(orders=self.paper.cancel_all(symbol)))
            await self.leases.release(symbol)
        for symbol in plan.acquire:
            if len(self.leases.held) >= plan.target:
                break
            await self.leases.acquire(symbol)

    # -- trading ------------------------------------------------------------------------------
    async def trade_round(self) -> None:
        assert self.leases is not None
        held = self.leases.held
        results = await asyncio.gather(*(self.trade_pair(s) for s in held), return_exceptions=True)
        failures = [f"{s}: {r}" for s, r in zip(held, results, strict=True) if isinstance(r, BaseException)]
        for symbol, result in zip(held, results, strict=True):
            if isinstance(result, BaseException) and not isinstance(result, MarketDataUnavailable | BusError):
                log.error("trading %s failed", symbol, exc_info=result)
        if failures:
            self.health.set("trading", HealthStatus.DEGRADED, "; ".join(failures)[:300])
        else:
            self.health.ok("trading")

    async def trade_pair(self, symbol: str) -> Signal:
        assert self.market is not None
        klines, ticker = await asyncio.gather(
            self.market.klines(symbol, self.settings.kline_interval, self.settings.kline_limit),
            self.market.ticker(symbol))
        bars = klines.bars
        last = ticker.price
        self.marks[symbol] = last
        state = self._market_state(symbol, bars, last)
        await self._publish_execution(self.paper.on_market(symbol, state))
        closes = [b.close for b in bars[:-1]] + [last]
        signal = combine(closes, SignalSettings(
            self.settings.fast_ema, self.settings.slow_ema, self.settings.rsi_period, self.settings.rsi_overbought,
            self.settings.rsi_oversold, self.settings.sentiment_weight, self.settings.rl_weight,
            self.settings.signal_threshold),
            sentiment=self._fresh(self.sentiment, symbol), rl=self._fresh(self.rl, symbol))
        self.counters["signals"] += 1
        await self.bus.publish(self.subjects.signals(symbol), TradeSignal(
            symbol=symbol, worker_id=self.agent_id, score=signal.score, action=signal.action,
            components=signal.components))
        log.debug("%s signal %.3f %s %s", symbol, signal.score, signal.action, signal.components)
        request = self._order_for(symbol, signal.action, last)
        if request is not None:
            await self.execute(request, state)
        return signal

    def _market_state(self, symbol: str, bars: list[KlineBar], last: float) -> MarketState:
        """Volume budget from the last closed candle; the range since the previous round covers the
        candles closed in between (for resting limit orders) and the last price."""
        current = bars[-1]
        closed_volume = bars[-2].volume if len(bars) >= 2 else current.volume
        previous = self._last_candle.get(symbol, current.open_time)
        newly_closed = [b for b in bars[:-1] if b.open_time >= previous]
        self._last_candle[symbol] = current.open_time
        low = min([last, *(b.low for b in newly_closed)])
        high = max([last, *(b.high for b in newly_closed)])
        return MarketState(last_price=last, candle_id=current.open_time, candle_volume=closed_volume, low=low,
                           high=high)

    def _order_for(self, symbol: str, action: str, price: float) -> OrderRequest | None:
        """Closing orders on an opposite signal; opening orders only when flat, the pair is active,
        there is no resting order, and trading is not halted."""
        if action == "hold":
            return None
        side = Side.BUY if action == "buy" else Side.SELL
        position = self.book.get(symbol).amount
        intent = uuid.uuid4().hex
        if (side is Side.BUY and position < -EPSILON) or (side is Side.SELL and position > EPSILON):
            return OrderRequest(client_order_id(intent), symbol, side, abs(position), reduce_only=True)
        if abs(position) > EPSILON or symbol not in self.active:
            return None
        if any(r.request.symbol == symbol for r in self.paper.resting.values()):
            return None
        quantity = self.settings.order_notional / price
        if self.settings.order_type == "LIMIT":
            offset = self.settings.limit_offset_bps / 10_000
            limit = price * (1 - offset) if side is Side.BUY else price * (1 + offset)
            return OrderRequest(client_order_id(intent), symbol, side, quantity, "LIMIT", limit)
        return OrderRequest(client_order_id(intent), symbol, side, quantity)

    async def execute(self, request: OrderRequest, state: MarketState) -> bool:
        """Risk pre-check, then the broker. Returns True if an order was sent to a broker."""
        assert self.leases is not None
        if self.halted and not request.reduce_only:
            self.counters["halted_skips"] += 1
            log.info("halted: not opening %s %s", request.side.value, request.symbol)
            return False
        intent = OrderIntent(intent_id=request.client_order_id, worker_id=self.agent_id, symbol=request.symbol,
                             side=request.side, quantity=request.quantity,
                             price=request.limit_price or state.last_price, reduce_only=request.reduce_only)
        try:
            decision = await self.bus.request(self.subjects.risk_check, intent, RiskDecision,
                                              timeout=self.settings.risk_timeout)
        except BusError as exc:
            self.counters["risk_timeouts"] += 1
            reason = "no answer" if isinstance(exc, RequestTimeout) else str(exc)
            log.warning("no trade on %s: risk pre-check failed (%s)", request.symbol, reason)
            self.health.set("risk", HealthStatus.DEGRADED, f"risk pre-check: {reason}")
            return False
        self.health.ok("risk")
        if not decision.approved:
            self.counters["risk_rejected"] += 1
            log.info("risk rejected %s %s %.6f: %s", request.side.value, request.symbol, request.quantity,
                     decision.reason)
            return False
        # Re-check the fence and the kill switch: either may have changed during the round trip.
        if not self.leases.holds(request.symbol):
            log.warning("lease of %s lapsed before execution; order dropped", request.symbol)
            return False
        if self.halted and not request.reduce_only:
            self.counters["halted_skips"] += 1
            return False
        if self.live is not None:
            try:
                execution = await self.live.submit(request)
            except ExchangeError as exc:
                log.error("order %s on %s failed: %s", request.client_order_id, request.symbol, exc)
                self.health.set("exchange", HealthStatus.DEGRADED, str(exc)[:200])
                return False
            execution.fills[:] = [self._with_pnl(f) for f in execution.fills]
            for fill in execution.fills:
                self.book.apply(fill)
        else:
            execution = self.paper.submit(request, state)
        self.counters["orders"] += 1
        await self._publish_execution(execution)
        return True

    def _with_pnl(self, fill: FillEvent) -> FillEvent:
        pnl = realized_on(self.book.get(fill.symbol), fill.side, fill.quantity, fill.price)
        return fill.model_copy(update={"realized_pnl": pnl})

    async def _publish_execution(self, execution: Execution) -> None:
        for order in execution.orders:
            # One id per event of an order (a limit order can be partially filled several times).
            n = self._order_events[order.client_order_id] = self._order_events.get(order.client_order_id, 0) + 1
            msg_id = f"{order.client_order_id}:{order.status}:{n}"
            await self._durable(self.subjects.orders(order.symbol), order, msg_id)
        for fill in execution.fills:
            self.counters["trades"] += 1
            self.counters["own_realized"] += fill.realized_pnl - fill.fee
            await self._durable(self.subjects.fills(fill.symbol), fill, fill.fill_id)
            log.info("%s fill %s %s %.6f @ %.6f fee %.6f pnl %.6f", fill.mode, fill.side.value, fill.symbol,
                     fill.quantity, fill.price, fill.fee, fill.realized_pnl)

    async def _durable(self, subject: str, message: OrderEvent | FillEvent, msg_id: str) -> None:
        """Publish to JetStream, retrying briefly: the de-duplication id makes a retry harmless."""
        for attempt in range(3):
            try:
                await self.bus.publish_durable(subject, message, msg_id=msg_id)
                return
            except (nats.errors.Error, nats.js.errors.Error, TimeoutError) as exc:
                log.warning("publishing %s failed (attempt %d): %s", msg_id, attempt + 1, exc)
                await asyncio.sleep(0.1 * (attempt + 1))
        self.health.set("jetstream", HealthStatus.DEGRADED, f"could not store {msg_id}")

    # -- reporting ----------------------------------------------------------------------------
    def stats(self) -> dict[str, float]:
        held = self.leases.held if self.leases is not None else []
        open_held = [s for s in held if abs(self.book.get(s).amount) > EPSILON]
        unrealized = self.book.unrealized({s: self.marks[s] for s in held if s in self.marks})
        realized = float(self.counters["own_realized"])
        return {
            "pairs_held": float(len(held)),
            "trades": float(self.counters["trades"]),
            "orders": float(self.counters["orders"]),
            "open_positions": float(len(open_held)),
            "pnl": round(realized + unrealized, 6),
            "realized_pnl": round(realized, 6),
            "unrealized_pnl": round(unrealized, 6),
            "signals": float(self.counters["signals"]),
            "risk_rejected": float(self.counters["risk_rejected"]),
            "risk_timeouts": float(self.counters["risk_timeouts"]),
            "halted": 1.0 if self.halted else 0.0,
        }
