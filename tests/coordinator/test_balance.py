"""Pair plans (pure)."""

from __future__ import annotations

from tradingbot_agents.coordinator.balance import balance, shares
from tradingbot_agents.coordinator.restarts import RestartPolicy
from tradingbot_agents.kinds import AgentKind
from tradingbot_agents.messages import AgentState, Health, HealthStatus, Load

PAIRS = ["ADAUSDT", "BNBUSDT", "BTCUSDT", "DOGEUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT"]
IDLE = Load()


def test_shares_follow_weights_and_respect_the_cap() -> None:
    assert shares(7, {"a": 1.0, "b": 1.0}, cap=10) in ({"a": 4, "b": 3}, {"a": 3, "b": 4})
    assert shares(9, {"a": 2.0, "b": 1.0}, cap=10) == {"a": 6, "b": 3}
    assert shares(9, {"a": 2.0, "b": 1.0}, cap=4) == {"a": 4, "b": 4}  # capacity 8 < 9 pairs
    assert shares(3, {}, cap=4) == {}


def test_every_pair_once_and_evenly_when_loads_are_equal() -> None:
    plan = balance(PAIRS, {"w1": IDLE, "w2": IDLE, "w3": IDLE}, {}, max_per_worker=10)
    placed = [p for pairs in plan.values() for p in pairs]
    assert sorted(placed) == PAIRS  # each pair exactly once
    assert sorted(len(p) for p in plan.values()) == [2, 2, 3]


def test_a_loaded_worker_gets_fewer_pairs() -> None:
    busy = Load(cpu_percent=90.0, loop_lag_ms=50.0)
    plan = balance(PAIRS, {"idle": IDLE, "busy": busy}, {}, max_per_worker=10)
    assert len(plan["idle"]) > len(plan["busy"])
    assert sorted(plan["idle"] + plan["busy"]) == PAIRS


def test_plan_is_sticky_and_a_dead_workers_pairs_move() -> None:
    first = balance(PAIRS, {"w1": IDLE, "w2": IDLE}, {}, max_per_worker=10)
    again = balance(PAIRS, {"w1": IDLE, "w2": IDLE}, first, max_per_worker=10)
    assert again == first  # nothing moves without a reason
    after_death = balance(PAIRS, {"w1": IDLE}, first, max_per_worker=10)
    assert after_death == {"w1": PAIRS}
    assert set(first["w1"]) <= set(after_death["w1"])  # w1 kept what it had


def test_capacity_limits_and_never_doubles_up() -> None:
    plan = balance(PAIRS, {"w1": IDLE, "w2": IDLE}, {}, max_per_worker=2)
    assert sum(len(p) for p in plan.values()) == 4
    placed = [p for pairs in plan.values() for p in pairs]
    assert len(placed) == len(set(placed))


def _state(agent_id: str, status: HealthStatus) -> AgentState:
    return AgentState(agent_id=agent_id, kind=AgentKind.RISK, instance="i", health=Health(status=status,
                      reason="boom"), load=IDLE, score=0, last_seen_s=0, uptime_s=0, pid=42)


def test_restart_requests_wait_then_back_off() -> None:
    policy = RestartPolicy(restart_after=10, backoff_max=100)
    failed = {"risk.a": _state("risk.a", HealthStatus.FAILED)}
    assert policy.decide(failed, now=0) == []
    assert policy.decide(failed, now=5) == []
    first = policy.decide(failed, now=10)
    assert [(r.agent_id, r.attempt, r.pid, r.reason) for r in first] == [("risk.a", 1, 42, "boom")]
    assert policy.decide(failed, now=25) == []  # backoff: next allowed at 10 + 20
    assert [r.attempt for r in policy.decide(failed, now=30)] == [2]
    assert [r.attempt for r in policy.decide(failed, now=30 + 40)] == [3]
    # Healthy again: forgotten; a new failure waits restart_after again.
    assert policy.decide({"risk.a": _state("risk.a", HealthStatus.OK)}, now=71) == []
    assert policy.decide(failed, now=72) == []
