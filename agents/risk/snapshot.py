"""One risk snapshot from the book, marks and price history: pure, tested without servers.

Two different series feed it, on purpose:

* VaR and CVaR describe the **current** positions: the hourly returns of the last ``var_window``
  bars weighted by today's signed notionals / equity ("what would one bad hour of recent history do
  to what we hold now"). That is what ``max_portfolio_var`` limits.
* Sharpe, Sortino and drawdown describe what the bot **did**: its equity marked to market once per
  market hour (the equity curve), so they use the same hourly annualisation (8760).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from tradingbot_agents.messages import RiskSnapshot
from tradingbot_agents.risk.metrics import (
    HOURS_PER_YEAR,
    aligned_returns,
    correlation_matrix,
    cvar,
    drawdown_from_equity,
    finite_or_none,
    historical_var,
    parametric_var,
    portfolio_returns,
    sharpe,
    simple_returns,
    sortino,
)
from tradingbot_agents.risk.positions import PositionBook


def _loss(value: float) -> float | None:
    """A loss figure: None when unknown, never negative (a 'VaR' of a gain is no risk)."""
    finite = finite_or_none(value)
    return None if finite is None else max(finite, 0.0)


def build_snapshot(*, book: PositionBook, marks: Mapping[str, float], initial_equity: float,
                   closes: Mapping[str, Mapping[int, float]], watched: Sequence[str], var_window: int,
                   correlation_window: int, equity_marks: Sequence[float],
                   mark_spacing_hours: float = 1.0) -> RiskSnapshot:
    """``equity_marks`` are equity values marked once per ``mark_spacing_hours`` of market time
    (on average): Sharpe and Sortino annualise with ``8760 / mark_spacing_hours`` periods a year,
    so a fast replay that marks every few simulated hours still reports annual figures."""
    pnl = book.pnl(marks)
    equity = initial_equity + pnl
    notionals = book.notionals(marks)
    exposure_total = sum(abs(v) for v in notionals.values())
    # Equity wiped out with positions open: leverage is unbounded; a huge finite figure keeps the
    # leverage alert firing and stays valid JSON.
    leverage = exposure_total / max(equity, 1e-9) if exposure_total else 0.0

    var: dict[str, float | None] = dict.fromkeys(("h95", "h99", "p95", "p99", "c95", "c99"))
    if not notionals:
        var = dict.fromkeys(var, 0.0)
    elif all(s in closes for s in notionals) and equity > 0:
        returns = aligned_returns({s: closes[s] for s in notionals}, var_window)
        series = portfolio_returns({s: n / equity for s, n in notionals.items()}, returns)
        if series.size >= 2:
            var = {"h95": _loss(historical_var(series, 0.95)), "h99": _loss(historical_var(series, 0.99)),
                   "p95": _loss(parametric_var(series, 0.95)), "p99": _loss(parametric_var(series, 0.99)),
                   "c95": _loss(cvar(series, 0.95)), "c99": _loss(cvar(series, 0.99))}

    correlated = sorted({*watched, *notionals} & set(closes))
    correlation = correlation_matrix(aligned_returns({s: closes[s] for s in correlated}, correlation_window),
                                     correlation_window) if len(correlated) >= 2 else {}

    curve_returns = simple_returns(equity_marks)
    periods = max(1, round(HOURS_PER_YEAR / max(mark_spacing_hours, 1.0)))
    max_dd, current_dd = drawdown_from_equity([*equity_marks, equity])
    return RiskSnapshot(
        equity=equity, pnl=pnl,
        var_95_historical=var["h95"], var_99_historical=var["h99"],
        var_95_parametric=var["p95"], var_99_parametric=var["p99"],
        cvar_95=var["c95"], cvar_99=var["c99"],
        sharpe=finite_or_none(sharpe(curve_returns, annualization=periods)),
        sortino=finite_or_none(sortino(curve_returns, annualization=periods)),
        max_drawdown=max_dd, drawdown=current_dd,
        exposure_total=exposure_total, exposure_by_symbol=notionals,
        leverage=leverage,
        leverage_by_symbol={s: abs(n) / equity for s, n in notionals.items()} if equity > 0 else {},
        correlation=correlation, open_positions=len(notionals), trades=book.trades,
    )
