"""Indicators against pandas references and hand-computed values, on the shipped real klines."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from tradingbot_agents import indicators
from tradingbot_agents.exchange.simulator.data import DEFAULT_DIR, load_series


@pytest.fixture(scope="module")
def btc() -> pd.DataFrame:
    s = load_series(DEFAULT_DIR / "BTCUSDT-1h.csv.gz")
    return pd.DataFrame({"high": s.high[:600], "low": s.low[:600], "close": s.close[:600],
                         "volume": s.volume[:600]})


def test_ema_matches_pandas_ewm_on_real_closes(btc: pd.DataFrame) -> None:
    for period in (12, 26):
        ours = indicators.ema(btc["close"].tolist(), period)
        ref = btc["close"].ewm(span=period, adjust=False).mean().to_numpy()
        np.testing.assert_allclose(ours, ref, rtol=1e-12)


def test_ema_by_hand() -> None:
    # alpha = 2/(3+1) = 0.5: 1, 0.5*2+0.5*1 = 1.5, 0.5*3+0.5*1.5 = 2.25
    assert indicators.ema([1, 2, 3], 3) == [1.0, 1.5, 2.25]


def test_rsi_matches_wilder_smoothing_in_pandas(btc: pd.DataFrame) -> None:
    period = 14
    delta = btc["close"].diff().dropna()
    gain = delta.clip(lower=0).ewm(alpha=1 / period, adjust=False).mean()
    loss = (-delta.clip(upper=0)).ewm(alpha=1 / period, adjust=False).mean()
    ref = (100 - 100 / (1 + gain / loss)).to_numpy()
    ours = indicators.rsi(btc["close"].tolist(), period)
    assert len(ours) == len(btc) - 1
    np.testing.assert_allclose(ours, ref, rtol=1e-10)
    assert all(0 <= v <= 100 for v in ours)


def test_rsi_edge_cases_by_hand() -> None:
    assert indicators.rsi([1, 2, 3, 4], 2)[-1] == 100.0  # never a loss
    assert indicators.rsi([5, 5, 5], 2)[-1] == 50.0  # flat
    # changes +2, -1 with alpha 1/2: gain 2 -> 1, loss 0 -> 0.5, RS 2, RSI 66.67
    assert indicators.rsi([1, 3, 2], 2)[-1] == pytest.approx(100 - 100 / 3)


def test_volatility_and_correlation_match_pandas(btc: pd.DataFrame) -> None:
    ref_returns = np.log(btc["close"]).diff().dropna()
    assert indicators.volatility(btc["close"].tolist()) == pytest.approx(ref_returns.std(ddof=1), rel=1e-12)
    eth = load_series(DEFAULT_DIR / "ETHUSDT-1h.csv.gz").close[:600]
    eth_returns = np.log(pd.Series(eth)).diff().dropna()
    ours = indicators.correlation(ref_returns.to_numpy(), eth_returns.to_numpy())
    assert ours == pytest.approx(ref_returns.reset_index(drop=True).corr(eth_returns.reset_index(drop=True)))
    assert 0.5 < ours < 1.0  # BTC and ETH move together, not identically


def test_quote_volume_is_sum_of_volume_times_close(btc: pd.DataFrame) -> None:
    day = btc.tail(24)
    assert indicators.quote_volume(day["volume"], day["close"]) == pytest.approx((day["volume"] * day["close"]).sum())


def test_corwin_schultz_spread_by_hand() -> None:
    highs, lows = [101.0, 102.0], [99.0, 100.0]
    k = 3 - 2 * math.sqrt(2)
    beta = math.log(101 / 99) ** 2 + math.log(102 / 100) ** 2
    gamma = math.log(102 / 99) ** 2
    alpha = (math.sqrt(2 * beta) - math.sqrt(beta)) / k - math.sqrt(gamma / k)
    expected = max(2 * (math.exp(alpha) - 1) / (1 + math.exp(alpha)), 0.0)
    assert indicators.corwin_schultz_spread(highs, lows) == pytest.approx(expected)
    # Identical bars: no overnight move, the whole range is spread -> positive estimate.
    assert indicators.corwin_schultz_spread([101, 101, 101], [99, 99, 99]) > 0
