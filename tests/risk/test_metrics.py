"""Every risk metric against a reference implementation on the same real return series.

References: empyrical-reloaded (VaR, CVaR, Sharpe, Sortino, max drawdown, annual volatility) with
``annualization=8760`` (hourly bars) and a zero risk-free rate; scipy's normal quantile for the
parametric VaR; pandas for returns and rolling correlation; numpy's corrcoef for the matrix.
empyrical reports losses as negative returns, ours are positive loss fractions, hence the minus.
"""

from __future__ import annotations

import math

import empyrical
import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from tests.risk.series import closes, returns
from tradingbot_agents.risk import metrics as m
from tradingbot_agents.risk.metrics import HOURS_PER_YEAR

SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "DOGEUSDT"]
WINDOWS = [168, 720, None]  # a week, a month, the whole shipped year


def series(symbol: str, window: int | None) -> np.ndarray:
    values = returns(symbol)
    return values if window is None else values[-window:]


@pytest.fixture(params=[(s, w) for s in SYMBOLS for w in WINDOWS], ids=lambda p: f"{p[0]}-{p[1] or 'all'}")
def real(request: pytest.FixtureRequest) -> np.ndarray:
    values = series(*request.param)
    assert values.size >= 168 and np.std(values) > 0  # a real, moving series
    return values


def test_simple_returns_match_pandas_pct_change() -> None:
    prices = closes("BTCUSDT")
    assert np.allclose(m.simple_returns(prices.to_numpy()), prices.pct_change().dropna().to_numpy())


@pytest.mark.parametrize("confidence", [0.95, 0.99])
def test_historical_var_matches_empyrical(real: np.ndarray, confidence: float) -> None:
    ours = m.historical_var(real, confidence)
    assert ours > 0
    assert ours == pytest.approx(-empyrical.value_at_risk(real, cutoff=1 - confidence), rel=1e-12)


@pytest.mark.parametrize("confidence", [0.95, 0.99])
def test_cvar_matches_empyrical_and_is_beyond_var(real: np.ndarray, confidence: float) -> None:
    ours = m.cvar(real, confidence)
    assert ours == pytest.approx(-empyrical.conditional_value_at_risk(real, cutoff=1 - confidence), rel=1e-12)
    assert ours >= m.historical_var(real, confidence)  # the tail's mean lies beyond its edge


@pytest.mark.parametrize("confidence", [0.95, 0.99])
def test_parametric_var_matches_the_gaussian_formula(real: np.ndarray, confidence: float) -> None:
    reference = -(np.mean(real) + norm.ppf(1 - confidence) * np.std(real, ddof=1))
    assert m.parametric_var(real, confidence) == pytest.approx(reference, rel=1e-9)
    # Equivalently, minus the normal quantile with the sample's moments.
    assert m.parametric_var(real, confidence) == pytest.approx(
        -norm(loc=np.mean(real), scale=np.std(real, ddof=1)).ppf(1 - confidence), rel=1e-9)


def test_sharpe_matches_empyrical(real: np.ndarray) -> None:
    reference = empyrical.sharpe_ratio(real, risk_free=0, annualization=HOURS_PER_YEAR)
    assert m.sharpe(real) == pytest.approx(reference, rel=1e-9)


def test_sortino_matches_empyrical(real: np.ndarray) -> None:
    reference = empyrical.sortino_ratio(real, required_return=0, annualization=HOURS_PER_YEAR)
    assert m.sortino(real) == pytest.approx(reference, rel=1e-9)
    assert m.downside_deviation(real) == pytest.approx(
        empyrical.downside_risk(real, required_return=0, annualization=HOURS_PER_YEAR), rel=1e-9)


def test_max_drawdown_matches_empyrical(real: np.ndarray) -> None:
    ours = m.max_drawdown(real)
    assert 0 < ours < 1
    assert ours == pytest.approx(-empyrical.max_drawdown(real), rel=1e-12)


def test_annual_volatility_matches_empyrical(real: np.ndarray) -> None:
    assert m.annual_volatility(real) == pytest.approx(
        empyrical.annual_volatility(real, annualization=HOURS_PER_YEAR), rel=1e-12)


def test_annualisation_is_hourly_not_daily() -> None:
    values = series("BTCUSDT", 720)
    daily_convention = empyrical.sharpe_ratio(values, period="daily")
    assert m.sharpe(values) == pytest.approx(daily_convention * math.sqrt(8760 / 252), rel=1e-9)


def test_drawdown_of_an_equity_curve_matches_empyrical_on_its_returns() -> None:
    equity = 10_000 * np.cumprod(1 + series("ETHUSDT", 720))
    max_dd, current = m.drawdown_from_equity(equity)
    reference = -empyrical.max_drawdown(pd.Series(equity).pct_change().dropna().to_numpy())
    assert max_dd == pytest.approx(reference, rel=1e-9)
    assert current == pytest.approx(1 - equity[-1] / equity.max(), rel=1e-12)


@pytest.mark.parametrize("pair", [("BTCUSDT", "ETHUSDT"), ("SOLUSDT", "DOGEUSDT")])
@pytest.mark.parametrize("window", [24, 168])
def test_rolling_correlation_matches_pandas(pair: tuple[str, str], window: int) -> None:
    a, b = (pd.Series(returns(s)[-1000:]) for s in pair)
    ours = m.rolling_correlation(a.to_numpy(), b.to_numpy(), window)
    reference = a.rolling(window).corr(b).dropna().to_numpy()
    assert ours.shape == reference.shape == (1000 - window + 1,)
    assert np.allclose(ours, reference, rtol=1e-9, atol=1e-12)
    assert 0.3 < np.nanmean(ours) < 1  # crypto majors move together


def test_correlation_matrix_matches_numpy_corrcoef() -> None:
    window = 168
    data = {s: returns(s)[-window:] for s in SYMBOLS}
    ours = m.correlation_matrix(data, window)
    reference = np.corrcoef(np.vstack([data[s] for s in sorted(SYMBOLS)]))
    for i, first in enumerate(sorted(SYMBOLS)):
        for j, second in enumerate(sorted(SYMBOLS)):
            assert ours[first][second] == pytest.approx(reference[i, j], abs=1e-6)


def test_aligned_returns_pair_the_same_hours_only() -> None:
    btc, eth = closes("BTCUSDT"), closes("ETHUSDT")
    eth_with_gap = eth.drop(eth.index[-5])  # one hour missing from ETH
    aligned = m.aligned_returns({"BTCUSDT": btc.to_dict(), "ETHUSDT": eth_with_gap.to_dict()}, 100)
    common = btc.index.intersection(eth_with_gap.index)[-101:]
    assert np.allclose(aligned["BTCUSDT"], btc.loc[common].pct_change().dropna().to_numpy())
    assert np.allclose(aligned["ETHUSDT"], eth.loc[common].pct_change().dropna().to_numpy())


def test_portfolio_var_is_the_var_of_the_weighted_return_series() -> None:
    btc, eth = series("BTCUSDT", 168), series("ETHUSDT", 168)
    weights = {"BTCUSDT": 0.5, "ETHUSDT": -0.2}  # long 5,000 and short 2,000 on 10,000 equity
    portfolio = m.portfolio_returns(weights, {"BTCUSDT": btc, "ETHUSDT": eth})
    assert np.allclose(portfolio, 0.5 * btc - 0.2 * eth)
    assert m.historical_var(portfolio) == pytest.approx(-empyrical.value_at_risk(0.5 * btc - 0.2 * eth), rel=1e-12)
    # Diversification: the hedged book risks less than its long leg alone.
    assert m.historical_var(portfolio) < m.historical_var(0.5 * btc)


def test_not_enough_data_is_nan_not_zero() -> None:
    assert math.isnan(m.sharpe([0.01]))
    assert math.isnan(m.historical_var([]))
    assert math.isnan(m.sharpe([0.01, 0.01, 0.01]))  # no dispersion, no ratio
    assert m.finite_or_none(math.nan) is None
