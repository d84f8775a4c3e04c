"""The TradingBot's status, computed as a pure function of what the operator observed.

Why pure and in one place: the reconcile (after an apply) and the control loop (every tick) both
write status; computing it in one function from the same inputs means they never disagree on
what Ready means. Ready is True only when every enabled agent has as many ready replicas as its
replica owner wants (field note 7: "Ready" while pods are Pending is the classic lie).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from tradingbot_agents.kinds import AgentKind
from tradingbot_operator.spec import AgentHealth, AgentSpec, AutoscalingMode, TradingBot

#: Degraded reasons that come from the spec itself: only a spec change clears them.
SPEC_REASONS = frozenset({"InvalidSpec", "UnsafeSpec", "MissingSecret", "ApplyFailed"})
PAUSED_REASON = "ReconciliationPaused"

_HEALTH_RANK = {AgentHealth.HEALTHY: 0, AgentHealth.UNKNOWN: 1, AgentHealth.DEGRADED: 2, AgentHealth.FAILED: 3}


@dataclasses.dataclass(frozen=True)
class AgentObservation:
    desired: int
    ready: int
    health: AgentHealth = AgentHealth.UNKNOWN
    load: float | None = None
    restarts: int = 0
    last_restart_reason: str | None = None


@dataclasses.dataclass(frozen=True)
class Problem:
    """Why the bot is Degraded: a CamelCase reason and a message a user can act on."""

    reason: str
    message: str


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def desired_replicas(agent: AgentSpec, deployment: Mapping[str, Any] | None) -> int:
    """What the replica owner wants: the spec (mode off), else what the owner last wrote on the
    Deployment (the HPA or the control loop), at least ``autoscaling.min``."""
    if agent.autoscaling.mode is AutoscalingMode.OFF:
        return 1 if agent.replicas is None else agent.replicas
    written = ((deployment or {}).get("spec") or {}).get("replicas")
    return int(written) if written is not None else agent.autoscaling.min


def ready_replicas(deployment: Mapping[str, Any] | None) -> int:
    return int(((deployment or {}).get("status") or {}).get("readyReplicas") or 0)


def _condition(
    type_: str, status: bool | None, reason: str, message: str, *, generation: int | None,
    previous: Mapping[str, Mapping[str, Any]], now: str,
) -> dict[str, Any]:
    value = "Unknown" if status is None else ("True" if status else "False")
    before = previous.get(type_) or {}
    since = before.get("lastTransitionTime") if before.get("status") == value else None
    out: dict[str, Any] = {
        "type": type_, "status": value, "reason": reason, "message": message,
        "lastTransitionTime": since or now,
    }
    if generation is not None:
        out["observedGeneration"] = generation
    return out


def build_status(
    bot: TradingBot,
    *,
    agents: Mapping[AgentKind, AgentObservation],
    problem: Problem | None = None,
    failing: Problem | None = None,
    previous: Mapping[str, Any] | None = None,
    worker_selector: str | None = None,
    now: str | None = None,
) -> dict[str, Any]:
    """The whole ``status`` stanza (camelCase, as the CRD declares it).

    ``problem``: the spec cannot be deployed (nothing was applied). ``failing``: the control loop
    gave up restarting an agent. Paused bots say so in ``Progressing`` and in the phase."""
    now = now or now_rfc3339()
    generation = bot.metadata.generation
    prev_conditions = {c.get("type"): c for c in ((previous or {}).get("conditions") or [])}
    paused = bot.spec.paused
    enabled = [k for k in AgentKind if bot.spec.agents.for_kind(k).enabled]
    not_ready = [k for k in enabled if k in agents and agents[k].ready < agents[k].desired]
    unknown = [k for k in enabled if k not in agents]
    ready_kinds = [k for k in enabled if k in agents and agents[k].ready >= agents[k].desired]

    def cond(type_: str, status: bool | None, reason: str, message: str) -> dict[str, Any]:
        return _condition(type_, status, reason, message, generation=generation, previous=prev_conditions, now=now)

    if problem is not None:
        conditions = [
            cond("Ready", False, problem.reason, "nothing is deployed until the spec is fixed"),
            cond("Progressing", False, problem.reason, problem.message),
            cond("Degraded", True, problem.reason, problem.message),
        ]
        phase = "Degraded"
    else:
        if not_ready or unknown:
            parts = [f"{k.deployment_suffix} {agents[k].ready}/{agents[k].desired} ready" for k in not_ready]
            parts += [f"{k.deployment_suffix} not observed yet" for k in unknown]
            ready = cond("Ready", False, "AgentsNotReady", "; ".join(parts))
        else:
            ready = cond("Ready", True, "AllAgentsReady", f"{len(enabled)} agent kinds ready")
        if paused:
            progressing = cond(
                "Progressing", False, PAUSED_REASON,
                "spec.paused is true: the operator changes nothing until it is set to false",
            )
        elif not_ready or unknown:
            progressing = cond("Progressing", True, "RollingOut", "waiting for agents to become ready")
        else:
            progressing = cond("Progressing", False, "ReconcileComplete", "every child matches the spec")
        if failing is not None:
            degraded = cond("Degraded", True, failing.reason, failing.message)
        else:
            degraded = cond("Degraded", False, "AsExpected", "")
        conditions = [ready, progressing, degraded]
        phase = (
            "Paused" if paused else "Degraded" if failing is not None
            else "Running" if ready["status"] == "True" else "Pending"
        )

    healths = [agents[k].health for k in enabled if k in agents]
    worst = max(healths, key=lambda h: _HEALTH_RANK[h]) if healths else AgentHealth.UNKNOWN
    worker = agents.get(AgentKind.TRADING_WORKER)
    status: dict[str, Any] = {
        "observedGeneration": generation,
        "phase": phase,
        "conditions": conditions,
        "ready": f"{len(ready_kinds)}/{len(enabled)}",
        "health": worst.value,
        "agents": {
            k.crd_key: {
                "desiredReplicas": obs.desired,
                "readyReplicas": obs.ready,
                "health": obs.health.value,
                "load": obs.load,
                "restarts": obs.restarts,
                "lastRestartReason": obs.last_restart_reason,
            }
            for k, obs in agents.items()
        },
    }
    if worker is not None:
        status["tradingWorkerReplicas"] = worker.ready
    if worker_selector is not None:
        status["tradingWorkerSelector"] = worker_selector
    return status


def condition(status: Mapping[str, Any] | None, type_: str) -> Mapping[str, Any] | None:
    for c in (status or {}).get("conditions") or []:
        if c.get("type") == type_:
            return c
    return None
