"""Status is a pure function of what was observed: Ready means every enabled agent is ready."""

from __future__ import annotations

from tests.operator_kmock.harness import example_bot
from tradingbot_agents.kinds import AgentKind
from tradingbot_operator.settings import OperatorConfig, kopf_settings
from tradingbot_operator.spec import TradingBot
from tradingbot_operator.status import AgentObservation, Problem, build_status


def conds(status: dict) -> dict[str, dict]:
    return {c["type"]: c for c in status["conditions"]}


def bot(**spec: object) -> TradingBot:
    raw = example_bot("ns", "b")
    raw["metadata"]["generation"] = 4
    raw["spec"].update(spec)
    return TradingBot.model_validate(raw)


def all_ready(ready: int = 1) -> dict[AgentKind, AgentObservation]:
    return {k: AgentObservation(desired=1, ready=ready) for k in AgentKind}


def test_ready_needs_every_enabled_agent() -> None:
    status = build_status(bot(), agents=all_ready(), now="t0")
    assert conds(status)["Ready"]["status"] == "True" and status["phase"] == "Running"
    assert status["observedGeneration"] == 4 and status["ready"] == "7/7"
    agents = {**all_ready(), AgentKind.RISK: AgentObservation(desired=2, ready=1)}
    status = build_status(bot(), agents=agents, now="t1")
    assert conds(status)["Ready"]["status"] == "False"
    assert conds(status)["Ready"]["message"] == "risk 1/2 ready"
    assert status["phase"] == "Pending" and conds(status)["Progressing"]["status"] == "True"


def test_transition_time_moves_only_when_the_status_changes() -> None:
    first = build_status(bot(), agents=all_ready(), now="t0")
    again = build_status(bot(), agents=all_ready(), previous=first, now="t1")
    assert conds(again)["Ready"]["lastTransitionTime"] == "t0"
    flipped = build_status(bot(), agents=all_ready(0), previous=again, now="t2")
    assert conds(flipped)["Ready"]["lastTransitionTime"] == "t2"


def test_paused_and_problems() -> None:
    paused = build_status(bot(paused=True), agents=all_ready(), now="t")
    assert paused["phase"] == "Paused" and conds(paused)["Progressing"]["reason"] == "ReconciliationPaused"
    problem = build_status(bot(), agents={}, problem=Problem("UnsafeSpec", "fix it"), now="t")
    assert problem["phase"] == "Degraded"
    assert conds(problem)["Degraded"] == {**conds(problem)["Degraded"], "status": "True", "reason": "UnsafeSpec",
                                          "message": "fix it"}
    failing = build_status(bot(), agents=all_ready(), failing=Problem("AgentRestartsExhausted", "x"), now="t")
    assert failing["phase"] == "Degraded" and conds(failing)["Ready"]["status"] == "True"


def test_kopf_settings_keep_watches_alive_and_peers_distinct() -> None:
    settings = kopf_settings(OperatorConfig(priority=123))
    assert settings.watching.server_timeout and settings.watching.client_timeout
    assert settings.watching.client_timeout > settings.watching.server_timeout
    assert settings.watching.connect_timeout and settings.networking.request_timeout
    assert settings.peering.priority == 123 and settings.peering.mandatory
    assert OperatorConfig.from_env({"POD_NAME": "op-abc"}).priority != OperatorConfig.from_env(
        {"POD_NAME": "op-xyz"}).priority


def test_standalone_mode_does_not_wait_for_peering() -> None:
    """kopf makes peering mandatory whenever it is given a peering name; a standalone operator
    must not pass one, or every watch stays paused ("peering CRD is missing")."""
    import dataclasses

    from tradingbot_operator.reconcile import peering_kwargs
    from tradingbot_operator.settings import OperatorConfig, kopf_settings

    standalone = dataclasses.replace(OperatorConfig(), standalone=True)
    kwargs = peering_kwargs(standalone)
    assert kwargs["peering_name"] is None and kwargs["standalone"] is True
    assert kopf_settings(standalone).peering.mandatory is False
    peered = peering_kwargs(OperatorConfig(priority=7))
    assert peered["peering_name"] == "tradingbot-operator" and peered["priority"] == 7
