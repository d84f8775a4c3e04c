"""Technical indicators and market statistics (pure: numbers in, numbers out, no I/O).

Shared by the pair selector (volatility, spread, correlation, quote volume) and the trading
workers (EMA crossover, RSI). Conventions are the common ones, stated so that a reader can check
them against a reference (the tests compare with pandas on real klines):

* ``ema``: seeded with the first value, ``alpha = 2 / (period + 1)``, no bias adjustment; the same
  as ``pandas.Series.ewm(span=period, adjust=False).mean()``.
* ``rsi``: Wilder's smoothing (``alpha = 1 / period``) of gains and losses, seeded with the first
  change; the same as ``ewm(alpha=1/period, adjust=False)`` on the clipped differences. 100 when
  there were no losses, 50 on a flat series.
* ``volatility``: sample standard deviation (ddof=1) of log returns, per bar (not annualised: the
  selector compares symbols on the same bars, so the factor would cancel).
* ``corwin_schultz_spread``: the Corwin & Schultz (2012) bid-ask spread estimate from consecutive
  highs and lows, negative two-bar estimates set to 0, averaged. It is a PROXY: the data hold no
  order book, and the exchange simulator's own spread is a configured constant.
* ``quote_volume``: sum of volume × close, the same derivation the simulator uses for the 24 h
  ``quoteVolume``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def ema(values: Sequence[float], period: int) -> list[float]:
    """Exponential moving average of every prefix (same length as ``values``)."""
    if period < 1:
        raise ValueError("period must be >= 1")
    alpha = 2.0 / (period + 1)
    out: list[float] = []
    current = 0.0
    for i, value in enumerate(values):
        current = float(value) if i == 0 else alpha * float(value) + (1 - alpha) * current
        out.append(current)
    return out


def rsi(closes: Sequence[float], period: int) -> list[float]:
    """Wilder's RSI for every bar after the first (length ``len(closes) - 1``)."""
    if period < 1:
        raise ValueError("period must be >= 1")
    alpha = 1.0 / period
    avg_gain = avg_loss = 0.0
    out: list[float] = []
    for i in range(1, len(closes)):
        change = float(closes[i]) - float(closes[i - 1])
        gain, loss = max(change, 0.0), max(-change, 0.0)
        if i == 1:
            avg_gain, avg_loss = gain, loss
        else:
            avg_gain = alpha * gain + (1 - alpha) * avg_gain
            avg_loss = alpha * loss + (1 - alpha) * avg_loss
        if avg_loss == 0.0:
            out.append(50.0 if avg_gain == 0.0 else 100.0)
        else:
            out.append(100.0 - 100.0 / (1.0 + avg_gain / avg_loss))
    return out


def log_returns(closes: Sequence[float]) -> np.ndarray:
    prices = np.asarray(closes, dtype=float)
    if len(prices) < 2:
        return np.empty(0)
    return np.diff(np.log(prices))


def volatility(closes: Sequence[float]) -> float:
    """Sample standard deviation of log returns per bar (0 with fewer than two returns)."""
    returns = log_returns(closes)
    return float(returns.std(ddof=1)) if len(returns) >= 2 else 0.0


def correlation(a: Sequence[float], b: Sequence[float]) -> float:
    """Pearson correlation of two equally long series (0 if either is constant)."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(x) != len(y):
        raise ValueError("series must have the same length")
    if len(x) < 2 or x.std() == 0 or y.std() == 0:
        return 0.0
    return float(np.corrcoef(x, y)[0, 1])


def quote_volume(volumes: Sequence[float], closes: Sequence[float]) -> float:
    return float(np.dot(np.asarray(volumes, dtype=float), np.asarray(closes, dtype=float)))


def corwin_schultz_spread(highs: Sequence[float], lows: Sequence[float]) -> float:
    """Relative spread estimate (a fraction: 0.0002 = 2 bps) from highs and lows.

    For each pair of consecutive bars: beta = Σ ln(H/L)² over the two bars, gamma = ln(H₂/L₂)² of
    the two-bar range, alpha = (√(2β) − √β)/(3 − 2√2) − √(γ/(3 − 2√2)), S = 2(eᵅ − 1)/(1 + eᵅ).
    """
    h = np.asarray(highs, dtype=float)
    low = np.asarray(lows, dtype=float)
    if len(h) < 2:
        return 0.0
    k = 3 - 2 * math.sqrt(2)
    hl = np.log(h / low) ** 2
    beta = hl[1:] + hl[:-1]
    gamma = np.log(np.maximum(h[1:], h[:-1]) / np.minimum(low[1:], low[:-1])) ** 2
    alpha = (np.sqrt(2 * beta) - np.sqrt(beta)) / k - np.sqrt(gamma / k)
    spread = 2 * (np.exp(alpha) - 1) / (1 + np.exp(alpha))
    return float(np.clip(spread, 0.0, None).mean())


__all__ = ["correlation", "corwin_schultz_spread", "ema", "log_returns", "quote_volume", "rsi", "volatility"]
