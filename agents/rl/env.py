"""A trading environment over a series of closes, with the gymnasium ``reset``/``step`` API.

Pure: it holds a numpy array of prices and a random generator, and does no I/O, so the same code
runs on the shipped klines (benchmark), on klines fetched over the bus (the agent) and on a
series made up in a test.

The market model, stated so that results can be judged:

* one instrument, decisions at each bar's close, position held over the next bar;
* actions: 0 = flat, 1 = long, 2 = short (the *target* position, not an order);
* reward of a step = ``position × log(close[t+1] / close[t]) − fee × |position − previous|``:
  a log return, so rewards add up over an episode to the log growth of equity (one unit of
  notional, no leverage, no compounding of position size);
* ``fee`` is charged per unit of position changed (flat → long costs 1 ×, long → short 2 ×). The
  default, 5 bps, is Binance USDⓈ-M futures' standard taker fee (0.05 %); spread and slippage are
  not modelled beyond it;
* observation: the last ``window`` log returns (scaled by ``RETURN_SCALE`` and clipped, so a
  typical hourly move is of order 1 for the network) followed by the current position.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

FLAT, LONG, SHORT = 0, 1, 2
N_ACTIONS = 3
POSITIONS = (0.0, 1.0, -1.0)  # indexed by action
ACTION_NAMES = ("hold", "buy", "sell")  # RLAdvice wording: hold = be flat, buy = be long, sell = be short
DEFAULT_FEE = 0.0005
# Hourly log returns of crypto majors are ~0.5 %: ×100 turns them into percent, order 1.
RETURN_SCALE = 100.0
RETURN_CLIP = 10.0


def log_returns(closes: np.ndarray) -> np.ndarray:
    """``r[i] = log(closes[i+1] / closes[i])``: one fewer element than ``closes``."""
    prices = np.asarray(closes, dtype=np.float64)
    if prices.ndim != 1 or len(prices) < 2 or np.any(prices <= 0):
        raise ValueError("closes must be a 1-d series of at least 2 positive prices")
    return np.diff(np.log(prices))


def observation(returns_window: np.ndarray, position: float) -> np.ndarray:
    """The network's input: scaled, clipped returns (oldest first) and the position last."""
    scaled = np.clip(np.asarray(returns_window, dtype=np.float64) * RETURN_SCALE, -RETURN_CLIP, RETURN_CLIP)
    return np.append(scaled, float(position))


def observation_from_closes(closes: np.ndarray, window: int, position: float = 0.0) -> np.ndarray:
    """The observation at the last close of ``closes`` (needs ``window + 1`` closes): what the
    agent feeds the policy from live klines, identical to what the environment produced in training."""
    prices = np.asarray(closes, dtype=np.float64)
    if len(prices) < window + 1:
        raise ValueError(f"need {window + 1} closes for a window of {window}, got {len(prices)}")
    return observation(log_returns(prices[-(window + 1):]), position)


def step_reward(position: float, previous: float, next_return: float, fee: float) -> float:
    """The reward arithmetic, alone so a test can check it against hand-computed numbers."""
    return position * next_return - fee * abs(position - previous)


@dataclass(frozen=True)
class EnvConfig:
    window: int = 24
    fee: float = DEFAULT_FEE
    # Bars per training episode; None = from the first decidable bar to the end of the series.
    episode_length: int | None = 256


class TradingEnv:
    """Gymnasium-style: ``reset(seed=..., options=...) -> (obs, info)`` and
    ``step(action) -> (obs, reward, terminated, truncated, info)``.

    ``terminated`` is always False (there is no ruin state: one unit of notional, no leverage);
    ``truncated`` marks the end of the episode (its length, or the end of the data).
    """

    def __init__(self, closes: np.ndarray, config: EnvConfig | None = None) -> None:
        self.config = config or EnvConfig()
        self.returns = log_returns(closes)
        self.window = self.config.window
        if self.window < 1:
            raise ValueError("window must be at least 1")
        # At time index t (a close), the observation uses returns[t-window:t], the reward returns[t].
        self.first_t = self.window
        self.last_t = len(self.returns) - 1  # the last t that still has a next return
        if self.last_t < self.first_t:
            raise ValueError(f"series too short: {len(closes)} closes for a window of {self.window}")
        self.observation_size = self.window + 1
        self.n_actions = N_ACTIONS
        self.rng = np.random.default_rng()
        self.t = self.first_t
        self.end_t = self.last_t
        self.position = 0.0

    def expected_episode_steps(self) -> int:
        """Steps of a default episode (the learner's ε schedule is set from it)."""
        span = self.last_t - self.first_t + 1
        length = self.config.episode_length
        return span if length is None else min(length, span)

    def _obs(self) -> np.ndarray:
        return observation(self.returns[self.t - self.window:self.t], self.position)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode: at ``options["start"]`` if given, else at a random bar (the env's own
        generator, seeded by ``seed``); always flat."""
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        options = options or {}
        length = options.get("length", self.config.episode_length)
        span = self.last_t - self.first_t + 1  # decidable bars
        steps = span if length is None else min(int(length), span)
        if "start" in options:
            start = int(options["start"])
            if not self.first_t <= start <= self.last_t:
                raise ValueError(f"start must be in [{self.first_t}, {self.last_t}]")
        else:
            start = self.first_t + int(self.rng.integers(0, span - steps + 1))
        self.t = start
        self.end_t = min(start + steps - 1, self.last_t)
        self.position = 0.0
        return self._obs(), {"t": self.t, "position": self.position}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if action not in (FLAT, LONG, SHORT):
            raise ValueError(f"action must be 0, 1 or 2, got {action!r}")
        if self.t > self.end_t:
            raise RuntimeError("episode is over: call reset()")
        previous, position = self.position, POSITIONS[action]
        next_return = float(self.returns[self.t])
        reward = step_reward(position, previous, next_return, self.config.fee)
        cost = self.config.fee * abs(position - previous)
        self.position = position
        self.t += 1
        truncated = self.t > self.end_t
        # After the last step the window still exists (t <= len(returns)), so obs is well defined.
        info = {"t": self.t, "position": position, "log_return": next_return, "cost": cost}
        return self._obs(), reward, False, truncated, info


class MultiSeriesEnv:
    """Several series (e.g. one per symbol) behind one environment: each ``reset`` picks a series
    at random, then a window in it. One policy learns from every symbol the agent advises on; the
    observation (scaled returns, position) is symbol-agnostic, so this is sound."""

    def __init__(self, series: list[np.ndarray], config: EnvConfig | None = None) -> None:
        if not series:
            raise ValueError("at least one series is needed")
        self.config = config or EnvConfig()
        self.envs = [TradingEnv(closes, self.config) for closes in series]
        self.observation_size = self.envs[0].observation_size
        self.n_actions = N_ACTIONS
        self.rng = np.random.default_rng()
        self.current = self.envs[0]

    def expected_episode_steps(self) -> int:
        return int(np.mean([env.expected_episode_steps() for env in self.envs]))

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        index = int(self.rng.integers(0, len(self.envs)))
        self.current = self.envs[index]
        obs, info = self.current.reset(seed=int(self.rng.integers(0, 2**31 - 1)), options=options)
        return obs, {**info, "series": index}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        return self.current.step(action)
