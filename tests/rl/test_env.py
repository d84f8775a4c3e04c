"""The environment's API and reward arithmetic, and the evaluation metrics. Pure: no servers."""

from __future__ import annotations

import math

import empyrical
import numpy as np
import pytest

from tradingbot_agents.rl.env import (
    FLAT,
    LONG,
    SHORT,
    EnvConfig,
    MultiSeriesEnv,
    TradingEnv,
    observation_from_closes,
)
from tradingbot_agents.rl.evaluate import buy_and_hold, max_drawdown, performance, run_policy, sharpe_ratio

# A hand-checkable series: +10 %, −10 %, 0 %, +10 %.
CLOSES = np.array([100.0, 110.0, 99.0, 99.0, 108.9])
FEE = 0.001


def make_env(**kwargs: object) -> TradingEnv:
    return TradingEnv(CLOSES, EnvConfig(window=1, fee=FEE, **kwargs))  # type: ignore[arg-type]


def test_reset_gives_the_window_of_scaled_returns_and_a_flat_position() -> None:
    env = make_env(episode_length=None)
    obs, info = env.reset(options={"start": 1})
    # log(1.1) × 100 = 9.531…, inside the clip of ±10; the position is last and flat.
    assert obs.tolist() == pytest.approx([100 * math.log(1.1), 0.0])
    assert info == {"t": 1, "position": 0.0}
    assert env.observation_size == 2 and env.n_actions == 3


def test_step_rewards_match_hand_computed_numbers() -> None:
    env = make_env(episode_length=None)
    env.reset(options={"start": 1})
    # flat → long over 110 → 99: log(0.9) minus one unit of fee.
    obs, reward, terminated, truncated, info = env.step(LONG)
    assert reward == pytest.approx(math.log(0.9) - 0.001, abs=1e-15)
    assert (terminated, truncated) == (False, False)
    # log(0.9) × 100 = −10.54 is clipped to −10; the position is now long.
    assert obs.tolist() == [-10.0, 1.0]
    assert info["cost"] == pytest.approx(0.001)
    # long → short over a flat bar: no market move, two units of fee.
    _, reward, _, truncated, _ = env.step(SHORT)
    assert reward == pytest.approx(-0.002, abs=1e-15) and not truncated
    # stay short over 99 → 108.9: −log(1.1), no fee; the data end here.
    _, reward, terminated, truncated, _ = env.step(SHORT)
    assert reward == pytest.approx(-math.log(1.1), abs=1e-15)
    assert (terminated, truncated) == (False, True)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(FLAT)


def test_bad_actions_and_starts_are_rejected() -> None:
    env = make_env()
    env.reset(seed=1)
    with pytest.raises(ValueError, match="action"):
        env.step(3)
    with pytest.raises(ValueError, match="start"):
        env.reset(options={"start": 0})  # no full window before bar 0
    with pytest.raises(ValueError, match="too short"):
        TradingEnv(CLOSES[:2], EnvConfig(window=1))


def test_episodes_have_their_length_and_seeded_random_starts() -> None:
    closes = 100 * np.exp(np.cumsum(np.full(200, 0.001)))
    env = TradingEnv(closes, EnvConfig(window=5, episode_length=20))
    starts = [env.reset(seed=42)[1]["t"]] + [env.reset()[1]["t"] for _ in range(5)]
    again = [env.reset(seed=42)[1]["t"]] + [env.reset()[1]["t"] for _ in range(5)]
    assert starts == again and len(set(starts)) > 1
    env.reset(seed=3)
    steps, done = 0, False
    while not done:
        *_, truncated, _ = env.step(FLAT)
        steps, done = steps + 1, truncated
    assert steps == 20


def test_live_observation_equals_the_training_observation() -> None:
    """The agent builds observations from fetched closes; they must be what the policy trained on."""
    rng = np.random.default_rng(0)
    closes = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 60)))
    env = TradingEnv(closes, EnvConfig(window=8, episode_length=None))
    env.reset(options={"start": 30})
    env.step(SHORT)  # now at t = 31 holding −1
    live = observation_from_closes(closes[: 31 + 1], 8, position=-1.0)
    assert np.array_equal(live, env._obs())


def test_multi_series_env_samples_every_series() -> None:
    up = 100 * np.exp(np.cumsum(np.full(50, 0.01)))
    down = 100 * np.exp(np.cumsum(np.full(50, -0.01)))
    env = MultiSeriesEnv([up, down], EnvConfig(window=3, episode_length=5))
    picked = {env.reset(seed=5)[1]["series"]} | {env.reset()[1]["series"] for _ in range(20)}
    assert picked == {0, 1}
    env.reset(seed=5)
    _, reward, *_ = env.step(LONG)
    assert reward == pytest.approx((0.01 if env.current is env.envs[0] else -0.01) - 0.0005)


def test_metrics_follow_empyrical_conventions() -> None:
    rng = np.random.default_rng(1)
    simple = rng.normal(0.0002, 0.01, 500)
    assert sharpe_ratio(simple) == pytest.approx(empyrical.sharpe_ratio(simple, annualization=8760), rel=1e-9)
    assert max_drawdown(simple) == pytest.approx(empyrical.max_drawdown(simple), rel=1e-9)
    # +10 % then −50 % then +20 %: peak 1.1, trough 0.55 → −50 %; total 1.1 × 0.5 × 1.2 − 1 = −34 %.
    perf = performance(np.log([1.1, 0.5, 1.2]))
    assert perf.max_drawdown == pytest.approx(-0.5)
    assert perf.total_return == pytest.approx(-0.34)


def test_buy_and_hold_and_a_policy_over_the_hand_series() -> None:
    config = EnvConfig(window=1, fee=FEE)
    hold = buy_and_hold(CLOSES, config)
    # From bar 1 (110) to the end (108.9), one entry fee: 108.9/110 × e^−0.001 − 1.
    assert hold.total_return == pytest.approx(108.9 / 110 * math.exp(-0.001) - 1)
    assert (hold.trades, hold.bars, hold.exposure) == (1, 3, 1.0)
    # Short after a rise, long after a fall (the obs's first element is the last return).
    contrarian = run_policy(CLOSES, lambda obs: SHORT if obs[0] > 0 else LONG, config)
    # short 110→99 (−log 0.9 − fee), short → long over 99→99 (−2 fee), long 99→108.9 (+log 1.1).
    assert contrarian.total_return == pytest.approx(110 / 99 * 1.1 * math.exp(-0.003) - 1)
    assert contrarian.trades == 2
