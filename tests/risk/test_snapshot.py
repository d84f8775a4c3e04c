"""The snapshot the agent publishes, built from a book, marks and real closes (pure)."""

from __future__ import annotations

import empyrical
import numpy as np
import pytest

from tests.risk.series import closes
from tradingbot_agents.messages import FillEvent, Side
from tradingbot_agents.risk.metrics import HOURS_PER_YEAR, simple_returns
from tradingbot_agents.risk.positions import PositionBook
from tradingbot_agents.risk.snapshot import build_snapshot

WINDOW = 168


def fill(symbol: str, side: Side, quantity: float, price: float) -> FillEvent:
    return FillEvent(fill_id=f"{symbol}{side}", client_order_id="o", worker_id="w", symbol=symbol, side=side,
                     quantity=quantity, price=price, fee=0.0, mode="shadow")


def test_snapshot_figures_match_the_references() -> None:
    history = {s: closes(s).to_dict() for s in ("BTCUSDT", "ETHUSDT", "SOLUSDT")}
    marks = {s: list(h.values())[-1] for s, h in history.items()}
    book = PositionBook()
    book.apply(fill("BTCUSDT", Side.BUY, 0.02, marks["BTCUSDT"]))
    book.apply(fill("ETHUSDT", Side.SELL, 0.5, marks["ETHUSDT"]))
    equity_marks = list(10_000 * np.cumprod(1 + np.random.default_rng(7).normal(0, 0.004, 200)))
    snapshot = build_snapshot(book=book, marks=marks, initial_equity=10_000, closes=history,
                              watched=["SOLUSDT"], var_window=WINDOW, correlation_window=WINDOW,
                              equity_marks=equity_marks)

    equity = 10_000.0  # flat PnL: the fills happened at the marks
    assert snapshot.equity == pytest.approx(equity)
    weights = {"BTCUSDT": 0.02 * marks["BTCUSDT"] / equity, "ETHUSDT": -0.5 * marks["ETHUSDT"] / equity}
    series = sum(w * simple_returns(list(history[s].values())[-(WINDOW + 1):]) for s, w in weights.items())
    assert snapshot.var_95_historical == pytest.approx(-empyrical.value_at_risk(series, 0.05))
    assert snapshot.var_99_historical == pytest.approx(-empyrical.value_at_risk(series, 0.01))
    assert snapshot.cvar_95 == pytest.approx(-empyrical.conditional_value_at_risk(series, 0.05))
    curve_returns = simple_returns(equity_marks)
    assert snapshot.sharpe == pytest.approx(empyrical.sharpe_ratio(curve_returns, annualization=HOURS_PER_YEAR))
    assert snapshot.sortino == pytest.approx(empyrical.sortino_ratio(curve_returns, annualization=HOURS_PER_YEAR))
    assert snapshot.max_drawdown == pytest.approx(
        -empyrical.max_drawdown(simple_returns([*equity_marks, equity])))
    gross = 0.02 * marks["BTCUSDT"] + 0.5 * marks["ETHUSDT"]
    assert snapshot.exposure_total == pytest.approx(gross)
    assert snapshot.leverage == pytest.approx(gross / equity)
    assert snapshot.exposure_by_symbol["ETHUSDT"] < 0  # signed: a short
    assert snapshot.leverage_by_symbol["BTCUSDT"] == pytest.approx(0.02 * marks["BTCUSDT"] / equity)
    assert set(snapshot.correlation) == {"BTCUSDT", "ETHUSDT", "SOLUSDT"}  # held and watched
    assert 0.3 < snapshot.correlation["BTCUSDT"]["ETHUSDT"] <= 1
    assert snapshot.open_positions == 2 and snapshot.trades == 2
    # Marks four market hours apart (a fast replay): 8760 / 4 periods a year.
    sparse = build_snapshot(book=book, marks=marks, initial_equity=10_000, closes=history, watched=[],
                            var_window=WINDOW, correlation_window=WINDOW, equity_marks=equity_marks,
                            mark_spacing_hours=4)
    assert sparse.sharpe == pytest.approx(empyrical.sharpe_ratio(curve_returns, annualization=HOURS_PER_YEAR / 4))


def test_flat_book_has_no_risk_and_missing_history_is_unknown() -> None:
    flat = build_snapshot(book=PositionBook(), marks={}, initial_equity=10_000, closes={}, watched=[],
                          var_window=WINDOW, correlation_window=WINDOW, equity_marks=[])
    assert flat.var_95_historical == 0.0 and flat.exposure_total == 0.0 and flat.sharpe is None
    book = PositionBook()
    book.apply(fill("NEWUSDT", Side.BUY, 1.0, 10.0))
    unknown = build_snapshot(book=book, marks={"NEWUSDT": 10.0}, initial_equity=10_000, closes={}, watched=[],
                             var_window=WINDOW, correlation_window=WINDOW, equity_marks=[])
    assert unknown.var_95_historical is None and unknown.exposure_total == pytest.approx(10.0)
