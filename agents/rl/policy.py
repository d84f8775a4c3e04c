"""The trained policy as the agent uses it: train from price series, rebuild from a stored model,
turn the latest closes into advice. Pure (numpy only); the agent wraps it with I/O."""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass

import numpy as np

from tradingbot_agents.config import RLAgentSettings
from tradingbot_agents.rl.dqn import DQN, DQNConfig, TrainReport, softmax
from tradingbot_agents.rl.env import (
    ACTION_NAMES,
    N_ACTIONS,
    POSITIONS,
    EnvConfig,
    MultiSeriesEnv,
    observation_from_closes,
)
from tradingbot_agents.rl.store import ModelMeta, StoredModel


@dataclass(frozen=True)
class Advice:
    action: str  # hold (be flat) | buy (be long) | sell (be short)
    position: float
    confidence: float
    q_values: list[float]


def env_config(settings: RLAgentSettings) -> EnvConfig:
    return EnvConfig(window=settings.window, fee=settings.fee_bps / 10_000, episode_length=settings.episode_bars)


def dqn_config(settings: RLAgentSettings, *, seed: int | None = None) -> DQNConfig:
    # A small budget (the demo trains in seconds) needs learning to start early.
    steps = settings.train_episodes * settings.episode_bars
    return DQNConfig(hidden_units=settings.hidden_units, seed=settings.seed if seed is None else seed,
                     learn_start=min(500, max(64, steps // 10)))


class Policy:
    """A DQN and the environment settings it was trained under."""

    def __init__(self, dqn: DQN, env: EnvConfig, meta: ModelMeta) -> None:
        self.dqn, self.env, self.meta = dqn, env, meta

    @property
    def version(self) -> str:
        return self.meta.version

    @classmethod
    def train(cls, series: dict[str, np.ndarray], settings: RLAgentSettings, *, seed: int | None = None,
              stop: threading.Event | None = None) -> tuple[Policy, TrainReport]:
        """Train a new policy on ``series`` (symbol → closes, oldest first)."""
        env_cfg = env_config(settings)
        usable = {s: c for s, c in sorted(series.items()) if len(c) > env_cfg.window + 2}
        if not usable:
            raise ValueError(f"no series longer than the window ({env_cfg.window} bars) to train on")
        env = MultiSeriesEnv(list(usable.values()), env_cfg)
        cfg = dqn_config(settings, seed=seed)
        dqn = DQN(env.observation_size, N_ACTIONS, cfg)
        report = dqn.train(env, settings.train_episodes, stop=stop)
        meta = ModelMeta(window=env_cfg.window, hidden_units=cfg.hidden_units, hidden_layers=cfg.hidden_layers,
                         n_actions=N_ACTIONS, fee=env_cfg.fee, seed=cfg.seed, symbols=list(usable),
                         bars=sum(len(c) for c in usable.values()), train=report.summary(),
                         hyper_parameters=asdict(cfg))
        return cls(dqn, env_cfg, meta), report

    @classmethod
    def from_stored(cls, stored: StoredModel, settings: RLAgentSettings) -> Policy:
        meta = stored.meta
        cfg = DQNConfig(**{**meta.hyper_parameters, "hidden_units": meta.hidden_units,
                           "hidden_layers": meta.hidden_layers})
        dqn = DQN(meta.window + 1, meta.n_actions, cfg)
        dqn.load_weights(stored.weights)
        return cls(dqn, EnvConfig(window=meta.window, fee=meta.fee, episode_length=settings.episode_bars), meta)

    def compatible_with(self, settings: RLAgentSettings) -> bool:
        """A stored model is reused only if it was built for the configured network and inputs."""
        return (self.meta.algorithm == settings.algorithm and self.meta.window == settings.window
                and self.meta.hidden_units == settings.hidden_units
                and self.meta.obs_layout == ModelMeta.model_fields["obs_layout"].default)

    def advise(self, closes: np.ndarray, position: float = 0.0) -> Advice:
        """Advice at the last close: the greedy action, and a confidence from the softmax of the
        Q-values rescaled so that 0 = indifferent (every action 1/3) and 1 = one action certain:
        ``(p_best − 1/3) / (1 − 1/3)``. Consumers weigh the advice by it (a worker's vote is
        ±confidence), so indifference must read as 0, not as 1/3."""
        q = self.dqn.q_values(observation_from_closes(closes, self.env.window, position))
        action = int(np.argmax(q))
        return Advice(action=ACTION_NAMES[action], position=POSITIONS[action],
                      confidence=confidence(q), q_values=[float(v) for v in q])


def confidence(q_values: np.ndarray) -> float:
    p_best = float(np.max(softmax(q_values)))
    uniform = 1.0 / len(q_values)
    return min(1.0, max(0.0, (p_best - uniform) / (1.0 - uniform)))
