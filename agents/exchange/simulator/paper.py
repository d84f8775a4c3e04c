"""Paper matching against the replayed walk: orders, fills, one-way positions, wallet, PnL.

Conventions (stated so backtest and live agree, field note freqtrade #7433):
- bid/ask are not in the data: they are modelled as the walk price -/+ half of ``spread_bps``,
  rounded outwards to the data's tick;
- market orders fill at once at ask (buy) / bid (sell), worsened by ``slippage_bps``, taker fee;
- limit orders that would cross on arrival take liquidity the same way (post-only GTX is
  rejected instead); the others rest and fill at their limit price, maker fee, once the walked
  price touches them;
- one account may take at most ``max_volume_fraction`` of a candle's real volume per symbol; an
  order larger than that fills partially (market: the rest expires; limit: keeps resting and fills
  more in later candles);
- one-way mode: a fill against the position realises PnL into the wallet, a larger one flips it.
State is per API key and in memory (the simulator is a stand-in for the exchange, whose state is
its own; the bot keeps *its* state in JetStream).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from tradingbot_agents.exchange.simulator.data import HOUR_MS, Market


class SimError(Exception):
    def __init__(self, code: int, msg: str, http_status: int = 400) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.http_status = http_status


@dataclass
class SimOrder:
    order_id: int
    client_order_id: str
    symbol: str
    side: str
    type: str
    time_in_force: str
    price: float
    orig_qty: float
    reduce_only: bool
    time: int
    update_time: int
    checked_ms: int
    executed_qty: float = 0.0
    cum_quote: float = 0.0
    status: str = "NEW"

    @property
    def remaining(self) -> float:
        return self.orig_qty - self.executed_qty

    @property
    def is_open(self) -> bool:
        return self.status in ("NEW", "PARTIALLY_FILLED")


@dataclass
class PositionState:
    amount: float = 0.0
    entry_price: float = 0.0
    realized_pnl: float = 0.0
    update_time: int = 0


@dataclass
class AccountState:
    wallet: float
    positions: dict[str, PositionState] = field(default_factory=dict)
    orders: dict[int, SimOrder] = field(default_factory=dict)
    by_client_id: dict[str, int] = field(default_factory=dict)
    consumed: dict[tuple[str, int], float] = field(default_factory=dict)
    fees_paid: float = 0.0
    update_time: int = 0


class PaperExchange:
    def __init__(self, market: Market, *, spread_bps: float = 2.0, slippage_bps: float = 1.0,
                 taker_fee: float = 0.0005, maker_fee: float = 0.0002, max_volume_fraction: float = 0.1,
                 starting_balance: float = 10_000.0) -> None:
        self.market = market
        self.spread_bps = spread_bps
        self.slippage_bps = slippage_bps
        self.taker_fee = taker_fee
        self.maker_fee = maker_fee
        self.max_volume_fraction = max_volume_fraction
        self.starting_balance = starting_balance
        self.accounts: dict[str, AccountState] = {}
        self._ids = itertools.count(4_000_000_001)

    # ------------------------------------------------------------------ prices
    def tick(self, symbol: str) -> float:
        return 10.0 ** -self.market.series[symbol].price_decimals

    def bid_ask(self, symbol: str, t_ms: int) -> tuple[float, float]:
        mid = self.market.price_at(symbol, t_ms)
        tick = self.tick(symbol)
        half = mid * self.spread_bps / 20_000
        ticks = max(round(half / tick), 1) if self.spread_bps > 0 else 0
        return (self.market.round_price(symbol, mid - ticks * tick),
                self.market.round_price(symbol, mid + ticks * tick))

    def account(self, key: str) -> AccountState:
        if key not in self.accounts:
            self.accounts[key] = AccountState(wallet=self.starting_balance)
        return self.accounts[key]

    # ------------------------------------------------------------------ orders
    def new_order(self, key: str, params: dict[str, str], t_ms: int) -> SimOrder:
        acct = self.account(key)
        self.sync(key, t_ms)
        symbol = params.get("symbol", "")
        if symbol not in self.market.series:
            raise SimError(-1121, "Invalid symbol.")
        side = params.get("side", "").upper()
        if side not in ("BUY", "SELL"):
            raise SimError(-1117, "Invalid side.")
        order_type = params.get("type", "").upper()
        if order_type not in ("MARKET", "LIMIT"):
            raise SimError(-1116, "Invalid orderType.")
        qty = self._number(params, "quantity", self.market.series[symbol].qty_decimals)
        cid = params.get("newClientOrderId") or f"sim-{next(self._ids)}"
        if cid in acct.by_client_id and acct.orders[acct.by_client_id[cid]].is_open:
            raise SimError(-4116, "ClientOrderId is duplicated.")
        reduce_only = params.get("reduceOnly", "false").lower() == "true"
        tif = params.get("timeInForce", "GTC").upper()
        price = 0.0
        if order_type == "LIMIT":
            price = self._number(params, "price", self.market.series[symbol].price_decimals)
        if reduce_only:
            pos = acct.positions.get(symbol, PositionState())
            closing = (side == "SELL" and pos.amount > 0) or (side == "BUY" and pos.amount < 0)
            if not closing:
                raise SimError(-2022, "ReduceOnly Order is rejected.")
            qty = min(qty, abs(pos.amount))
        order = SimOrder(next(self._ids), cid, symbol, side, order_type, tif, price, qty, reduce_only,
                         t_ms, t_ms, t_ms)
        bid, ask = self.bid_ask(symbol, t_ms)
        marketable = order_type == "MARKET" or (side == "BUY" and price >= ask) or (side == "SELL" and price <= bid)
        if marketable and order_type == "LIMIT" and tif == "GTX":
            raise SimError(-5022, "Due to the order could not be executed as maker, the Post Only order will be"
                                  " rejected.")
        acct.orders[order.order_id] = order
        acct.by_client_id[cid] = order.order_id
        if marketable:
            slip = 1 + self.slippage_bps / 10_000 if side == "BUY" else 1 - self.slippage_bps / 10_000
            fill_price = self.market.round_price(symbol, (ask if side == "BUY" else bid) * slip)
            if order_type == "LIMIT":  # never worse than the limit
                fill_price = min(fill_price, price) if side == "BUY" else max(fill_price, price)
            self._fill(acct, order, fill_price, t_ms, self.taker_fee)
            if order.remaining > 1e-12 and (order_type == "MARKET" or tif in ("IOC", "FOK")):
                order.status = "EXPIRED"
        elif tif in ("IOC", "FOK"):
            order.status = "EXPIRED"
        return order

    def cancel(self, key: str, symbol: str, order_id: str | None, client_id: str | None, t_ms: int) -> SimOrder:
        self.sync(key, t_ms)
        order = self.find(key, symbol, order_id, client_id)
        if not order.is_open:
            raise SimError(-2011, "Unknown order sent.")
        order.status = "CANCELED"
        order.update_time = t_ms
        return order

    def find(self, key: str, symbol: str, order_id: str | None, client_id: str | None) -> SimOrder:
        acct = self.account(key)
        oid: int | None = None
        if order_id:
            oid = int(order_id) if order_id.isdigit() else None
        elif client_id:
            oid = acct.by_client_id.get(client_id)
        else:
            raise SimError(-1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!")
        order = acct.orders.get(oid) if oid is not None else None
        if order is None or order.symbol != symbol:
            raise SimError(-2013, "Order does not exist.")
        return order

    def open_orders(self, key: str, symbol: str | None, t_ms: int) -> list[SimOrder]:
        self.sync(key, t_ms)
        return [o for o in self.account(key).orders.values() if o.is_open and (symbol is None or o.symbol == symbol)]

    # ------------------------------------------------------------------ matching
    def sync(self, key: str, t_ms: int) -> None:
        """Fill resting limit orders whose price the walk touched since they were last checked."""
        acct = self.account(key)
        for order in list(acct.orders.values()):
            if order.is_open and order.type == "LIMIT" and t_ms > order.checked_ms:
                self._match_resting(acct, order, t_ms)

    def _match_resting(self, acct: AccountState, order: SimOrder, t_ms: int) -> None:
        m = self.market
        s = m.series[order.symbol]
        i0, k0 = m.locate(order.checked_ms)
        i1, k1 = m.locate(t_ms)
        order.checked_ms = t_ms
        for i in range(i0, i1 + 1):
            first = k0 + 1 if i == i0 else 0
            last = k1 if i == i1 else m.steps - 1
            if first > last:
                continue
            if first == 0 and last == m.steps - 1:
                lo, hi = float(s.low[i]), float(s.high[i])
            else:
                prices = m.step_prices(order.symbol, i, first, last)
                lo, hi = min(prices), max(prices)
            touched = lo <= order.price if order.side == "BUY" else hi >= order.price
            if touched:
                when = s.open_time[i] + (last * HOUR_MS) // m.steps
                self._fill(acct, order, order.price, int(when), self.maker_fee, candle=i)
                if not order.is_open:
                    return

    def _fill(self, acct: AccountState, order: SimOrder, price: float, t_ms: int, fee_rate: float, *,
              candle: int | None = None) -> None:
        m = self.market
        index = candle if candle is not None else m.locate(t_ms)[0]
        cap = float(m.series[order.symbol].volume[index]) * self.max_volume_fraction
        used = acct.consumed.get((order.symbol, index), 0.0)
        qty = round(min(order.remaining, max(cap - used, 0.0)), m.series[order.symbol].qty_decimals)
        if qty <= 0:
            return
        acct.consumed[(order.symbol, index)] = used + qty
        order.executed_qty = round(order.executed_qty + qty, 12)
        order.cum_quote += qty * price
        order.status = "FILLED" if order.remaining <= 1e-12 else "PARTIALLY_FILLED"
        order.update_time = t_ms
        fee = qty * price * fee_rate
        acct.fees_paid += fee
        acct.wallet -= fee
        self._apply_position(acct, order.symbol, qty if order.side == "BUY" else -qty, price, t_ms)

    def _apply_position(self, acct: AccountState, symbol: str, signed_qty: float, price: float, t_ms: int) -> None:
        pos = acct.positions.setdefault(symbol, PositionState())
        decimals = self.market.series[symbol].qty_decimals
        if pos.amount == 0 or (pos.amount > 0) == (signed_qty > 0):
            new_amount = pos.amount + signed_qty
            pos.entry_price = (pos.entry_price * abs(pos.amount) + price * abs(signed_qty)) / abs(new_amount)
            pos.amount = round(new_amount, decimals)
        else:
            closing = min(abs(signed_qty), abs(pos.amount))
            pnl = (price - pos.entry_price) * closing * (1 if pos.amount > 0 else -1)
            pos.realized_pnl += pnl
            acct.wallet += pnl
            pos.amount = round(pos.amount + signed_qty, decimals)
            if abs(signed_qty) > closing:
                pos.entry_price = price  # flipped: the rest opens at this fill
            elif pos.amount == 0:
                pos.entry_price = 0.0
        pos.update_time = t_ms
        acct.update_time = t_ms

    def unrealized(self, key: str, t_ms: int) -> float:
        acct = self.account(key)
        return sum((self.market.price_at(sym, t_ms) - p.entry_price) * p.amount
                   for sym, p in acct.positions.items() if p.amount)

    @staticmethod
    def _number(params: dict[str, str], name: str, decimals: int) -> float:
        raw = params.get(name)
        if raw is None or raw == "":
            raise SimError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")
        try:
            value = float(raw)
        except ValueError:
            raise SimError(-1100, f"Illegal characters found in parameter '{name}'; legal range is "
                                  "'^([0-9]{1,20})(\\.[0-9]{1,20})?$'.") from None
        if value <= 0:
            raise SimError(-4003 if name == "quantity" else -4001,
                           f"{'Quantity' if name == 'quantity' else 'Price'} less than or equal to zero.")
        if "." in raw and len(raw.rstrip("0").split(".")[1]) > decimals:
            raise SimError(-1111, "Precision is over the maximum defined for this asset.")
        return value
