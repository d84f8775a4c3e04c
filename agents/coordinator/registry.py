"""Who is alive, how healthy, how loaded: pure bookkeeping over heartbeats (no I/O).

An agent is what its last heartbeat says, except when it has been silent: after
``missed_heartbeats_failed`` of its own announced intervals it is ``failed`` whatever it last
said, because a SIGKILLed process never says goodbye. Silence is judged at read time, so a status
answer is never staler than the clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from tradingbot_agents.kinds import AgentKind
from tradingbot_agents.messages import (
    AgentState,
    CacheStats,
    Health,
    HealthStatus,
    Heartbeat,
    MarketDataStats,
    SystemStats,
    SystemStatus,
    TradingStats,
)

_SCORES = {HealthStatus.OK: 100.0, HealthStatus.DEGRADED: 50.0, HealthStatus.FAILED: 0.0}


@dataclass
class _Record:
    heartbeat: Heartbeat
    received_at: float
    first_seen: float


def score(health: Health) -> float:
    """Health score in percent: ok 100, degraded 50, failed 0. Kept coarse on purpose: a finer
    score (e.g. from loop lag) would move the system figure on noise and hide real failures."""
    return _SCORES[health.status]


class AgentRegistry:
    def __init__(self, *, missed_heartbeats_failed: int = 3, forget_after: float = 600.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.missed = missed_heartbeats_failed
        self.forget_after = forget_after
        self.clock = clock
        self.started = clock()
        self._records: dict[str, _Record] = {}
        self._last_status: dict[str, HealthStatus] = {}

    def observe(self, beat: Heartbeat) -> None:
        now = self.clock()
        record = self._records.get(beat.agent_id)
        if record is None:
            self._records[beat.agent_id] = _Record(beat, now, now)
            return
        same_process = beat.started_at == record.heartbeat.started_at
        if same_process and beat.seq < record.heartbeat.seq:
            return  # an old heartbeat overtaken by a newer one
        record.heartbeat = beat
        record.received_at = now

    def forget(self, agent_id: str) -> None:
        self._records.pop(agent_id, None)
        self._last_status.pop(agent_id, None)

    def _state(self, record: _Record, now: float) -> AgentState:
        beat = record.heartbeat
        silent = now - record.received_at
        limit = self.missed * beat.interval_s
        health = beat.health
        if silent > limit:
            health = Health(status=HealthStatus.FAILED,
                            reason=f"no heartbeat for {silent:.1f}s (> {self.missed} intervals)")
        return AgentState(
            agent_id=beat.agent_id, kind=beat.kind, instance=beat.instance, health=health,
            load=beat.load, score=score(health), last_seen_s=round(silent, 3),
            uptime_s=round(max(0.0, now - record.first_seen), 3), http_port=beat.http_port,
            pid=beat.pid, stats=beat.stats,
        )

    def states(self) -> dict[str, AgentState]:
        now = self.clock()
        for agent_id in [a for a, r in self._records.items() if now - r.received_at > self.forget_after]:
            self.forget(agent_id)
        return {agent_id: self._state(rec, now) for agent_id, rec in sorted(self._records.items())}

    def transitions(self) -> list[tuple[AgentState, HealthStatus | None]]:
        """States whose health status changed since the last call, with the previous status."""
        changed = []
        for agent_id, state in self.states().items():
            previous = self._last_status.get(agent_id)
            if previous is not state.health.status:
                changed.append((state, previous))
                self._last_status[agent_id] = state.health.status
        return changed

    def system_status(self, bot: str, *, pairs_active: list[str] | None = None,
                      assignment: dict[str, list[str]] | None = None) -> SystemStatus:
        states = self.states()
        counts = {status: 0 for status in HealthStatus}
        hits = misses = 0.0
        for state in states.values():
            counts[state.health.status] += 1
            hits += state.stats.get("cache_hits", 0.0)
            misses += state.stats.get("cache_misses", 0.0)
        total = len(states)
        system_health = sum(s.score for s in states.values()) / total if total else 0.0
        lookups = hits + misses
        return SystemStatus(
            bot=bot,
            system_stats=SystemStats(
                system_health=round(system_health, 2), agents_total=total,
                agents_ok=counts[HealthStatus.OK], agents_degraded=counts[HealthStatus.DEGRADED],
                agents_failed=counts[HealthStatus.FAILED],
                uptime_s=round(self.clock() - self.started, 3),
            ),
            cache_stats=CacheStats(
                hit_rate_percent=round(100.0 * hits / lookups, 2) if lookups else None,
                hits=int(hits), misses=int(misses),
            ),
            market_data=market_data_stats(states),
            trading=trading_stats(states, pairs_active or [], assignment or {}),
            agents=states,
        )


def _live(states: dict[str, AgentState], kind: AgentKind) -> list[AgentState]:
    return [s for s in states.values() if s.kind is kind and s.health.status is not HealthStatus.FAILED]


def market_data_stats(states: dict[str, AgentState]) -> MarketDataStats:
    """Exchange calls are counters per data-agent process, summed over those alive (a replica that
    died takes its count with it; the exchange-side truth is the simulator's or Binance's)."""
    data = _live(states, AgentKind.DATA)
    latencies = [s.stats["fetch_latency_p50_ms"] for s in data if "fetch_latency_p50_ms" in s.stats]
    tails = [s.stats["fetch_latency_p99_ms"] for s in data if "fetch_latency_p99_ms" in s.stats]
    return MarketDataStats(
        exchange_calls=int(sum(s.stats.get("exchange_calls", 0.0) for s in data)),
        consumers=int(max((s.stats.get("consumers", 0.0) for s in data), default=0)),
        fetch_latency_p50_ms=round(max(latencies), 3) if latencies else None,
        fetch_latency_p99_ms=round(max(tails), 3) if tails else None,
    )


def trading_stats(states: dict[str, AgentState], pairs_active: list[str],
                  assignment: dict[str, list[str]]) -> TradingStats:
    """Portfolio figures come from the risk agent (it sees every fill); without one, the workers'
    own counts."""
    risk = _live(states, AgentKind.RISK)
    workers = _live(states, AgentKind.TRADING_WORKER)
    if risk:
        figures = risk[0].stats
        return TradingStats(
            open_positions=int(figures.get("open_positions", 0)), trades=int(figures.get("trades", 0)),
            pnl=figures.get("pnl"), var_95=figures.get("var_95"), sharpe=figures.get("sharpe"),
            max_drawdown=figures.get("max_drawdown"), pairs_active=pairs_active, assignment=assignment)
    return TradingStats(
        open_positions=int(sum(w.stats.get("open_positions", 0) for w in workers)),
        trades=int(sum(w.stats.get("trades", 0) for w in workers)),
        pnl=sum(w.stats["pnl"] for w in workers if "pnl" in w.stats) if workers else None,
        pairs_active=pairs_active, assignment=assignment)
