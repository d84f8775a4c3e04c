"""Positions from fills (one-way mode), pure."""

from __future__ import annotations

import pytest

from tradingbot_agents.messages import FillEvent, Side
from tradingbot_agents.risk.positions import PositionBook


def fill(n: int, side: Side, quantity: float, price: float, symbol: str = "BTCUSDT", fee: float = 0.0) -> FillEvent:
    return FillEvent(fill_id=f"f{n}", client_order_id=f"o{n}", worker_id="w1", symbol=symbol, side=side,
                     quantity=quantity, price=price, fee=fee, mode="shadow")


def test_average_entry_and_realised_pnl_long() -> None:
    book = PositionBook()
    book.apply(fill(1, Side.BUY, 1.0, 100.0, fee=0.1))
    book.apply(fill(2, Side.BUY, 3.0, 120.0, fee=0.3))
    position = book.positions["BTCUSDT"]
    assert position.quantity == 4.0
    assert position.entry_price == pytest.approx(115.0)  # (100 + 3 × 120) / 4
    book.apply(fill(3, Side.SELL, 1.0, 130.0, fee=0.1))
    assert position.quantity == 3.0
    assert position.entry_price == pytest.approx(115.0)  # closing does not move the entry
    assert position.realized_pnl == pytest.approx(15.0)
    assert book.fees == pytest.approx(0.5)
    assert book.pnl({"BTCUSDT": 110.0}) == pytest.approx(15.0 + 3 * (110 - 115) - 0.5)
    assert book.notionals({"BTCUSDT": 110.0}) == {"BTCUSDT": pytest.approx(330.0)}


def test_short_and_flip_through_zero() -> None:
    book = PositionBook()
    book.apply(fill(1, Side.SELL, 2.0, 50.0, symbol="ETHUSDT"))
    assert book.quantity("ETHUSDT") == -2.0
    assert book.pnl({"ETHUSDT": 45.0}) == pytest.approx(10.0)  # a short gains when the price falls
    book.apply(fill(2, Side.BUY, 3.0, 40.0, symbol="ETHUSDT"))  # closes 2 at a 20 gain, opens 1 long at 40
    position = book.positions["ETHUSDT"]
    assert position.quantity == pytest.approx(1.0)
    assert position.entry_price == pytest.approx(40.0)
    assert position.realized_pnl == pytest.approx(20.0)
    book.apply(fill(3, Side.SELL, 1.0, 41.0, symbol="ETHUSDT"))
    assert not position.is_open and position.entry_price == 0.0
    assert book.open_positions() == []
    assert book.realized_pnl == pytest.approx(21.0)
    assert book.trades == 3


def test_a_stream_sequence_is_applied_once_and_the_book_round_trips() -> None:
    book = PositionBook()
    assert book.apply(fill(1, Side.BUY, 1.0, 100.0), seq=1)
    assert book.apply(fill(2, Side.BUY, 1.0, 110.0), seq=2)
    assert not book.apply(fill(2, Side.BUY, 1.0, 110.0), seq=2)  # redelivered
    assert not book.apply(fill(1, Side.BUY, 1.0, 100.0), seq=1)
    assert book.quantity("BTCUSDT") == 2.0 and book.trades == 2
    restored = PositionBook.from_dict(book.to_dict())
    assert restored.to_dict() == book.to_dict()
    assert not restored.apply(fill(2, Side.BUY, 1.0, 110.0), seq=2)
    assert restored.apply(fill(3, Side.SELL, 2.0, 120.0), seq=3)
    assert restored.realized_pnl == pytest.approx(30.0)
