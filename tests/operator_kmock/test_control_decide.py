"""The control loop's decision, pure: no server, no clock (``now`` is passed in)."""

from __future__ import annotations

from typing import Any

from tests.operator_kmock.harness import example_bot
from tradingbot_agents.kinds import AgentKind
from tradingbot_agents.messages import AgentState, Health, HealthStatus, Load, SystemStats, SystemStatus
from tradingbot_operator.control import (
    ControlState,
    KindObservation,
    Restart,
    Scale,
    decide,
    failing_kinds,
    load_fraction,
    observe_status,
)
from tradingbot_operator.settings import ControlSettings
from tradingbot_operator.spec import AgentHealth, TradingBot

S = ControlSettings(failed_for_s=30, restart_backoff_s=10, restart_backoff_max_s=40, degraded_after_restarts=3,
                    scale_up_window_s=0, scale_down_window_s=300)
W = AgentKind.TRADING_WORKER
DATA = AgentKind.DATA  # hpa in the example


def bot(edit: Any = None) -> TradingBot:
    return TradingBot.model_validate(example_bot("ns", "b", edit))


def busy(cpu: float, n: int = 2) -> tuple[Load, ...]:
    return tuple(Load(cpu_percent=cpu) for _ in range(n))


def run(b: TradingBot, steps: list[tuple[float, dict[AgentKind, KindObservation]]], state: ControlState | None = None):
    state = state or ControlState()
    out = []
    for now, observed in steps:
        actions, state = decide(b, observed, state, now, S)
        out.append(actions)
    return out, state


def test_load_fraction_is_the_most_saturated_signal() -> None:
    assert load_fraction(Load(cpu_percent=20, loop_lag_ms=50, queue_depth=10), S) == 0.5
    assert load_fraction(Load(queue_depth=300), S) == 3.0
    assert load_fraction(Load(msgs_per_s=10_000), S) == 0.0  # a rate is not a saturation


def test_failed_agent_is_restarted_only_after_it_stays_failed_then_backs_off() -> None:
    failed = {W: KindObservation(health=AgentHealth.FAILED, replicas=2, reason="no heartbeat")}
    actions, state = run(bot(), [(0, failed), (29, failed), (30, failed), (35, failed), (40, failed),
                                 (55, failed), (60, failed)])
    restarts = [[a for a in step if isinstance(a, Restart)] for step in actions]
    assert [len(r) for r in restarts] == [0, 0, 1, 0, 1, 0, 1]  # at 30, then +10, then +20
    assert "no heartbeat" in restarts[2][0].reason
    assert state.of(W).total_restarts == 3
    assert failing_kinds(state, S) == [W]


def test_recovery_resets_the_consecutive_count_but_keeps_the_total() -> None:
    failed = {W: KindObservation(health=AgentHealth.FAILED, replicas=2)}
    ok = {W: KindObservation(health=AgentHealth.HEALTHY, replicas=2)}
    _, state = run(bot(), [(0, failed), (30, failed), (31, ok)])
    assert state.of(W).consecutive_restarts == 0 and state.of(W).total_restarts == 1
    assert failing_kinds(state, S) == []


def test_unknown_health_never_restarts() -> None:
    actions, _ = run(bot(), [(t, {}) for t in range(0, 200, 10)])
    assert not any(isinstance(a, Restart) for step in actions for a in step)


def test_scale_up_at_once_and_capped_at_max() -> None:
    b = bot()  # tradingWorker: operator mode, min 2, max 6, targetLoad 0.7
    actions, _ = decide(b, {W: KindObservation(loads=busy(100), replicas=2)}, ControlState(), 0, S)
    assert actions == [Scale(W, 2, 3, actions[0].reason)]  # ceil(2 × 1.0 / 0.7) = 3
    actions, _ = decide(b, {W: KindObservation(loads=busy(100), replicas=5)}, ControlState(), 0, S)
    assert [a.to_replicas for a in actions] == [6]  # ceil(5/0.7) = 8, capped


def test_scale_down_waits_for_the_whole_window_then_settles_at_min() -> None:
    b = bot()
    state = ControlState()
    replicas = 6
    history = []
    for now in range(0, 700, 15):
        load = busy(100) if now < 60 else busy(5)
        actions, state = decide(b, {W: KindObservation(loads=load, replicas=replicas)}, state, now, S)
        for a in actions:
            assert isinstance(a, Scale)
            replicas = a.to_replicas
        history.append((now, replicas))
    assert all(2 <= r <= 6 for _, r in history)
    assert dict(history)[345] == 6  # the last high recommendation (45 s) is still within 300 s
    assert dict(history)[360] == 2  # … and once it ages out, down to min in one step
    assert history[-1][1] == 2


def test_missing_load_data_holds_but_bounds_still_apply() -> None:
    b = bot()
    actions, _ = decide(b, {W: KindObservation(loads=(), replicas=4)}, ControlState(), 0, S)
    assert actions == []  # no data: hold, never "scale to max"
    actions, _ = decide(b, {W: KindObservation(loads=(), replicas=None)}, ControlState(), 0, S)
    assert [a.to_replicas for a in actions] == [2]  # no replicas yet: the owner sets min
    actions, _ = decide(b, {W: KindObservation(loads=(), replicas=9)}, ControlState(), 0, S)
    assert [a.to_replicas for a in actions] == [6]


def test_hpa_and_off_modes_are_never_scaled() -> None:
    b = bot()
    observed = {DATA: KindObservation(loads=busy(100), replicas=1),
                AgentKind.RL: KindObservation(loads=busy(100), replicas=1)}
    actions, _ = decide(b, observed, ControlState(), 0, S)
    scaled = {a.kind for a in actions if isinstance(a, Scale)}
    assert scaled == {W}  # only the operator-mode worker (its replicas are unknown: set to min)


def test_disabled_agents_are_not_controlled() -> None:
    def disable(spec: dict[str, Any]) -> None:
        spec["agents"]["tradingWorker"]["enabled"] = False

    actions, state = decide(bot(disable), {W: KindObservation(health=AgentHealth.FAILED, loads=busy(100))},
                            ControlState(), 1000, S)
    assert actions == [] and W not in state.kinds


def test_observe_status_takes_the_worst_health_and_every_load() -> None:
    def agent(i: int, status: HealthStatus, cpu: float) -> AgentState:
        return AgentState(agent_id=f"w{i}", kind=W, instance=f"w{i}", health=Health(status=status, reason=f"r{i}"),
                          load=Load(cpu_percent=cpu), score=50, last_seen_s=1, uptime_s=10)

    status = SystemStatus(bot="b", system_stats=SystemStats(system_health=50),
                          agents={"w0": agent(0, HealthStatus.OK, 10), "w1": agent(1, HealthStatus.FAILED, 90)})
    obs = observe_status(status)[W]
    assert obs.health is AgentHealth.FAILED and obs.reason == "r1"
    assert sorted(load.cpu_percent for load in obs.loads) == [10, 90]
    assert observe_status(None) == {}
