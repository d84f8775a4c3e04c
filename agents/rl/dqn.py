"""Deep Q-Network (Mnih et al., 2015, "Human-level control through deep reinforcement learning"),
in numpy only.

Why DQN: the action set is small and discrete (flat / long / short), the observation is a short
vector, and DQN's ingredients are few and standard, so a numpy implementation stays readable and
testable. The parts, as in the paper:

* Q-network: an MLP ``obs → hidden (ReLU) → hidden (ReLU) → Q per action``, He-initialised;
* experience replay: a ring buffer of ``(s, a, r, s', done)``, minibatches drawn uniformly;
* a target network, a copy of the Q-network refreshed every ``target_update`` steps, gives the
  bootstrap target ``r + γ·max_a' Q_target(s', a')`` (zero future at a terminal state; a
  *truncated* episode still bootstraps, since time limits are not part of the task);
* ε-greedy exploration, ε decaying linearly from ``epsilon_start`` to ``epsilon_end`` over the
  first ``epsilon_decay_fraction`` of the training steps;
* Huber loss (δ = 1) on the TD error, i.e. the paper's error clipping, optimised with Adam
  (Kingma & Ba, 2015), gradients clipped to a global norm.

Rewards are multiplied by ``reward_scale`` before learning (log returns are ~1e-3; ×100 keeps TD
errors of order 1 where the Huber loss is quadratic). Q-values reported are in those scaled units.

Everything random (initial weights, ε-greedy draws, minibatches, episode starts) comes from one
``numpy.random.Generator`` seeded from ``DQNConfig.seed``: the same seed and the same data give
identical weights, bit for bit, in the same process and numpy build.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from tradingbot_agents.rl.env import MultiSeriesEnv, TradingEnv

Env = TradingEnv | MultiSeriesEnv


@dataclass(frozen=True)
class DQNConfig:
    hidden_units: int = 32
    hidden_layers: int = 2
    gamma: float = 0.9
    learning_rate: float = 1e-3
    batch_size: int = 64
    replay_capacity: int = 20_000
    learn_start: int = 500  # transitions collected (with ε = 1) before the first update
    train_every: int = 1  # environment steps per gradient update
    target_update: int = 500  # steps between hard copies into the target network
    epsilon_start: float = 1.0
    epsilon_end: float = 0.05
    epsilon_decay_fraction: float = 0.6
    huber_delta: float = 1.0
    grad_clip_norm: float = 10.0
    reward_scale: float = 100.0
    seed: int = 7


# --------------------------------------------------------------------------------------------
# The network


class MLP:
    """A plain multi-layer perceptron with ReLU hidden layers and a linear output."""

    def __init__(self, sizes: Sequence[int], rng: np.random.Generator) -> None:
        self.sizes = list(sizes)
        self.params: list[np.ndarray] = []
        for fan_in, fan_out in zip(self.sizes[:-1], self.sizes[1:], strict=True):
            self.params.append(rng.normal(0.0, np.sqrt(2.0 / fan_in), size=(fan_in, fan_out)))  # He init
            self.params.append(np.zeros(fan_out))

    @property
    def n_layers(self) -> int:
        return len(self.params) // 2

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """Output and the activations each layer received (kept for backprop)."""
        activations = [x]
        h = x
        for i in range(self.n_layers):
            z = h @ self.params[2 * i] + self.params[2 * i + 1]
            h = np.maximum(z, 0.0) if i < self.n_layers - 1 else z
            activations.append(h)
        return h, activations

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.forward(np.atleast_2d(x))[0]

    def backward(self, activations: list[np.ndarray], grad_out: np.ndarray) -> list[np.ndarray]:
        """Gradients of the loss w.r.t. every parameter, given dLoss/dOutput."""
        grads: list[np.ndarray] = [np.empty(0)] * len(self.params)
        g = grad_out
        for i in reversed(range(self.n_layers)):
            h_in = activations[i]
            grads[2 * i] = h_in.T @ g
            grads[2 * i + 1] = g.sum(axis=0)
            if i > 0:
                g = (g @ self.params[2 * i].T) * (activations[i] > 0)
        return grads

    def copy_from(self, other: MLP) -> None:
        self.params = [p.copy() for p in other.params]


class Adam:
    def __init__(self, params: list[np.ndarray], lr: float, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8) -> None:
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.t = 0

    def step(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        self.t += 1
        c1, c2 = 1 - self.beta1 ** self.t, 1 - self.beta2 ** self.t
        # In place: ``params`` are the network's own arrays, ``m``/``v`` the moment estimates.
        for p, g, m, v in zip(params, grads, self.m, self.v, strict=True):
            m[...] = self.beta1 * m + (1 - self.beta1) * g
            v[...] = self.beta2 * v + (1 - self.beta2) * g * g
            p[...] = p - self.lr * (m / c1) / (np.sqrt(v / c2) + self.eps)


def huber(td: np.ndarray, delta: float) -> tuple[np.ndarray, np.ndarray]:
    """Huber loss per element and its derivative w.r.t. the TD error."""
    abs_td = np.abs(td)
    quadratic = abs_td <= delta
    loss = np.where(quadratic, 0.5 * td * td, delta * (abs_td - 0.5 * delta))
    grad = np.where(quadratic, td, delta * np.sign(td))
    return loss, grad


# --------------------------------------------------------------------------------------------
# Replay


class ReplayBuffer:
    def __init__(self, capacity: int, obs_size: int) -> None:
        self.capacity = capacity
        self.obs = np.zeros((capacity, obs_size))
        self.next_obs = np.zeros((capacity, obs_size))
        self.actions = np.zeros(capacity, dtype=np.int64)
        self.rewards = np.zeros(capacity)
        self.dones = np.zeros(capacity)
        self.size = 0
        self._next = 0

    def add(self, obs: np.ndarray, action: int, reward: float, next_obs: np.ndarray, done: bool) -> None:
        i = self._next
        self.obs[i], self.actions[i], self.rewards[i], self.next_obs[i], self.dones[i] = (
            obs, action, reward, next_obs, float(done))
        self._next = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, rng: np.random.Generator, batch: int) -> tuple[np.ndarray, ...]:
        idx = rng.integers(0, self.size, size=batch)
        return self.obs[idx], self.actions[idx], self.rewards[idx], self.next_obs[idx], self.dones[idx]


# --------------------------------------------------------------------------------------------
# The learner


@dataclass
class TrainReport:
    episodes: int = 0
    steps: int = 0
    updates: int = 0
    seconds: float = 0.0
    mean_episode_reward_last10: float = 0.0
    mean_loss_last1000: float = 0.0
    stopped_early: bool = False
    episode_rewards: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, float]:
        data = asdict(self)
        data.pop("episode_rewards")
        return {k: float(v) for k, v in data.items()}


class DQN:
    """The Q-network, its target copy and the optimiser; ``act`` serves, ``train`` learns."""

    def __init__(self, obs_size: int, n_actions: int, config: DQNConfig | None = None) -> None:
        self.config = config or DQNConfig()
        self.obs_size, self.n_actions = obs_size, n_actions
        self.rng = np.random.default_rng(self.config.seed)
        sizes = [obs_size, *[self.config.hidden_units] * self.config.hidden_layers, n_actions]
        self.q = MLP(sizes, self.rng)
        self.target = MLP(sizes, self.rng)
        self.target.copy_from(self.q)
        self.optimizer = Adam(self.q.params, self.config.learning_rate)

    # -- serving ------------------------------------------------------------------------------
    def q_values(self, obs: np.ndarray) -> np.ndarray:
        return self.q.predict(obs)[0] if np.ndim(obs) == 1 else self.q.predict(obs)

    def act(self, obs: np.ndarray) -> int:
        """The greedy action (ties go to the lowest index, i.e. flat first)."""
        return int(np.argmax(self.q_values(obs)))

    # -- learning -----------------------------------------------------------------------------
    def _update(self, buffer: ReplayBuffer) -> float:
        cfg = self.config
        obs, actions, rewards, next_obs, dones = buffer.sample(self.rng, cfg.batch_size)
        next_q = self.target.predict(next_obs).max(axis=1)
        targets = rewards * cfg.reward_scale + cfg.gamma * (1.0 - dones) * next_q
        q_all, activations = self.q.forward(obs)
        rows = np.arange(len(actions))
        td = q_all[rows, actions] - targets
        loss, dloss = huber(td, cfg.huber_delta)
        grad_out = np.zeros_like(q_all)
        grad_out[rows, actions] = dloss / len(actions)
        grads = self.q.backward(activations, grad_out)
        norm = float(np.sqrt(sum(float(np.sum(g * g)) for g in grads)))
        if norm > cfg.grad_clip_norm:
            grads = [g * (cfg.grad_clip_norm / norm) for g in grads]
        self.optimizer.step(self.q.params, grads)
        return float(loss.mean())

    def train(self, env: Env, episodes: int, *, stop: threading.Event | None = None,
              progress: Callable[[int, float], None] | None = None) -> TrainReport:
        """Run ``episodes`` episodes of ε-greedy interaction with updates from replay.

        Episode starts are drawn from a generator seeded from this learner's, so the whole run is a
        function of (seed, data). ``stop`` lets a caller running this in a thread end it early."""
        cfg = self.config
        started = time.perf_counter()
        report = TrainReport()
        # Expected total steps, for the ε schedule: full episodes unless the data are shorter.
        total_steps = max(1, episodes * env.expected_episode_steps())
        decay_steps = max(1, int(total_steps * cfg.epsilon_decay_fraction))
        buffer = ReplayBuffer(min(cfg.replay_capacity, total_steps), env.observation_size)
        env_seed = int(self.rng.integers(0, 2**31 - 1))
        losses: list[float] = []
        for episode in range(episodes):
            if stop is not None and stop.is_set():
                report.stopped_early = True
                break
            obs, _ = env.reset(seed=env_seed if episode == 0 else None)
            total, done = 0.0, False
            while not done:
                frac = min(1.0, report.steps / decay_steps)
                epsilon = cfg.epsilon_start + frac * (cfg.epsilon_end - cfg.epsilon_start)
                if report.steps < cfg.learn_start or self.rng.random() < epsilon:
                    action = int(self.rng.integers(0, self.n_actions))
                else:
                    action = self.act(obs)
                next_obs, reward, terminated, truncated, _ = env.step(action)
                buffer.add(obs, action, reward, next_obs, terminated)
                obs, total, done = next_obs, total + reward, terminated or truncated
                report.steps += 1
                if report.steps >= cfg.learn_start and report.steps % cfg.train_every == 0 \
                        and buffer.size >= cfg.batch_size:
                    losses.append(self._update(buffer))
                    report.updates += 1
                if report.steps % cfg.target_update == 0:
                    self.target.copy_from(self.q)
            report.episodes += 1
            report.episode_rewards.append(total)
            if progress is not None:
                progress(episode, total)
        report.seconds = time.perf_counter() - started
        report.mean_episode_reward_last10 = float(np.mean(report.episode_rewards[-10:])) \
            if report.episode_rewards else 0.0
        report.mean_loss_last1000 = float(np.mean(losses[-1000:])) if losses else 0.0
        return report

    # -- persistence --------------------------------------------------------------------------
    def weights_bytes(self) -> bytes:
        """The Q-network's parameters as an ``np.savez`` archive (what the model store keeps)."""
        buffer = io.BytesIO()
        np.savez(buffer, **{f"p{i}": p for i, p in enumerate(self.q.params)})
        return buffer.getvalue()

    def load_weights(self, data: bytes) -> None:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            params = [archive[f"p{i}"] for i in range(len(archive.files))]
        shapes = [p.shape for p in self.q.params]
        if [p.shape for p in params] != shapes:
            raise ValueError(f"weights do not fit this network: {[p.shape for p in params]} vs {shapes}")
        self.q.params = [p.astype(np.float64) for p in params]
        self.target.copy_from(self.q)
        self.optimizer = Adam(self.q.params, self.config.learning_rate)


def softmax(values: np.ndarray) -> np.ndarray:
    shifted = np.asarray(values, dtype=np.float64) - np.max(values)
    exp = np.exp(shifted)
    return exp / exp.sum()  # type: ignore[no-any-return]
