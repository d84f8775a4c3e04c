"""The pre-trade check and the alert rules, pure (the same logic is driven over NATS elsewhere)."""

from __future__ import annotations

import empyrical
import numpy as np
import pytest

from tests.risk.series import returns
from tradingbot_agents.messages import OrderIntent, RiskSnapshot, Side
from tradingbot_agents.risk.alerts import AlertGate, AlertKind, AlertThresholds, evaluate
from tradingbot_agents.risk.checks import Limits, PortfolioState, check_intent, portfolio_var

LIMITS = Limits(max_position_notional=1_000, max_total_exposure=2_500, max_leverage=3, max_portfolio_var=0.05)
RETURNS = {s: returns(s)[-168:] for s in ("BTCUSDT", "ETHUSDT", "SOLUSDT")}


def intent(side: Side, quantity: float, price: float, symbol: str = "BTCUSDT",
           reduce_only: bool = False) -> OrderIntent:
    return OrderIntent(intent_id="i1", worker_id="w1", symbol=symbol, side=side, quantity=quantity, price=price,
                       reduce_only=reduce_only)


def state(quantities: dict[str, float] | None = None, prices: dict[str, float] | None = None, *,
          equity: float = 10_000, halted: bool = False) -> PortfolioState:
    quantities = quantities or {}
    prices = prices or {}
    return PortfolioState(quantities=quantities, notionals={s: q * prices[s] for s, q in quantities.items()},
                          equity=equity, returns=RETURNS, halted=halted)


def test_small_order_is_approved_with_its_figures() -> None:
    decision = check_intent(intent(Side.BUY, 0.005, 100_000), state(), LIMITS)
    assert decision.approved, decision.reason
    assert decision.checks["position_notional_after"] == pytest.approx(500)
    expected_var = -empyrical.value_at_risk(0.05 * RETURNS["BTCUSDT"], cutoff=0.05)
    assert decision.checks["portfolio_var_95_after"] == pytest.approx(expected_var)


def test_position_limit_rejects_and_says_what_would_fit() -> None:
    decision = check_intent(intent(Side.BUY, 0.008, 100_000), state({"BTCUSDT": 0.004}, {"BTCUSDT": 100_000}), LIMITS)
    assert not decision.approved
    assert "max_position_notional 1,000.00" in decision.reason
    assert "1,200.00 USDT" in decision.reason
    assert "at most 0.006 BTCUSDT more fits" in decision.reason


def test_exposure_and_leverage_limits() -> None:
    held = state({"ETHUSDT": -0.4, "SOLUSDT": 5.0}, {"ETHUSDT": 2_500, "SOLUSDT": 150}, equity=1_000)
    decision = check_intent(intent(Side.BUY, 0.009, 100_000), held, LIMITS)
    assert not decision.approved
    assert "total exposure would be 2,650.00 USDT, above max_total_exposure 2,500.00" in decision.reason
    assert "leverage would be 2.65x" not in decision.reason  # 2.65x is under 3x
    small_equity = state({"ETHUSDT": -0.4}, {"ETHUSDT": 2_500}, equity=500)
    decision = check_intent(intent(Side.BUY, 0.006, 100_000), small_equity, LIMITS)
    assert not decision.approved
    assert "leverage would be 3.20x equity 500.00 USDT, above max_leverage 3x" in decision.reason


def test_var_limit_rejects_risk_but_not_its_reduction() -> None:
    tight = Limits(max_position_notional=1e9, max_total_exposure=1e9, max_leverage=100, max_portfolio_var=0.005)
    decision = check_intent(intent(Side.BUY, 0.1, 100_000), state(), tight)  # 10,000 on 10,000 equity
    assert not decision.approved
    var_after = decision.checks["portfolio_var_95_after"]
    assert var_after == pytest.approx(-np.percentile(RETURNS["BTCUSDT"], 5))
    assert "portfolio 1h VaR(95%)" in decision.reason and "above max_portfolio_var 0.50%" in decision.reason
    # Already over the limit: an order that shrinks the position passes, even without reduce_only.
    over = state({"BTCUSDT": 0.2}, {"BTCUSDT": 100_000})
    assert check_intent(intent(Side.SELL, 0.05, 100_000), over, tight).approved
    assert not check_intent(intent(Side.BUY, 0.05, 100_000), over, tight).approved


def test_halt_rejects_new_exposure_but_never_a_reduction() -> None:
    held = state({"BTCUSDT": 0.005}, {"BTCUSDT": 100_000}, halted=True)
    rejected = check_intent(intent(Side.BUY, 0.001, 100_000), held, LIMITS)
    assert not rejected.approved and "halted" in rejected.reason
    assert check_intent(intent(Side.SELL, 0.005, 100_000, reduce_only=True), held, LIMITS).approved
    flip = check_intent(intent(Side.SELL, 0.01, 100_000, reduce_only=True), held, LIMITS)
    assert not flip.approved and "would open or grow" in flip.reason


def test_missing_history_fails_closed() -> None:
    decision = check_intent(intent(Side.BUY, 1, 10, symbol="NEWUSDT"), state(), LIMITS)
    assert not decision.approved and "NEWUSDT" in decision.reason and "VaR" in decision.reason
    assert portfolio_var({}, 10_000, RETURNS) == 0.0


def test_alert_rules_and_gate() -> None:
    thresholds = AlertThresholds(max_portfolio_var=0.01, max_drawdown=0.1, max_total_exposure=2_500,
                                 max_position_notional=1_000, max_leverage=3)
    snapshot = RiskSnapshot(equity=9_000, var_95_historical=0.02, exposure_total=3_000,
                            exposure_by_symbol={"BTCUSDT": 1_500, "ETHUSDT": -1_500}, leverage=0.33)
    found = evaluate(snapshot, thresholds, current_drawdown=0.12)
    keys = {(a.kind, a.subject) for a in found}
    assert keys == {(AlertKind.VAR_LIMIT, "portfolio"), (AlertKind.DRAWDOWN, "portfolio"),
                    (AlertKind.EXPOSURE_LIMIT, "portfolio"), (AlertKind.POSITION_LIMIT, "BTCUSDT"),
                    (AlertKind.POSITION_LIMIT, "ETHUSDT")}
    assert evaluate(RiskSnapshot(var_95_historical=0.005), thresholds, current_drawdown=0.0) == []

    now = [0.0]
    gate = AlertGate(60.0, clock=lambda: now[0])
    assert gate.admit("var_limit", "portfolio")
    assert not gate.admit("var_limit", "portfolio")  # same key inside the cooldown
    assert gate.admit("position_limit", "BTCUSDT")  # another key is independent
    now[0] = 59.9
    assert not gate.admit("var_limit", "portfolio")
    now[0] = 60.0
    assert gate.admit("var_limit", "portfolio")
    assert gate.suppressed == 2
