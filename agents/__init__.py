"""tradingbot agents: one asyncio process per agent kind, wired over NATS with a Redis cache.

The public surface is small on purpose: the names table (:class:`AgentKind`), the configuration
(:func:`load_config`), and the runtime every agent stands on (:mod:`tradingbot_agents.runtime`).
Attributes are imported on first use, so ``python -m tradingbot_agents`` can install its signal
handler before pydantic and friends are loaded.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "AgentKind": "tradingbot_agents.kinds",
    "Config": "tradingbot_agents.config",
    "ConfigError": "tradingbot_agents.config",
    "load_config": "tradingbot_agents.config",
}

__all__ = ["AgentKind", "Config", "ConfigError", "load_config"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'tradingbot_agents' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
