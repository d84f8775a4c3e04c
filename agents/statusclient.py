"""Ask a bot's coordinator for its status over NATS (used by ``tradingbot status`` and the demo)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from tradingbot_agents.bus import Bus
from tradingbot_agents.config import Config
from tradingbot_agents.messages import StatusRequest, Subjects, SystemStatus
from tradingbot_agents.metrics import BusMetrics


async def fetch_status(config: Config, *, timeout: float = 3.0) -> SystemStatus:
    bus = Bus(config.nats.model_copy(update={"connect_timeout": timeout}), name="tradingbot-status",
              metrics=BusMetrics(CollectorRegistry()))
    await bus.connect_once()
    try:
        return await bus.request(Subjects(config.bot).status_request, StatusRequest(), SystemStatus,
                                 timeout=timeout)
    finally:
        await bus.close()
