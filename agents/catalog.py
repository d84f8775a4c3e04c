"""Which class runs which agent kind. Imported lazily so that running one agent loads only its own
code (the risk agent never imports the RL agent's numpy model)."""

from __future__ import annotations

import importlib
import importlib.util

from tradingbot_agents.kinds import AgentKind

_CLASSES: dict[AgentKind, str] = {
    AgentKind.COORDINATOR: "tradingbot_agents.coordinator.agent:CoordinatorAgent",
    AgentKind.DATA: "tradingbot_agents.data.agent:DataAgent",
    AgentKind.SENTIMENT: "tradingbot_agents.sentiment.agent:SentimentAgent",
    AgentKind.RISK: "tradingbot_agents.risk.agent:RiskAgent",
    AgentKind.PAIR_SELECTOR: "tradingbot_agents.pairselector.agent:PairSelectorAgent",
    AgentKind.TRADING_WORKER: "tradingbot_agents.worker.agent:TradingWorkerAgent",
    AgentKind.RL: "tradingbot_agents.rl.agent:RLAgent",
}


class NotImplementedKind(LookupError):
    pass


def _exists(target: str) -> bool:
    module = target.partition(":")[0]
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def implemented() -> list[AgentKind]:
    return [kind for kind in AgentKind if _exists(_CLASSES[kind])]


def agent_class(kind: AgentKind) -> type:
    target = _CLASSES[kind]
    if not _exists(target):
        done = ", ".join(k.cli for k in implemented())
        raise NotImplementedKind(f"agent kind {kind.cli!r} is not implemented yet (implemented: {done})")
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)  # type: ignore[no-any-return]
