"""Production execution: signed orders through the exchange client, and the gate in front of it.

Production is the only mode that can lose real money, so it starts only when three independent
things agree: ``mode: production``, ``trading_worker.allow_live_orders: true`` and both exchange
keys present in the environment (:class:`Secrets`). Anything less and the worker refuses to start
(exit 2) with the reason, instead of silently falling back to paper and letting an operator believe
the bot is live.

Orders are idempotent: the client order id is derived from the intent id, and
:meth:`ExchangeClient.new_order` looks an order up by that id before ever re-sending it.
"""

from __future__ import annotations

import hashlib
import logging
from decimal import ROUND_DOWN, Decimal

from tradingbot_agents.config import Config, Mode, Secrets
from tradingbot_agents.exchange import ExchangeClient, Order
from tradingbot_agents.messages import FillEvent, OrderEvent
from tradingbot_agents.worker.paper import Execution, OrderRequest

log = logging.getLogger(__name__)


def production_refusal(config: Config, secrets: Secrets) -> str | None:
    """Why production must not start, or None when it may (also None in shadow/debug)."""
    if config.mode is not Mode.PRODUCTION:
        return None
    missing = []
    if not config.trading_worker.allow_live_orders:
        missing.append("trading_worker.allow_live_orders is not true")
    if secrets.binance_api_key is None or secrets.binance_api_secret is None:
        missing.append("BINANCE_API_KEY and BINANCE_API_SECRET are not both set")
    if not missing:
        return None
    return "refusing to start in production mode: " + "; ".join(missing)


def client_order_id(intent_id: str) -> str:
    """A stable id per intent (≤ 36 chars of Binance's alphabet): a retried intent never doubles."""
    return "tb-" + hashlib.sha256(intent_id.encode()).hexdigest()[:32]


class LiveBroker:
    """Sends orders to the exchange and turns its answers into order and fill events."""

    def __init__(self, client: ExchangeClient, *, worker_id: str, taker_fee: float) -> None:
        self.client = client
        self.worker_id = worker_id
        self.taker_fee = taker_fee
        self.qty_precision: dict[str, int] = {}

    async def start(self) -> None:
        info = await self.client.exchange_info()
        await self.client.sync_time()
        self.qty_precision = {s.symbol: s.quantity_precision for s in info.symbols}

    def round_quantity(self, symbol: str, quantity: float) -> Decimal:
        step = Decimal(1).scaleb(-self.qty_precision.get(symbol, 3))
        return Decimal(repr(quantity)).quantize(step, rounding=ROUND_DOWN)

    async def submit(self, request: OrderRequest) -> Execution:
        quantity = self.round_quantity(request.symbol, request.quantity)
        out = Execution()
        if quantity <= 0:
            return out
        order = await self.client.new_order(
            request.symbol, request.side.value, request.order_type, quantity, price=request.limit_price,
            reduce_only=request.reduce_only or None, client_order_id=request.client_order_id)
        out.orders.append(self._order_event(request, order))
        if order.executed_qty > 0:
            price = float(order.avg_price)
            qty = float(order.executed_qty)
            # The order answer carries no commission; the fee is estimated at the taker rate.
            out.fills.append(FillEvent(
                fill_id=f"{order.client_order_id}-{order.executed_qty}", client_order_id=order.client_order_id,
                worker_id=self.worker_id, symbol=request.symbol, side=request.side, quantity=qty, price=price,
                fee=qty * price * self.taker_fee, mode="production"))
        return out

    def _order_event(self, request: OrderRequest, order: Order) -> OrderEvent:
        return OrderEvent(client_order_id=order.client_order_id, worker_id=self.worker_id, symbol=request.symbol,
                          side=request.side, order_type=request.order_type, quantity=float(order.orig_qty),
                          price=float(order.avg_price) or request.limit_price, status=order.status,
                          mode="production")

    async def aclose(self) -> None:
        await self.client.aclose()
