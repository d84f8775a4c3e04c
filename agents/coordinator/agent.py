"""The coordinator agent: listens to every heartbeat of its bot and answers ``get_system_status``
over NATS request/reply and HTTP ``/status``."""

from __future__ import annotations

import logging

from fastapi import FastAPI
from nats.aio.msg import Msg
from prometheus_client import Gauge

from tradingbot_agents.coordinator.registry import AgentRegistry
from tradingbot_agents.kinds import AgentKind
from tradingbot_agents.messages import HealthStatus, Heartbeat, StatusRequest, SystemStatus
from tradingbot_agents.runtime import Agent

log = logging.getLogger(__name__)


class CoordinatorAgent(Agent):
    kind = AgentKind.COORDINATOR

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        settings = self.config.coordinator
        self.registry_ = AgentRegistry(missed_heartbeats_failed=settings.missed_heartbeats_failed,
                                       forget_after=settings.forget_after)
        self._agents_gauge = Gauge("tradingbot_coordinator_agents", "Known agents by health",
                                   ["health"], registry=self.registry)
        self._system_health = Gauge("tradingbot_system_health_percent", "System health score",
                                    registry=self.registry)

    def get_system_status(self) -> SystemStatus:
        return self.registry_.system_status(self.subjects.prefix)

    async def setup(self) -> None:
        await self.bus.subscribe(self.subjects.heartbeats, Heartbeat, self._on_heartbeat)
        await self.bus.serve(self.subjects.status_request, StatusRequest, self._on_status_request)

    async def _on_heartbeat(self, beat: Heartbeat, _msg: Msg) -> None:
        self.registry_.observe(beat)

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
        status = self.get_system_status()
        stats = status.system_stats
        self._agents_gauge.labels("ok").set(stats.agents_ok)
        self._agents_gauge.labels("degraded").set(stats.agents_degraded)
        self._agents_gauge.labels("failed").set(stats.agents_failed)
        self._system_health.set(stats.system_health)

    def add_routes(self, app: FastAPI) -> None:
        @app.get("/status", response_model=SystemStatus)
        async def status() -> SystemStatus:
            return self.get_system_status()
