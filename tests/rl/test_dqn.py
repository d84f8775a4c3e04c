"""The numpy DQN: gradients, learning a trivially learnable series, reproducibility. No servers."""

from __future__ import annotations

import numpy as np
import pytest

from tradingbot_agents.config import RLAgentSettings
from tradingbot_agents.rl.dqn import DQN, MLP, DQNConfig, huber
from tradingbot_agents.rl.env import EnvConfig, TradingEnv
from tradingbot_agents.rl.evaluate import run_policy
from tradingbot_agents.rl.policy import Policy, confidence

FEE = 0.0005


def alternating_closes(bars: int = 400, move: float = 0.01) -> np.ndarray:
    """TEST-MADE series (not market data): the price alternately rises and falls by ``move`` in log
    terms, so the last return predicts the next one exactly. The best policy goes short after a
    rise and long after a fall, every bar."""
    moves = np.where(np.arange(bars) % 2 == 0, move, -move)
    return 100.0 * np.exp(np.concatenate([[0.0], np.cumsum(moves)]))


def test_backprop_matches_finite_differences() -> None:
    rng = np.random.default_rng(0)
    net = MLP([4, 5, 5, 3], rng)
    # Non-zero biases: with the initial zeros a unit whose inputs are all dead sits exactly on the
    # ReLU kink, where a finite difference is not the derivative.
    net.params = [p if p.ndim == 2 else rng.normal(0.0, 0.1, p.shape) for p in net.params]
    x = rng.normal(size=(6, 4))
    weights = rng.normal(size=(6, 3))

    def loss() -> float:
        return float(np.sum(net.forward(x)[0] * weights))

    _, activations = net.forward(x)
    grads = net.backward(activations, weights)
    eps = 1e-6
    for p, g in zip(net.params, grads, strict=True):
        for index in np.ndindex(p.shape):
            saved = p[index]
            p[index] = saved + eps
            up = loss()
            p[index] = saved - eps
            down = loss()
            p[index] = saved
            assert g[index] == pytest.approx((up - down) / (2 * eps), rel=1e-5, abs=1e-7)


def test_huber_is_quadratic_inside_delta_and_linear_outside() -> None:
    loss, grad = huber(np.array([0.5, -3.0]), 1.0)
    assert loss.tolist() == [0.125, 2.5]
    assert grad.tolist() == [0.5, -1.0]


def test_dqn_learns_the_test_made_alternating_series_better_than_random() -> None:
    closes = alternating_closes()
    config = EnvConfig(window=2, fee=FEE, episode_length=64)
    env = TradingEnv(closes, config)
    dqn = DQN(env.observation_size, env.n_actions, DQNConfig(hidden_units=16, seed=3, learn_start=200))
    untrained = run_policy(closes, dqn.act, config)
    report = dqn.train(env, 15)
    learned = run_policy(closes, dqn.act, config)
    rng = np.random.default_rng(0)
    random_runs = [run_policy(closes, lambda _obs: int(rng.integers(0, 3)), config).total_return for _ in range(5)]
    # The best possible: |move| every bar, a 2-unit fee per reversal after the first 1-unit entry.
    bars = learned.bars
    best = np.expm1(bars * 0.01 - FEE * (2 * bars - 1))
    assert report.episodes == 15 and report.updates > 0
    assert learned.total_return >= 0.9 * best, (learned, best)
    assert learned.total_return > max(random_runs) + 1.0
    assert learned.total_return > untrained.total_return + 1.0
    # And it learned the rule itself, in both positions it can be in: short after a rise, long after a fall.
    rise, fall = np.array([-1.0, 1.0]), np.array([1.0, -1.0])
    for position in (-1.0, 0.0, 1.0):
        assert dqn.act(np.append(rise, position)) == 2
        assert dqn.act(np.append(fall, position)) == 1


def _closes_with_noise(seed: int, bars: int = 600) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, bars)))


def test_same_seed_gives_identical_weights_and_evaluation() -> None:
    settings = RLAgentSettings(seed=11, hidden_units=16, window=8, train_episodes=4, episode_bars=64)
    series = {"AAA": _closes_with_noise(1), "BBB": _closes_with_noise(2)}
    first, first_report = Policy.train(series, settings)
    second, second_report = Policy.train(series, settings)
    for a, b in zip(first.dqn.q.params, second.dqn.q.params, strict=True):
        assert np.array_equal(a, b)
    assert first_report.episode_rewards == second_report.episode_rewards
    test_closes = _closes_with_noise(3)
    env = first.env
    assert run_policy(test_closes, first.dqn.act, env) == run_policy(test_closes, second.dqn.act, env)
    # A different seed is a different run (so the equality above is not vacuous).
    other, _ = Policy.train(series, settings, seed=12)
    assert not np.array_equal(other.dqn.q.params[0], first.dqn.q.params[0])


def test_weights_round_trip_through_bytes() -> None:
    dqn = DQN(5, 3, DQNConfig(hidden_units=8, seed=1))
    copy = DQN(5, 3, DQNConfig(hidden_units=8, seed=2))
    obs = np.linspace(-1, 1, 5)
    assert not np.array_equal(dqn.q_values(obs), copy.q_values(obs))
    copy.load_weights(dqn.weights_bytes())
    assert np.array_equal(dqn.q_values(obs), copy.q_values(obs))
    with pytest.raises(ValueError, match="do not fit"):
        DQN(6, 3, DQNConfig(hidden_units=8)).load_weights(dqn.weights_bytes())


def test_advice_maps_the_greedy_action_and_a_softmax_confidence() -> None:
    settings = RLAgentSettings(seed=5, hidden_units=8, window=4, train_episodes=2, episode_bars=32)
    policy, _ = Policy.train({"AAA": _closes_with_noise(4, 200)}, settings)
    closes = _closes_with_noise(9, 10)
    advice = policy.advise(closes, position=1.0)
    q = np.array(advice.q_values)
    assert advice.action == ("hold", "buy", "sell")[int(np.argmax(q))]
    assert advice.position == (0.0, 1.0, -1.0)[int(np.argmax(q))]
    p_best = float((np.exp(q - q.max()) / np.exp(q - q.max()).sum()).max())
    assert advice.confidence == pytest.approx((p_best - 1 / 3) * 1.5)
    assert 0 <= advice.confidence <= 1
    assert confidence(np.zeros(3)) == 0.0 and confidence(np.array([0.0, 100.0, 0.0])) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="need 5 closes"):
        policy.advise(closes[:4])
