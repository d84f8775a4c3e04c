"""Out-of-sample evaluation: the greedy policy against buy-and-hold over the same bars. Pure.

Conventions (stated, because every figure depends on them):

* per-bar returns are simple returns of equity, ``exp(reward) − 1`` for the policy (fees included)
  and ``close[t+1]/close[t] − 1`` for buy-and-hold (one entry fee charged on the first bar, like
  the policy's first trade);
* total return = ``exp(Σ log returns) − 1``;
* Sharpe = mean / standard deviation (ddof = 1) of the per-bar simple returns × √8760 (hourly bars,
  crypto trades every hour of the year), risk-free rate 0 — the convention of empyrical's
  ``sharpe_ratio`` with ``annualization=8760``;
* max drawdown = the largest peak-to-trough fall of the equity curve, as a negative fraction
  (empyrical's sign convention).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from tradingbot_agents.rl.env import LONG, EnvConfig, TradingEnv

HOURS_PER_YEAR = 8760


@dataclass(frozen=True)
class Performance:
    total_return: float
    sharpe: float
    max_drawdown: float
    bars: int
    trades: int = 0
    exposure: float = 0.0  # fraction of bars with a position

    def as_dict(self) -> dict[str, float]:
        return {k: round(float(v), 6) for k, v in asdict(self).items()}


def sharpe_ratio(simple_returns: np.ndarray, periods_per_year: int = HOURS_PER_YEAR) -> float:
    r = np.asarray(simple_returns, dtype=np.float64)
    if len(r) < 2:
        return 0.0
    std = r.std(ddof=1)
    return 0.0 if std == 0 else float(r.mean() / std * np.sqrt(periods_per_year))


def max_drawdown(simple_returns: np.ndarray) -> float:
    equity = np.cumprod(1.0 + np.asarray(simple_returns, dtype=np.float64))
    peaks = np.maximum.accumulate(np.maximum(equity, 1.0))
    return float(np.min(equity / peaks - 1.0)) if len(equity) else 0.0


def performance(log_rewards: np.ndarray, trades: int = 0, exposure: float = 0.0) -> Performance:
    logs = np.asarray(log_rewards, dtype=np.float64)
    simple = np.expm1(logs)
    return Performance(total_return=float(np.expm1(logs.sum())), sharpe=sharpe_ratio(simple),
                       max_drawdown=max_drawdown(simple), bars=len(logs), trades=trades, exposure=exposure)


def run_policy(closes: np.ndarray, policy: Callable[[np.ndarray], int], config: EnvConfig) -> Performance:
    """Walk the whole series once with ``policy`` (obs → action), from flat at the first bar that
    has a full window."""
    env = TradingEnv(closes, EnvConfig(window=config.window, fee=config.fee, episode_length=None))
    obs, _ = env.reset(options={"start": env.first_t})
    rewards, trades, exposed, done = [], 0, 0, False
    while not done:
        previous = env.position
        obs, reward, terminated, truncated, info = env.step(policy(obs))
        rewards.append(reward)
        trades += int(info["position"] != previous)
        exposed += int(info["position"] != 0.0)
        done = terminated or truncated
    return performance(np.array(rewards), trades, exposed / max(1, len(rewards)))


def buy_and_hold(closes: np.ndarray, config: EnvConfig) -> Performance:
    """Long from the same first bar the policy decides on, to the end, one entry fee."""
    return run_policy(closes, lambda _obs: LONG, config)
