"""tradingbot agents: one asyncio process per agent kind, wired over NATS with a Redis cache.

The public surface is small on purpose: the names table (:class:`AgentKind`), the configuration
(:func:`load_config`), and the runtime every agent stands on (:mod:`tradingbot_agents.runtime`).
"""

from tradingbot_agents.config import Config, ConfigError, load_config
from tradingbot_agents.kinds import AgentKind

__all__ = ["AgentKind", "Config", "ConfigError", "load_config"]
