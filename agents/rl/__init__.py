"""The RL agent's package: a numpy DQN (``dqn``), a trading environment over klines (``env``),
out-of-sample evaluation (``evaluate``), the policy as served (``policy``) and versioned models in
Redis (``store``). ``agent`` (the I/O) is not imported here, so the pure parts load without it."""

from tradingbot_agents.rl.dqn import DQN, DQNConfig, TrainReport
from tradingbot_agents.rl.env import ACTION_NAMES, EnvConfig, MultiSeriesEnv, TradingEnv
from tradingbot_agents.rl.evaluate import Performance, buy_and_hold, run_policy
from tradingbot_agents.rl.policy import Advice, Policy
from tradingbot_agents.rl.store import ModelMeta, ModelStore, StoredModel

__all__ = [
    "ACTION_NAMES", "DQN", "Advice", "DQNConfig", "EnvConfig", "ModelMeta", "ModelStore", "MultiSeriesEnv",
    "Performance", "Policy", "StoredModel", "TradingEnv", "TrainReport", "buy_and_hold", "run_policy",
]
