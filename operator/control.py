"""The per-TradingBot health and load loop: restart agents that stay failed, scale agents whose
replica count the operator owns (``autoscaling.mode: operator``).

The decision is a pure function, :func:`decide`: (spec, observation, state, now) → (actions,
new state). It is unit-tested without a server; the loop (:mod:`tradingbot_operator.reconcile`
runs it as a kopf daemon) only observes, calls :func:`decide` and executes the actions.

Rules, and why:
- **Restart** an agent kind whose health stays ``failed`` for ``failed_for_s`` (one bad heartbeat
  is not a failure), by a rollout restart (the pod template's ``kubectl.kubernetes.io/restartedAt``
  annotation, exactly what ``kubectl rollout restart`` does). Restarts back off exponentially
  (``restart_backoff_s`` doubling up to ``restart_backoff_max_s``); after
  ``degraded_after_restarts`` consecutive restarts without recovery the bot is ``Degraded``.
  Recovery (health ok) resets the consecutive count.
- **Scale** (mode ``operator`` only): the recommendation is ``ceil(current × load / targetLoad)``
  clamped to ``[min, max]``, where load is the mean over the kind's instances of
  :func:`load_fraction`. Up as soon as the recommendation says so (``scale_up_window_s``), down
  only when every recommendation in ``scale_down_window_s`` was lower (the HPA's stabilisation
  rule), so replicas settle instead of flapping.
- **Missing load data holds** (field note 9: a missing metric once made KEDA scale to max): no
  coordinator answer, or no instance of the kind reporting, adds no recommendation and changes
  nothing. Bounds are still enforced (a count below ``min`` or above ``max`` is corrected).
- **mode hpa / off**: replicas are never written; the HPA or the spec owns them.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

from tradingbot_agents.kinds import AgentKind
from tradingbot_agents.messages import HealthStatus, Load, SystemStatus
from tradingbot_operator.settings import ControlSettings
from tradingbot_operator.spec import AgentHealth, AutoscalingMode, TradingBot

RESTARTED_AT_ANNOTATION = "kubectl.kubernetes.io/restartedAt"


@dataclasses.dataclass(frozen=True)
class KindObservation:
    """What one tick saw of one agent kind."""

    health: AgentHealth = AgentHealth.UNKNOWN
    loads: tuple[Load, ...] = ()  # one per reporting instance; empty = no load data
    replicas: int | None = None  # ``spec.replicas`` on the Deployment (None: absent)
    reason: str = ""  # the health reason the agents reported


@dataclasses.dataclass(frozen=True)
class KindState:
    failing_since: float | None = None
    consecutive_restarts: int = 0
    total_restarts: int = 0
    next_restart_at: float = 0.0
    last_restart_reason: str | None = None
    #: (time, recommended replicas) within the stabilisation window.
    recommendations: tuple[tuple[float, int], ...] = ()


@dataclasses.dataclass(frozen=True)
class ControlState:
    kinds: Mapping[AgentKind, KindState] = dataclasses.field(default_factory=dict)

    def of(self, kind: AgentKind) -> KindState:
        return self.kinds.get(kind, KindState())


@dataclasses.dataclass(frozen=True)
class Restart:
    kind: AgentKind
    reason: str


@dataclasses.dataclass(frozen=True)
class Scale:
    kind: AgentKind
    from_replicas: int | None
    to_replicas: int
    reason: str


Action = Restart | Scale


def load_fraction(load: Load, settings: ControlSettings) -> float:
    """One instance's load as a fraction of its capacity: the most saturated of CPU, event-loop
    lag and queue depth (each against its budget). ``msgs_per_s`` is a rate, not a saturation,
    so it informs people (status) but not this number."""
    return max(
        load.cpu_percent / 100.0,
        load.loop_lag_ms / settings.loop_lag_budget_ms,
        load.queue_depth / settings.queue_depth_budget,
    )


def mean_load(loads: Sequence[Load], settings: ControlSettings) -> float | None:
    if not loads:
        return None
    return sum(load_fraction(load, settings) for load in loads) / len(loads)


_HEALTH = {HealthStatus.OK: AgentHealth.HEALTHY, HealthStatus.DEGRADED: AgentHealth.DEGRADED,
           HealthStatus.FAILED: AgentHealth.FAILED}


def observe_status(status: SystemStatus | None) -> dict[AgentKind, KindObservation]:
    """Per kind: the worst health over its instances and every instance's load."""
    if status is None:
        return {}
    out: dict[AgentKind, KindObservation] = {}
    for state in status.agents.values():
        before = out.get(state.kind, KindObservation())
        health = _HEALTH[state.health.status]
        worse = _rank(health) > _rank(before.health) or before.health is AgentHealth.UNKNOWN
        out[state.kind] = KindObservation(
            health=health if worse else before.health,
            loads=(*before.loads, state.load),
            reason=state.health.reason if worse else before.reason,
        )
    return out


def _rank(health: AgentHealth) -> int:
    return {AgentHealth.UNKNOWN: -1, AgentHealth.HEALTHY: 0, AgentHealth.DEGRADED: 1, AgentHealth.FAILED: 2}[health]


def _restart_step(
    kind: AgentKind, obs: KindObservation, st: KindState, now: float, settings: ControlSettings
) -> tuple[list[Action], KindState]:
    if obs.health is AgentHealth.HEALTHY:
        return [], dataclasses.replace(st, failing_since=None, consecutive_restarts=0, next_restart_at=0.0)
    if obs.health is not AgentHealth.FAILED:
        return [], st  # unknown or degraded: hold
    since = st.failing_since if st.failing_since is not None else now
    st = dataclasses.replace(st, failing_since=since)
    if now - since < settings.failed_for_s or now < st.next_restart_at:
        return [], st
    reason = f"failed for {now - since:.0f}s" + (f": {obs.reason}" if obs.reason else "")
    backoff = min(settings.restart_backoff_s * 2 ** st.consecutive_restarts, settings.restart_backoff_max_s)
    st = dataclasses.replace(
        st,
        consecutive_restarts=st.consecutive_restarts + 1,
        total_restarts=st.total_restarts + 1,
        next_restart_at=now + backoff,
        last_restart_reason=reason,
    )
    return [Restart(kind, reason)], st


def _scale_step(
    kind: AgentKind, bot: TradingBot, obs: KindObservation, st: KindState, now: float, settings: ControlSettings
) -> tuple[list[Action], KindState]:
    auto = bot.spec.agents.for_kind(kind).autoscaling
    current = obs.replicas
    horizon = max(settings.scale_down_window_s, settings.scale_up_window_s)
    history = tuple((t, r) for t, r in st.recommendations if now - t <= horizon)
    load = mean_load(obs.loads, settings)
    if load is not None:
        base = current if current is not None else auto.min
        wanted = math.ceil(round(max(base, 1) * load / auto.target_load, 6))
        wanted = min(max(wanted, auto.min), auto.max)
        history = (*history, (now, wanted))
    st = dataclasses.replace(st, recommendations=history)
    if current is None or current < auto.min or current > auto.max:
        target = auto.min if current is None or current < auto.min else auto.max
        return [Scale(kind, current, target, f"outside bounds [{auto.min}, {auto.max}]")], st
    if load is None:
        return [], st  # hold: no data is not a reason to move
    up = [r for t, r in history if now - t <= settings.scale_up_window_s] or [history[-1][1]]
    down = [r for t, r in history if now - t <= settings.scale_down_window_s]
    if min(up) > current:
        target = min(up)
    elif max(down) < current:
        target = max(down)
    else:
        return [], st
    return [Scale(kind, current, target, f"mean load {load:.2f} vs target {auto.target_load:.2f}")], st


def decide(
    bot: TradingBot,
    observed: Mapping[AgentKind, KindObservation],
    state: ControlState,
    now: float,
    settings: ControlSettings,
) -> tuple[list[Action], ControlState]:
    """The whole control decision for one tick (see the module docstring for the rules)."""
    actions: list[Action] = []
    kinds: dict[AgentKind, KindState] = {}
    for kind in AgentKind:
        agent = bot.spec.agents.for_kind(kind)
        if not agent.enabled:
            continue
        obs = observed.get(kind, KindObservation())
        st = state.of(kind)
        restart, st = _restart_step(kind, obs, st, now, settings)
        actions += restart
        if agent.autoscaling.mode is AutoscalingMode.OPERATOR:
            scale, st = _scale_step(kind, bot, obs, st, now, settings)
            actions += scale
        kinds[kind] = st
    return actions, ControlState(kinds=kinds)


def failing_kinds(state: ControlState, settings: ControlSettings) -> list[AgentKind]:
    """Kinds restarted ``degraded_after_restarts`` times in a row without recovering."""
    return [k for k, st in state.kinds.items() if st.consecutive_restarts >= settings.degraded_after_restarts]
