"""Which class runs which agent kind. Imported lazily so that running one agent loads only its own
code (the risk agent never imports the RL agent's numpy model)."""

from __future__ import annotations

import importlib

from tradingbot_agents.kinds import AgentKind

_CLASSES: dict[AgentKind, str] = {
    AgentKind.COORDINATOR: "tradingbot_agents.coordinator.agent:CoordinatorAgent",
    AgentKind.DATA: "tradingbot_agents.data.agent:DataAgent",
}


class NotImplementedKind(LookupError):
    pass


def implemented() -> list[AgentKind]:
    return [kind for kind in AgentKind if kind in _CLASSES]


def agent_class(kind: AgentKind) -> type:
    target = _CLASSES.get(kind)
    if target is None:
        done = ", ".join(k.cli for k in implemented())
        raise NotImplementedKind(f"agent kind {kind.cli!r} is not implemented yet (implemented: {done})")
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)  # type: ignore[no-any-return]
