"""The coordinator agent: listens to every heartbeat of its bot, answers ``get_system_status`` over
NATS request/reply and HTTP ``/status`` (and a status page at ``/``), spreads the active pairs over
the live trading workers by their load, and asks for restarts of agents that stay failed."""

from __future__ import annotations

import logging
import time
from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from nats.aio.msg import Msg
from prometheus_client import Counter, Gauge

from tradingbot_agents.coordinator.balance import balance
from tradingbot_agents.coordinator.page import PAGE
from tradingbot_agents.coordinator.registry import AgentRegistry
from tradingbot_agents.coordinator.restarts import RestartPolicy
from tradingbot_agents.kinds import AgentKind
from tradingbot_agents.messages import (
    ActivePairs,
    HealthStatus,
    Heartbeat,
    PairAssignment,
    RiskSnapshot,
    StatusRequest,
    SystemStatus,
)
from tradingbot_agents.runtime import Agent

log = logging.getLogger(__name__)


class CoordinatorAgent(Agent):
    kind = AgentKind.COORDINATOR

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        settings = self.config.coordinator
        self.registry_ = AgentRegistry(missed_heartbeats_failed=settings.missed_heartbeats_failed,
                                       forget_after=settings.forget_after)
        self.restarts = RestartPolicy(settings.restart_after, settings.restart_backoff_max)
        self.pairs_active: list[str] = []
        # Symbols with an open position (from the risk agent): kept assigned after the selector
        # drops them, so a worker is still there to manage and close the position.
        self.open_symbols: set[str] = set()
        self.assignment: dict[str, list[str]] = {}
        self._agents_gauge = Gauge("tradingbot_coordinator_agents", "Known agents by health",
                                   ["health"], registry=self.registry)
        self._system_health = Gauge("tradingbot_system_health_percent", "System health score",
                                    registry=self.registry)
        self._restart_requests = Counter("tradingbot_coordinator_restart_requests_total",
                                         "Restarts asked for agents that stayed failed", ["kind"],
                                         registry=self.registry)

    def get_system_status(self) -> SystemStatus:
        return self.registry_.system_status(self.subjects.prefix, pairs_active=self.pairs_active,
                                            assignment=self.assignment)

    async def setup(self) -> None:
        await self.bus.subscribe(self.subjects.heartbeats, Heartbeat, self._on_heartbeat)
        await self.bus.subscribe(self.subjects.pairs_active, ActivePairs, self._on_pairs)
        await self.bus.subscribe(self.subjects.risk_metrics, RiskSnapshot, self._on_risk)
        await self.bus.serve(self.subjects.status_request, StatusRequest, self._on_status_request)

    async def _on_heartbeat(self, beat: Heartbeat, _msg: Msg) -> None:
        self.registry_.observe(beat)

    async def _on_pairs(self, pairs: ActivePairs, _msg: Msg) -> None:
        self.pairs_active = list(pairs.pairs)

    async def _on_risk(self, snapshot: RiskSnapshot, _msg: Msg) -> None:
        self.open_symbols = {symbol for symbol, exposure in snapshot.exposure_by_symbol.items() if exposure}

    def pairs_to_trade(self) -> list[str]:
        return [*self.pairs_active, *sorted(self.open_symbols - set(self.pairs_active))]

    async def _on_status_request(self, _request: StatusRequest) -> SystemStatus:
        return self.get_system_status()

    async def run(self) -> None:
        await self.every(self.config.coordinator.health_check_interval, self._evaluate)

    async def _evaluate(self) -> None:
        for state, previous in self.registry_.transitions():
            if state.health.status is HealthStatus.FAILED:
                log.warning("agent %s marked failed: %s", state.agent_id, state.health.reason)
            elif previous is not None:
                log.info("agent %s is %s (was %s)", state.agent_id, state.health.status.value,
                         previous.value)
            else:
                log.info("agent %s registered (%s)", state.agent_id, state.health.status.value)
        states = self.registry_.states()
        for request in self.restarts.decide(states, time.monotonic()):
            log.warning("asking for a restart of %s (attempt %d): %s", request.agent_id, request.attempt,
                        request.reason)
            self._restart_requests.labels(request.kind.value).inc()
            await self.bus.publish(self.subjects.restart, request)
        await self._rebalance(states)
        status = self.get_system_status()
        stats = status.system_stats
        self._agents_gauge.labels("ok").set(stats.agents_ok)
        self._agents_gauge.labels("degraded").set(stats.agents_degraded)
        self._agents_gauge.labels("failed").set(stats.agents_failed)
        self._system_health.set(stats.system_health)

    async def _rebalance(self, states: dict[str, Any]) -> None:
        """Publish the desired pairs per live worker every round (late joiners catch up); log only
        when the plan changes."""
        loads = {s.agent_id: s.load for s in states.values()
                 if s.kind is AgentKind.TRADING_WORKER and s.health.status is not HealthStatus.FAILED}
        pairs = self.pairs_to_trade()
        if not loads or not pairs:
            return
        plan = balance(pairs, loads, self.assignment,
                       max_per_worker=self.config.trading_worker.max_pairs_per_worker)
        if plan != self.assignment:
            log.info("pair assignment: %s", plan)
        self.assignment = plan
        await self.bus.publish(self.subjects.assignment, PairAssignment(assignments=plan))

    def add_routes(self, app: FastAPI) -> None:
        @app.get("/status", response_model=SystemStatus)
        async def status() -> SystemStatus:
            return self.get_system_status()

        @app.get("/", response_class=HTMLResponse)
        async def page() -> str:
            return PAGE
