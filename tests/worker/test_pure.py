"""Pure parts of the worker: allocation, signal, positions, paper broker, production gate."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from tradingbot_agents.config import Config, Mode, Secrets
from tradingbot_agents.messages import FillEvent, Side
from tradingbot_agents.worker import allocation
from tradingbot_agents.worker.live import client_order_id, production_refusal
from tradingbot_agents.worker.paper import MarketState, OrderRequest, PaperBroker, PaperSettings
from tradingbot_agents.worker.positions import PositionBook
from tradingbot_agents.worker.signal import SignalSettings, combine, rsi_component, trend_component

SETTINGS = SignalSettings(fast_ema=3, slow_ema=6, rsi_period=3, rsi_overbought=70, rsi_oversold=30,
                          sentiment_weight=0.2, rl_weight=0.3, signal_threshold=0.3)


# -- allocation ----------------------------------------------------------------------------------
def test_fair_share_without_assignment() -> None:
    pairs = ["A", "B", "C", "D", "E"]
    p = allocation.plan(pairs, [], assigned=None, live_workers=2, max_pairs=10)
    assert p.target == 3 and p.acquire == pairs and p.release == []
    p = allocation.plan(pairs, ["A", "B", "C", "D"], assigned=None, live_workers=2, max_pairs=10)
    assert p.release == ["D"] and p.acquire == []
    p = allocation.plan(pairs, ["A", "Z"], assigned=None, live_workers=1, max_pairs=2)
    assert p.release == ["Z"] and p.acquire == ["B", "C", "D", "E"] and p.target == 2


def test_assignment_is_followed() -> None:
    p = allocation.plan(["A", "B", "C"], ["A", "B"], assigned=["B", "C"], live_workers=3, max_pairs=5)
    assert p.release == ["A"] and p.acquire == ["C"] and p.target == 2
    p = allocation.plan(["A"], ["A"], assigned=[], live_workers=1, max_pairs=5)
    assert p.release == ["A"] and p.target == 0


def test_open_positions_are_managed_first() -> None:
    assert allocation.managed_pairs(["A", "B"], ["Z", "B"]) == ["B", "Z", "A"]


# -- signal --------------------------------------------------------------------------------------
def test_components_by_hand() -> None:
    assert rsi_component(30, 30, 70) == 1.0 and rsi_component(70, 30, 70) == -1.0
    assert rsi_component(40, 30, 70) == pytest.approx(0.5) and rsi_component(50, 30, 70) == 0.0
    assert trend_component([1.0] * 10, 3, 6) == 0.0
    assert trend_component([100.0] * 10 + [110.0] * 3, 3, 6) == 1.0  # gap far above 1 %


def test_combine_weights_and_missing_inputs() -> None:
    closes = [100.0] * 10
    flat = combine(closes, SETTINGS)
    assert flat.score == 0 and flat.action == "hold" and set(flat.components) == {"trend", "rsi", "rsi_value"}
    # Technical = 0.5 of weight and 0 here; sentiment 1.0 with weight 0.2 -> 0.2 / 0.7.
    s = combine(closes, SETTINGS, sentiment=1.0)
    assert s.score == pytest.approx(0.2 / 0.7, abs=1e-6) and s.action == "hold"
    s = combine(closes, SETTINGS, sentiment=1.0, rl=1.0)
    assert s.score == pytest.approx(0.5) and s.action == "buy"
    s = combine(closes, SETTINGS, rl=-1.0)
    assert s.score == pytest.approx(-0.375) and s.action == "sell"
    with pytest.raises(ValueError):
        combine([1.0, 2.0], SETTINGS)


# -- positions and paper broker ------------------------------------------------------------------
def fill(fid: str, side: Side, qty: float, price: float, fee: float = 0.0) -> FillEvent:
    return FillEvent(fill_id=fid, client_order_id=fid, worker_id="w", symbol="X", side=side, quantity=qty,
                     price=price, fee=fee, mode="shadow")


def test_position_book_is_idempotent_and_one_way() -> None:
    book = PositionBook()
    assert book.apply(fill("1", Side.BUY, 2, 100, fee=0.1))
    assert not book.apply(fill("1", Side.BUY, 2, 100, fee=0.1))  # the same fill again
    book.apply(fill("2", Side.BUY, 2, 110))
    assert book.get("X").amount == 4 and book.get("X").entry_price == 105
    book.apply(fill("3", Side.SELL, 5, 120))  # closes 4 (+60) and flips 1 short at 120
    pos = book.get("X")
    assert pos.amount == pytest.approx(-1) and pos.entry_price == 120 and pos.realized_pnl == pytest.approx(60)
    assert book.net_realized() == pytest.approx(59.9)
    assert book.unrealized({"X": 110}) == pytest.approx(10)


def broker(**kw: float) -> PaperBroker:
    return PaperBroker(PaperSettings(**{"spread_bps": 10, "slippage_bps": 5, "taker_fee": 0.001,
                                        "maker_fee": 0.0002, "max_volume_fraction": 0.1, **kw}),
                       PositionBook(), worker_id="w")


def test_market_order_pays_half_spread_slippage_and_fee() -> None:
    b = broker()
    out = b.submit(OrderRequest("c1", "X", Side.BUY, 1.0), MarketState(1000.0, 1, candle_volume=100))
    (f,) = out.fills
    assert f.price == pytest.approx(1000 * 1.0005 * 1.0005)
    assert f.fee == pytest.approx(f.price * 0.001)
    assert [o.status for o in out.orders] == ["NEW", "FILLED"]
    out = b.submit(OrderRequest("c2", "X", Side.SELL, 1.0, reduce_only=True), MarketState(1000.0, 1, 100))
    assert out.fills[0].price == pytest.approx(1000 * 0.9995 * 0.9995)
    assert out.fills[0].realized_pnl < 0 and b.book.get("X").amount == 0


def test_partial_fill_when_the_candle_is_too_small() -> None:
    b = broker()
    out = b.submit(OrderRequest("c1", "X", Side.BUY, 5.0), MarketState(10.0, 7, candle_volume=20))
    assert out.fills[0].quantity == pytest.approx(2.0)  # 10 % of 20
    assert [o.status for o in out.orders] == ["NEW", "PARTIALLY_FILLED", "EXPIRED"]
    again = b.submit(OrderRequest("c2", "X", Side.BUY, 1.0), MarketState(10.0, 7, candle_volume=20))
    assert again.fills == []  # this candle's share is used up
    later = b.submit(OrderRequest("c3", "X", Side.BUY, 1.0), MarketState(10.0, 8, candle_volume=20))
    assert later.fills[0].quantity == 1.0


def test_limit_order_waits_until_the_price_crosses() -> None:
    b = broker()
    out = b.submit(OrderRequest("c1", "X", Side.BUY, 1.0, "LIMIT", 95.0), MarketState(100.0, 1, 100))
    assert out.fills == [] and "c1" in b.resting
    assert b.on_market("X", MarketState(99.0, 1, 100, low=96.0, high=100.0)).fills == []
    out = b.on_market("X", MarketState(97.0, 2, 100, low=94.0, high=98.0))
    assert out.fills[0].price == 95.0 and out.fills[0].fee == pytest.approx(95 * 0.0002)
    assert "c1" not in b.resting
    b.submit(OrderRequest("c2", "X", Side.SELL, 1.0, "LIMIT", 200.0), MarketState(100.0, 3, 100))
    assert [e.status for e in b.cancel_all("X")] == ["CANCELED"] and not b.resting


def test_reduce_only_without_position_is_rejected() -> None:
    out = broker().submit(OrderRequest("c1", "X", Side.SELL, 1.0, reduce_only=True), MarketState(10.0, 1, 100))
    assert out.fills == [] and out.orders[0].status == "REJECTED"


# -- production gate ----------------------------------------------------------------------------
def test_production_needs_flag_and_keys() -> None:
    keys = Secrets(binance_api_key=SecretStr("k"), binance_api_secret=SecretStr("s"))
    assert production_refusal(Config(), Secrets()) is None  # shadow
    prod = Config(mode=Mode.PRODUCTION)
    assert "allow_live_orders" in (production_refusal(prod, keys) or "")
    flagged = Config(mode=Mode.PRODUCTION, trading_worker={"allow_live_orders": True})
    assert "BINANCE_API_KEY" in (production_refusal(flagged, Secrets()) or "")
    assert production_refusal(flagged, keys) is None


def test_client_order_id_is_stable_and_valid() -> None:
    cid = client_order_id("intent-1")
    assert cid == client_order_id("intent-1") != client_order_id("intent-2")
    assert len(cid) <= 36 and cid.replace("-", "").isalnum()
