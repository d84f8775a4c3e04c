"""Every spelling of every agent kind, in one table.

The CRD key, the config section, the Deployment suffix, the log file and the CLI name of an agent
differ by convention (camelCase in Kubernetes, snake_case in the seed's config.yaml, kebab-case on
the command line). Keeping them in one enum means no module invents its own spelling and a rename
is one edit.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


@dataclass(frozen=True)
class _Names:
    crd_key: str
    config_section: str
    deployment_suffix: str
    log_file: str
    cli: str


class AgentKind(enum.StrEnum):
    COORDINATOR = "coordinator"
    DATA = "data"
    SENTIMENT = "sentiment"
    RISK = "risk"
    PAIR_SELECTOR = "pair-selector"
    TRADING_WORKER = "trading-worker"
    RL = "rl"

    @property
    def names(self) -> _Names:
        return _NAMES[self]

    @property
    def crd_key(self) -> str:
        return _NAMES[self].crd_key

    @property
    def config_section(self) -> str:
        return _NAMES[self].config_section

    @property
    def deployment_suffix(self) -> str:
        return _NAMES[self].deployment_suffix

    @property
    def log_file(self) -> str:
        return _NAMES[self].log_file

    @property
    def cli(self) -> str:
        return _NAMES[self].cli

    @classmethod
    def from_cli(cls, name: str) -> AgentKind:
        """Parse a CLI name; the error lists the valid names so a typo is fixed in one go."""
        for kind in cls:
            if kind.cli == name:
                return kind
        valid = ", ".join(k.cli for k in cls)
        raise ValueError(f"unknown agent kind {name!r}; expected one of: {valid}")


_NAMES: dict[AgentKind, _Names] = {
    AgentKind.COORDINATOR: _Names("coordinator", "coordinator", "coordinator",
                                  "coordinator_agent.log", "coordinator"),
    AgentKind.DATA: _Names("data", "data_agent", "data", "data_agent.log", "data"),
    AgentKind.SENTIMENT: _Names("sentiment", "sentiment_agent", "sentiment",
                                "sentiment_agent.log", "sentiment"),
    AgentKind.RISK: _Names("risk", "risk_agent", "risk", "risk_agent.log", "risk"),
    AgentKind.PAIR_SELECTOR: _Names("pairSelector", "pair_selector", "pair-selector",
                                    "pair_selector_agent.log", "pair-selector"),
    AgentKind.TRADING_WORKER: _Names("tradingWorker", "trading_worker", "trading-worker",
                                     "trading_worker_agent.log", "trading-worker"),
    AgentKind.RL: _Names("rl", "rl_agent", "rl", "rl_agent.log", "rl"),
}
