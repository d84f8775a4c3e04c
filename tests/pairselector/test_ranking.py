"""Ranking and correlation pruning (pure), on real klines and on constructed series."""

from __future__ import annotations

import numpy as np
import pytest

from tradingbot_agents.exchange.simulator.data import DEFAULT_DIR, load_series
from tradingbot_agents.messages import KlineBar
from tradingbot_agents.pairselector.ranking import PairMetrics, Weights, metrics_from_bars, score, select


def bars_of(symbol: str, n: int = 200, offset: int = 2000) -> list[KlineBar]:
    s = load_series(DEFAULT_DIR / f"{symbol}-1h.csv.gz")
    return [KlineBar(open_time=int(s.open_time[i]), open=float(s.open[i]), high=float(s.high[i]),
                     low=float(s.low[i]), close=float(s.close[i]), volume=float(s.volume[i]),
                     close_time=int(s.open_time[i]) + 3_599_999) for i in range(offset, offset + n)]


def metric(symbol: str, volume: float, vol: float, spread: float, returns: np.ndarray) -> PairMetrics:
    return PairMetrics(symbol, volume, vol, spread, returns)


def test_metrics_from_real_bars() -> None:
    bars = bars_of("BTCUSDT")
    m = metrics_from_bars("BTCUSDT", bars, 168)
    day = bars[-24:]
    assert m.quote_volume_24h == pytest.approx(sum(b.volume * b.close for b in day))
    assert 0 < m.volatility < 0.05
    assert 0 <= m.spread_bps < 100
    assert len(m.returns) == 167


def test_score_orders_by_weighted_ranks() -> None:
    r = np.zeros(5)
    ranked = score([metric("A", 100, 0.01, 5, r), metric("B", 10, 0.03, 1, r), metric("C", 50, 0.02, 3, r)],
                   Weights(volume=1, volatility=0, spread=0))
    assert [p.symbol for p in ranked] == ["A", "C", "B"]
    ranked = score([metric("A", 100, 0.01, 5, r), metric("B", 10, 0.03, 1, r)], Weights(0, 0, 1))
    assert [p.symbol for p in ranked] == ["B", "A"]  # lower spread is better
    assert ranked[0].score == 1.0 and ranked[1].score == 0.0


def test_near_duplicates_are_dropped_and_the_next_candidate_taken() -> None:
    rng = np.random.default_rng(1)
    base = rng.normal(size=100)
    twin = base + rng.normal(scale=0.05, size=100)  # correlation ~0.999
    other = rng.normal(size=100)
    metrics = [metric("A", 300, 0.02, 2, base), metric("A2", 200, 0.02, 2, twin), metric("B", 100, 0.02, 2, other)]
    sel = select(metrics, weights=Weights(1, 0, 0), max_pairs=2, max_correlation=0.9)
    assert [p.symbol for p in sel.chosen] == ["A", "B"]
    assert sel.dropped_correlated["A2"][0] == "A" and sel.dropped_correlated["A2"][1] > 0.99
    sel = select(metrics, weights=Weights(1, 0, 0), max_pairs=2, max_correlation=1.0)
    assert [p.symbol for p in sel.chosen] == ["A", "A2"]


def test_min_quote_volume_filters() -> None:
    r = np.zeros(3)
    sel = select([metric("A", 5, 0.1, 1, r), metric("B", 50, 0.1, 1, r)], weights=Weights(), max_pairs=5,
                 max_correlation=0.9, min_quote_volume=10)
    assert [p.symbol for p in sel.chosen] == ["B"] and sel.dropped_volume == ["A"]


def test_real_pairs_btc_eth_are_highly_correlated() -> None:
    """With the real data, a tight max_correlation keeps only one of the majors."""
    symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "DOGEUSDT", "LTCUSDT"]
    metrics = [metrics_from_bars(s, bars_of(s), 168) for s in symbols]
    loose = select(metrics, weights=Weights(), max_pairs=6, max_correlation=1.0)
    assert len(loose.chosen) == 6
    tight = select(metrics, weights=Weights(), max_pairs=6, max_correlation=0.6)
    assert len(tight.chosen) < 6 and tight.dropped_correlated
    chosen = [p.symbol for p in tight.chosen]
    assert chosen[0] == loose.chosen[0].symbol  # the best ranked is always kept
