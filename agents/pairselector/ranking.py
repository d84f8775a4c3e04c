"""Ranking of candidate pairs (pure): metrics from klines, a weighted score, correlation pruning.

Why normalised ranks rather than raw values: quote volumes span orders of magnitude between
symbols and volatility and spread have different units; a rank in [0, 1] per criterion makes the
configured weights mean what they say ("volume counts half"). Higher volume and higher volatility
rank better (a trend or mean-reversion strategy needs movement and liquidity), a lower spread ranks
better (it is paid on every trade).

Correlation pruning is greedy in score order: a candidate whose log-return correlation with a pair
already chosen exceeds ``max_correlation`` is a near-duplicate (two bets on the same move) and is
dropped, so the list spreads risk instead of concentrating it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from tradingbot_agents import indicators
from tradingbot_agents.messages import KlineBar, PairScore

BARS_PER_DAY = 24  # 1h bars: the 24 h quote volume is the last 24 of them


@dataclass(frozen=True)
class PairMetrics:
    symbol: str
    quote_volume_24h: float
    volatility: float
    spread_bps: float
    returns: np.ndarray = field(repr=False, compare=False)


@dataclass(frozen=True)
class Weights:
    volume: float = 0.5
    volatility: float = 0.3
    spread: float = 0.2


@dataclass(frozen=True)
class Selection:
    chosen: list[PairScore]
    ranked: list[PairScore]
    dropped_correlated: dict[str, tuple[str, float]]  # symbol -> (chosen pair it duplicates, corr)
    dropped_volume: list[str]


def metrics_from_bars(symbol: str, bars: Sequence[KlineBar], lookback: int) -> PairMetrics:
    """Metrics over the last ``lookback`` 1h bars (quote volume over the last 24 of them)."""
    window = list(bars)[-lookback:]
    closes = [b.close for b in window]
    day = window[-BARS_PER_DAY:]
    return PairMetrics(
        symbol=symbol,
        quote_volume_24h=indicators.quote_volume([b.volume for b in day], [b.close for b in day]),
        volatility=indicators.volatility(closes),
        spread_bps=indicators.corwin_schultz_spread([b.high for b in window], [b.low for b in window]) * 10_000,
        returns=indicators.log_returns(closes),
    )


def _pct_rank(values: Sequence[float], *, higher_is_better: bool) -> list[float]:
    """Rank in [0, 1] (1 = best); ties share their average rank; one candidate ranks 1."""
    n = len(values)
    if n == 1:
        return [1.0]
    arr = np.asarray(values, dtype=float)
    order = arr if higher_is_better else -arr
    ranks = np.empty(n)
    sorted_idx = np.argsort(order, kind="stable")
    ranks[sorted_idx] = np.arange(n, dtype=float)
    for value in np.unique(order):  # average ties
        tied = order == value
        ranks[tied] = ranks[tied].mean()
    return list(ranks / (n - 1))


def score(metrics: Sequence[PairMetrics], weights: Weights) -> list[PairScore]:
    """Weighted normalised ranks, best first (ties broken by symbol for a stable order)."""
    if not metrics:
        return []
    total = weights.volume + weights.volatility + weights.spread or 1.0
    vol_r = _pct_rank([m.quote_volume_24h for m in metrics], higher_is_better=True)
    sig_r = _pct_rank([m.volatility for m in metrics], higher_is_better=True)
    spr_r = _pct_rank([m.spread_bps for m in metrics], higher_is_better=False)
    scored = [
        PairScore(symbol=m.symbol,
                  score=round((weights.volume * v + weights.volatility * s + weights.spread * p) / total, 6),
                  quote_volume_24h=m.quote_volume_24h, volatility=m.volatility, spread_bps=m.spread_bps)
        for m, v, s, p in zip(metrics, vol_r, sig_r, spr_r, strict=True)
    ]
    return sorted(scored, key=lambda p: (-p.score, p.symbol))


def select(metrics: Sequence[PairMetrics], *, weights: Weights, max_pairs: int, max_correlation: float,
           min_quote_volume: float = 0.0) -> Selection:
    by_symbol = {m.symbol: m for m in metrics}
    eligible = [m for m in metrics if m.quote_volume_24h >= min_quote_volume]
    too_small = sorted(m.symbol for m in metrics if m.quote_volume_24h < min_quote_volume)
    ranked = score(eligible, weights)
    chosen: list[PairScore] = []
    dropped: dict[str, tuple[str, float]] = {}
    for candidate in ranked:
        if len(chosen) >= max_pairs:
            break
        duplicate = _most_correlated(by_symbol[candidate.symbol], [by_symbol[c.symbol] for c in chosen])
        if duplicate is not None and duplicate[1] > max_correlation:
            dropped[candidate.symbol] = duplicate
            continue
        chosen.append(candidate)
    return Selection(chosen=chosen, ranked=ranked, dropped_correlated=dropped, dropped_volume=too_small)


def _most_correlated(candidate: PairMetrics, chosen: Sequence[PairMetrics]) -> tuple[str, float] | None:
    best: tuple[str, float] | None = None
    for other in chosen:
        n = min(len(candidate.returns), len(other.returns))
        if n < 2:
            continue
        corr = indicators.correlation(candidate.returns[-n:], other.returns[-n:])
        if best is None or corr > best[1]:
            best = (other.symbol, corr)
    return best
