"""The pre-trade check: pure, so every limit is tested without a server.

An order is judged by the portfolio it would leave behind: its symbol's position notional, the
total (gross) exposure, leverage against equity and the portfolio's 1-bar historical VaR at 95%,
each computed after the order as if it filled at ``intent.price``.

Rules, and why:

* ``reduce_only`` intents are approved whenever they really reduce (same side of zero, smaller):
  cutting risk must never be blocked, not by the kill switch and not by a breached limit.
* ``halted`` (the operator's kill switch) rejects everything else.
* A limit rejects an order only if the order makes that figure worse: when a market move has
  already pushed the portfolio over a limit, orders that shrink it are still allowed.
* The reason names the figure, the limit and the config key, and where it can, the size that
  would pass, so a human (or the worker) can act on it.
* No price history for a symbol → reject: VaR cannot be judged, and risk fails closed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from tradingbot_agents.messages import OrderIntent, RiskDecision, Side
from tradingbot_agents.risk.metrics import FloatArray, historical_var, portfolio_returns

_EPSILON = 1e-9
VAR_CONFIDENCE = 0.95


@dataclass(frozen=True)
class Limits:
    max_position_notional: float
    max_total_exposure: float
    max_leverage: float
    max_portfolio_var: float


@dataclass(frozen=True)
class PortfolioState:
    """What the check reads: current signed notionals per symbol at their marks, equity, the
    current signed quantity of every symbol, aligned hourly returns, and the kill switch."""

    quantities: Mapping[str, float]
    notionals: Mapping[str, float]
    equity: float
    returns: Mapping[str, FloatArray]
    halted: bool = False


def portfolio_var(notionals: Mapping[str, float], equity: float, returns: Mapping[str, FloatArray],
                  confidence: float = VAR_CONFIDENCE) -> float:
    """Historical VaR of the portfolio's return series, as a fraction of equity (0 when flat)."""
    weights = {s: n / equity for s, n in notionals.items() if abs(n) > _EPSILON}
    if not weights:
        return 0.0
    series = portfolio_returns(weights, returns)
    if series.size == 0:
        raise KeyError("no overlapping return history")
    return max(historical_var(series, confidence), 0.0)


def _fmt(value: float) -> str:
    return f"{value:,.2f}"


def check_intent(intent: OrderIntent, state: PortfolioState, limits: Limits) -> RiskDecision:
    symbol = intent.symbol
    current_qty = state.quantities.get(symbol, 0.0)
    after_qty = current_qty + (intent.quantity if intent.side is Side.BUY else -intent.quantity)
    before = dict(state.notionals)
    after = dict(state.notionals)
    before_symbol = abs(current_qty) * intent.price
    after[symbol] = after_qty * intent.price
    if abs(after_qty) <= _EPSILON:
        after.pop(symbol)
    position_after = abs(after_qty) * intent.price
    exposure_before = sum(abs(v) for v in before.values())
    exposure_after = sum(abs(v) for v in after.values())
    checks: dict[str, float] = {
        "notional": intent.notional,
        "position_notional_after": position_after,
        "max_position_notional": limits.max_position_notional,
        "total_exposure_after": exposure_after,
        "max_total_exposure": limits.max_total_exposure,
        "equity": state.equity,
        "max_leverage": limits.max_leverage,
        "max_portfolio_var": limits.max_portfolio_var,
    }

    def decide(approved: bool, reason: str) -> RiskDecision:
        return RiskDecision(intent_id=intent.intent_id, approved=approved, reason=reason, checks=checks)

    reduces = (abs(current_qty) > _EPSILON and abs(after_qty) <= abs(current_qty) + _EPSILON
               and after_qty * current_qty >= -_EPSILON)
    if intent.reduce_only:
        if reduces:
            return decide(True, "reduce-only order reduces the position")
        return decide(False, f"reduce_only {intent.side.value} {intent.quantity:g} {symbol} would open or grow a "
                             f"position (current quantity {current_qty:g}); send it without reduce_only")
    if state.halted:
        return decide(False, "trading is halted (trading.halted / spec.trading.halted): only reduce_only "
                             "orders are accepted until it is resumed")
    if state.equity <= 0:
        return decide(False, f"equity is {_fmt(state.equity)} USDT: no new exposure until the account is "
                             "funded (risk_agent.initial_equity)")

    problems: list[str] = []
    if position_after > limits.max_position_notional and position_after > before_symbol + _EPSILON:
        room = ""
        same_direction = after_qty * current_qty >= 0
        if same_direction:
            allowed = max(0.0, (limits.max_position_notional - before_symbol) / intent.price)
            room = f"; at most {allowed:.6g} {symbol} more fits"
        problems.append(f"{symbol} position would be {_fmt(position_after)} USDT notional, above "
                        f"max_position_notional {_fmt(limits.max_position_notional)} USDT{room}")
    if exposure_after > limits.max_total_exposure and exposure_after > exposure_before + _EPSILON:
        problems.append(f"total exposure would be {_fmt(exposure_after)} USDT, above max_total_exposure "
                        f"{_fmt(limits.max_total_exposure)} USDT (currently {_fmt(exposure_before)})")
    leverage_before = exposure_before / state.equity
    leverage_after = exposure_after / state.equity
    checks["leverage_after"] = leverage_after
    if leverage_after > limits.max_leverage and leverage_after > leverage_before + _EPSILON:
        problems.append(f"leverage would be {leverage_after:.2f}x equity {_fmt(state.equity)} USDT, above "
                        f"max_leverage {limits.max_leverage:g}x")
    try:
        var_before = portfolio_var(before, state.equity, state.returns)
        var_after = portfolio_var(after, state.equity, state.returns)
    except KeyError as exc:
        problems.append(f"cannot evaluate portfolio VaR: {exc.args[0]} (market data for {symbol} unavailable)")
    else:
        checks["portfolio_var_95_before"] = var_before
        checks["portfolio_var_95_after"] = var_after
        if var_after > limits.max_portfolio_var and var_after > var_before + _EPSILON:
            problems.append(f"portfolio 1h VaR(95%) would be {var_after:.2%} of equity, above max_portfolio_var "
                            f"{limits.max_portfolio_var:.2%}")
    if problems:
        return decide(False, "; ".join(problems))
    return decide(True, "within limits")
