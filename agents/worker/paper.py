"""The paper broker: shadow-mode execution inside the worker (pure; never touches an order endpoint).

Assumptions, stated so paper results are not flattering (field notes: freqtrade #3685, #5082):

* prices are the last traded price the data agent serves (the simulator's walk through the real
  candle); bid/ask are not in the data and are modelled as last ∓ half of ``spread_bps``;
* a market order takes liquidity: buy at ask, sell at bid, worsened by ``slippage_bps``, and pays
  ``taker_fee`` on the notional;
* a limit order that would cross on arrival fills like a market order but never worse than its
  limit; otherwise it rests and fills at its limit price, ``maker_fee``, once a later candle's range
  reaches it (a buy when the low is at or below the limit, a sell when the high is at or above);
* the worker may take at most ``max_volume_fraction`` of a candle's volume per pair; an order larger
  than what is left fills partially (market: the rest expires; limit: keeps resting for later
  candles). The candle volume used is the last CLOSED candle's (the open candle's volume so far
  would understate it early in the hour);
* resting limit orders live in this worker's memory: they are cancelled when the pair's lease is
  released, and lost (never filled) if the worker dies; positions are not, they are rebuilt from
  the FILLS stream.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tradingbot_agents.messages import FillEvent, OrderEvent, Side
from tradingbot_agents.worker.positions import EPSILON, PositionBook, realized_on

QTY_DECIMALS = 8


@dataclass(frozen=True)
class PaperSettings:
    spread_bps: float = 2.0
    slippage_bps: float = 1.0
    taker_fee: float = 0.0005
    maker_fee: float = 0.0002
    max_volume_fraction: float = 0.1


@dataclass(frozen=True)
class OrderRequest:
    client_order_id: str
    symbol: str
    side: Side
    quantity: float
    order_type: str = "MARKET"  # MARKET or LIMIT
    limit_price: float | None = None
    reduce_only: bool = False


@dataclass(frozen=True)
class MarketState:
    """What the broker needs to know about a pair now."""

    last_price: float
    candle_id: int  # open time of the current candle: the volume budget is per candle
    candle_volume: float
    low: float | None = None  # range since the previous check (resting limit orders)
    high: float | None = None


@dataclass
class Execution:
    orders: list[OrderEvent] = field(default_factory=list)
    fills: list[FillEvent] = field(default_factory=list)

    def extend(self, other: Execution) -> None:
        self.orders.extend(other.orders)
        self.fills.extend(other.fills)


@dataclass
class _Resting:
    request: OrderRequest
    filled: float = 0.0
    fills: int = 0

    @property
    def remaining(self) -> float:
        return round(self.request.quantity - self.filled, QTY_DECIMALS)


class PaperBroker:
    def __init__(self, settings: PaperSettings, book: PositionBook, *, worker_id: str, mode: str = "shadow") -> None:
        self.settings = settings
        self.book = book
        self.worker_id = worker_id
        self.mode = mode
        self.resting: dict[str, _Resting] = {}
        self._consumed: dict[tuple[str, int], float] = {}

    def bid_ask(self, last: float) -> tuple[float, float]:
        half = last * self.settings.spread_bps / 20_000
        return last - half, last + half

    def submit(self, request: OrderRequest, market: MarketState) -> Execution:
        out = Execution()
        quantity = request.quantity
        if request.reduce_only:
            pos = self.book.get(request.symbol).amount
            closing = (request.side is Side.SELL and pos > EPSILON) or (request.side is Side.BUY and pos < -EPSILON)
            if not closing:
                out.orders.append(self._event(request, "REJECTED"))
                return out
            quantity = min(quantity, abs(pos))
        state = _Resting(OrderRequest(request.client_order_id, request.symbol, request.side,
                                      round(quantity, QTY_DECIMALS), request.order_type, request.limit_price,
                                      request.reduce_only))
        out.orders.append(self._event(state.request, "NEW"))
        bid, ask = self.bid_ask(market.last_price)
        limit = request.limit_price
        marketable = request.order_type == "MARKET" or limit is None or \
            (request.side is Side.BUY and limit >= ask) or (request.side is Side.SELL and limit <= bid)
        if marketable:
            slip = self.settings.slippage_bps / 10_000
            price = ask * (1 + slip) if request.side is Side.BUY else bid * (1 - slip)
            if limit is not None:  # never worse than the limit
                price = min(price, limit) if request.side is Side.BUY else max(price, limit)
            self._fill(state, price, market, self.settings.taker_fee, out)
            if state.remaining > 0:
                out.orders.append(self._event(state.request, "EXPIRED", filled=state.filled))
        else:
            self.resting[request.client_order_id] = state
        return out

    def on_market(self, symbol: str, market: MarketState) -> Execution:
        """Fill resting limit orders of ``symbol`` whose price the range since the last check reached."""
        out = Execution()
        low = market.low if market.low is not None else market.last_price
        high = market.high if market.high is not None else market.last_price
        for cid, state in list(self.resting.items()):
            request = state.request
            if request.symbol != symbol or request.limit_price is None:
                continue
            touched = low <= request.limit_price if request.side is Side.BUY else high >= request.limit_price
            if touched:
                self._fill(state, request.limit_price, market, self.settings.maker_fee, out)
                if state.remaining <= 0:
                    del self.resting[cid]
        return out

    def cancel_all(self, symbol: str) -> list[OrderEvent]:
        events = []
        for cid, state in list(self.resting.items()):
            if state.request.symbol == symbol:
                del self.resting[cid]
                events.append(self._event(state.request, "CANCELED", filled=state.filled))
        return events

    def _fill(self, state: _Resting, price: float, market: MarketState, fee_rate: float, out: Execution) -> None:
        request = state.request
        key = (request.symbol, market.candle_id)
        cap = market.candle_volume * self.settings.max_volume_fraction
        used = self._consumed.get(key, 0.0)
        qty = round(min(state.remaining, max(cap - used, 0.0)), QTY_DECIMALS)
        if qty <= 0:
            return
        self._consumed[key] = used + qty
        state.filled = round(state.filled + qty, QTY_DECIMALS)
        state.fills += 1
        pnl = realized_on(self.book.get(request.symbol), request.side, qty, price)
        fill = FillEvent(fill_id=f"{request.client_order_id}-{state.fills}", client_order_id=request.client_order_id,
                         worker_id=self.worker_id, symbol=request.symbol, side=request.side, quantity=qty,
                         price=price, fee=qty * price * fee_rate, realized_pnl=pnl, mode=self.mode)
        self.book.apply(fill)
        out.fills.append(fill)
        status = "FILLED" if state.remaining <= 0 else "PARTIALLY_FILLED"
        out.orders.append(self._event(request, status, filled=state.filled, price=price))

    def _event(self, request: OrderRequest, status: str, *, filled: float = 0.0,
               price: float | None = None) -> OrderEvent:
        return OrderEvent(client_order_id=request.client_order_id, worker_id=self.worker_id, symbol=request.symbol,
                          side=request.side, order_type=request.order_type, quantity=request.quantity,
                          price=price if price is not None else request.limit_price, status=status, mode=self.mode)
