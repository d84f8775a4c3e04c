"""Risk and performance metrics: pure numpy, no I/O, so each is checked against a reference library.

Conventions (the same everywhere in the risk agent, and in the README):

* returns are simple, non-cumulative returns per bar: ``close[t] / close[t-1] - 1``;
* bars are hourly, so the annualisation factor is ``HOURS_PER_YEAR = 24 * 365 = 8760``
  (crypto trades every hour of the year; 252 trading days would understate it);
* the risk-free rate is 0 (there is no risk-free USDT yield the bot could earn instead);
* VaR, CVaR and max drawdown are reported as **positive loss fractions**: ``var_95 = 0.012`` means
  "one bar in twenty loses at least 1.2% of the value". empyrical reports the same numbers as
  negative returns; the tests compare ours with ``-empyrical.<fn>``.

The formulas follow empyrical (``empyrical-reloaded``) so that a reader can check them against a
library many people use: historical VaR is numpy's linearly interpolated percentile, CVaR averages
the ``int((n - 1) * (1 - confidence)) + 1`` worst returns, Sharpe uses the sample standard
deviation (ddof=1), Sortino the downside deviation ``sqrt(mean(min(r, 0)^2))``. Parametric VaR
is the Gaussian one: ``-(mean + std * z)`` with ``z`` the normal quantile of ``1 - confidence`` and
the sample standard deviation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from statistics import NormalDist

import numpy as np
from numpy.typing import ArrayLike, NDArray

HOURS_PER_YEAR = 24 * 365

FloatArray = NDArray[np.float64]


def _clean(returns: ArrayLike) -> FloatArray:
    """As a float array without NaNs: a missing bar must not count as a zero return."""
    values = np.asarray(returns, dtype=np.float64).ravel()
    return values[~np.isnan(values)]


def simple_returns(closes: ArrayLike) -> FloatArray:
    """Per-bar simple returns of a price series (one shorter than the prices)."""
    prices = np.asarray(closes, dtype=np.float64).ravel()
    if prices.size < 2:
        return np.empty(0)
    return prices[1:] / prices[:-1] - 1.0


def historical_var(returns: ArrayLike, confidence: float = 0.95) -> float:
    """Loss not exceeded with probability ``confidence``, read from the returns' own distribution
    (no normality assumed: fat crypto tails show up as they happened)."""
    values = _clean(returns)
    if values.size == 0:
        return math.nan
    return float(-np.percentile(values, 100.0 * (1.0 - confidence)))


def parametric_var(returns: ArrayLike, confidence: float = 0.95) -> float:
    """Gaussian (variance-covariance) VaR. Smoother than the historical one on short windows, but
    it understates fat tails, which is why both are reported."""
    values = _clean(returns)
    if values.size < 2:
        return math.nan
    z = NormalDist().inv_cdf(1.0 - confidence)
    return float(-(values.mean() + z * values.std(ddof=1)))


def cvar(returns: ArrayLike, confidence: float = 0.95) -> float:
    """Expected shortfall: the average loss over the worst ``1 - confidence`` of bars, i.e. how bad
    it is when the VaR line is crossed."""
    values = _clean(returns)
    if values.size == 0:
        return math.nan
    cutoff_index = int((values.size - 1) * (1.0 - confidence))
    tail = np.partition(values, cutoff_index)[: cutoff_index + 1]
    return float(-tail.mean())


def sharpe(returns: ArrayLike, *, annualization: int = HOURS_PER_YEAR, risk_free: float = 0.0) -> float:
    """Annualised Sharpe ratio: mean excess return over its sample standard deviation."""
    values = _clean(returns) - risk_free
    if values.size < 2:
        return math.nan
    std = values.std(ddof=1)
    if std == 0:
        return math.nan
    return float(values.mean() / std * math.sqrt(annualization))


def downside_deviation(returns: ArrayLike, *, annualization: int = HOURS_PER_YEAR,
                       required_return: float = 0.0) -> float:
    values = _clean(returns) - required_return
    if values.size == 0:
        return math.nan
    return float(np.sqrt(np.mean(np.minimum(values, 0.0) ** 2)) * math.sqrt(annualization))


def sortino(returns: ArrayLike, *, annualization: int = HOURS_PER_YEAR, required_return: float = 0.0) -> float:
    """Annualised Sortino ratio: like Sharpe, but only losses count as risk (a strategy is not
    penalised for large gains)."""
    values = _clean(returns) - required_return
    if values.size < 2:
        return math.nan
    downside = downside_deviation(values, annualization=annualization)
    if downside == 0:
        return math.nan
    return float(values.mean() * annualization / downside)


def annual_volatility(returns: ArrayLike, *, annualization: int = HOURS_PER_YEAR) -> float:
    values = _clean(returns)
    if values.size < 2:
        return math.nan
    return float(values.std(ddof=1) * math.sqrt(annualization))


def max_drawdown(returns: ArrayLike) -> float:
    """Largest peak-to-trough fall of the compounded returns, as a positive fraction (0.25 = the
    value fell 25% from its best). The starting value counts as the first peak."""
    values = _clean(returns)
    if values.size == 0:
        return math.nan
    wealth = np.concatenate(([1.0], np.cumprod(1.0 + values)))
    peaks = np.maximum.accumulate(wealth)
    return float(-np.min(wealth / peaks - 1.0))


def drawdown_from_equity(equity: ArrayLike) -> tuple[float, float]:
    """(max drawdown, current drawdown) of an equity curve, both positive fractions of the peak."""
    values = _clean(equity)
    if values.size == 0:
        return 0.0, 0.0
    peaks = np.maximum.accumulate(values)
    with np.errstate(divide="ignore", invalid="ignore"):
        falls = np.where(peaks > 0, 1.0 - values / peaks, 0.0)
    return float(falls.max()), float(falls[-1])


def rolling_correlation(a: ArrayLike, b: ArrayLike, window: int) -> FloatArray:
    """Pearson correlation of two return series over each trailing ``window`` of bars.

    Element ``i`` covers bars ``i .. i + window - 1``; there are ``n - window + 1`` of them. A
    window where either series is constant has no correlation (NaN)."""
    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    if x.size != y.size:
        raise ValueError(f"series differ in length: {x.size} vs {y.size}")
    if window < 2 or x.size < window:
        return np.empty(0)
    xs = np.lib.stride_tricks.sliding_window_view(x, window)
    ys = np.lib.stride_tricks.sliding_window_view(y, window)
    xd = xs - xs.mean(axis=1, keepdims=True)
    yd = ys - ys.mean(axis=1, keepdims=True)
    denominator = np.sqrt((xd**2).sum(axis=1) * (yd**2).sum(axis=1))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, (xd * yd).sum(axis=1) / denominator, np.nan)


def correlation_matrix(returns: Mapping[str, Sequence[float] | FloatArray], window: int) -> dict[str, dict[str, float]]:
    """Pairwise correlation over the last ``window`` bars of equally long, aligned return series."""
    symbols = sorted(returns)
    result: dict[str, dict[str, float]] = {s: {} for s in symbols}
    for i, first in enumerate(symbols):
        result[first][first] = 1.0
        for second in symbols[i + 1:]:
            a = np.asarray(returns[first], dtype=np.float64)[-window:]
            b = np.asarray(returns[second], dtype=np.float64)[-window:]
            n = min(a.size, b.size)
            series = rolling_correlation(a[-n:], b[-n:], n) if n >= 2 else np.empty(0)
            value = float(series[-1]) if series.size and not math.isnan(series[-1]) else math.nan
            if not math.isnan(value):
                result[first][second] = round(value, 6)
                result[second][first] = round(value, 6)
    return result


def portfolio_returns(weights: Mapping[str, float], returns: Mapping[str, FloatArray]) -> FloatArray:
    """Return series of a fixed-weight portfolio: ``sum_i w_i * r_i`` per bar.

    ``weights`` are signed notionals as a fraction of equity (a 2,000 USDT short on 10,000 equity is
    -0.2), so the result is the bar's change of equity as a fraction of equity: exactly what VaR
    limits in ``max_portfolio_var`` are expressed in. The series must be aligned bar by bar; the
    shortest common tail is used."""
    held = [s for s, w in weights.items() if w != 0.0]
    if not held:
        return np.empty(0)
    if any(s not in returns for s in held):
        missing = sorted(s for s in held if s not in returns)
        raise KeyError(f"no return series for {', '.join(missing)}")
    n = min(np.asarray(returns[s]).size for s in held)
    total = np.zeros(n)
    for symbol in held:
        total += weights[symbol] * np.asarray(returns[symbol], dtype=np.float64)[-n:]
    return total


def aligned_returns(closes: Mapping[str, Mapping[int, float]], window: int) -> dict[str, FloatArray]:
    """Returns of several symbols over the same bars: only bar open times every symbol has are
    used (a gap in one series would otherwise pair one symbol's hour with another's), and the last
    ``window`` returns of that common history are kept."""
    if not closes:
        return {}
    common = set.intersection(*(set(series) for series in closes.values()))
    times = sorted(common)[-(window + 1):]
    return {symbol: simple_returns([series[t] for t in times]) for symbol, series in closes.items()}


def finite_or_none(value: float) -> float | None:
    """NaN and infinities become None: JSON has no NaN, and "not enough data" is not a number."""
    return value if math.isfinite(value) else None
