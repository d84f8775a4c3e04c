"""When to ask for an agent's restart (pure: no I/O).

An agent that stays failed for ``restart_after`` seconds is worth a restart; one that keeps failing
after restarts gets them less and less often (exponential backoff up to ``backoff_max``), so a
crash loop does not become a restart storm. Whoever runs the process acts on the request: the local
supervisor in ``make demo``; in Kubernetes the operator's control loop reads the same status.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tradingbot_agents.messages import AgentState, HealthStatus, RestartRequest


@dataclass
class _Track:
    failed_since: float
    attempts: int = 0
    next_allowed: float = 0.0


@dataclass
class RestartPolicy:
    restart_after: float
    backoff_max: float
    _tracks: dict[str, _Track] = field(default_factory=dict)

    def decide(self, states: dict[str, AgentState], now: float) -> list[RestartRequest]:
        requests = []
        for agent_id, state in states.items():
            if state.health.status is not HealthStatus.FAILED:
                self._tracks.pop(agent_id, None)
                continue
            track = self._tracks.setdefault(agent_id, _Track(failed_since=now))
            if now - track.failed_since < self.restart_after or now < track.next_allowed:
                continue
            track.attempts += 1
            track.next_allowed = now + min(self.backoff_max, self.restart_after * 2 ** track.attempts)
            requests.append(RestartRequest(agent_id=agent_id, kind=state.kind, instance=state.instance,
                                           pid=state.pid, reason=state.health.reason, attempt=track.attempts))
        for gone in set(self._tracks) - set(states):
            del self._tracks[gone]
        return requests
