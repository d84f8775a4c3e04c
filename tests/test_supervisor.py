"""The local supervisor: restarts dead agents, and stops hung ones the coordinator asks about."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from tradingbot_agents.bus import Bus
from tradingbot_agents.config import Config
from tradingbot_agents.kinds import AgentKind
from tradingbot_agents.messages import Heartbeat, RestartRequest, Subjects
from tradingbot_agents.metrics import BusMetrics
from tradingbot_agents.supervisor import RestartListener, Supervisor, child_env

pytestmark = pytest.mark.slow


def _wait(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


async def test_dead_and_hung_agents_are_restarted(make_config: Callable[..., Config], tmp_path: Path) -> None:
    config = make_config()
    env = child_env(NATS_URL=config.nats.url, REDIS_URL=config.redis.url,
                    TRADINGBOT__BOT__NAMESPACE=config.bot.namespace, TRADINGBOT__BOT__NAME=config.bot.name,
                    TRADINGBOT__RUNTIME__HTTP_PORT="0", TRADINGBOT__RUNTIME__HEARTBEAT_INTERVAL="0.2")
    supervisor = Supervisor([AgentKind.COORDINATOR], env=env, log_dir=tmp_path, max_backoff=0.5)
    supervisor.children[0].backoff = 0.1
    listener = RestartListener(config, supervisor.restart_requests)
    await asyncio.to_thread(listener.start)
    supervisor.start()
    child = supervisor.children[0]
    try:
        first_pid = child.process.pid  # type: ignore[union-attr]
        # A crash (SIGKILL) → restarted with backoff.
        os.kill(first_pid, 9)
        assert await asyncio.to_thread(_wait, lambda: (supervisor.poll(), child.restarts == 1)[1], 10)
        second_pid = child.process.pid  # type: ignore[union-attr]
        assert second_pid != first_pid and child.last_exit == -9
        # A restart request from the coordinator for this pid → SIGTERM, then a fresh process.
        bus = Bus(config.nats, name="coordinator-stand-in", metrics=BusMetrics(CollectorRegistry()))
        await bus.connect()
        beating: set[int] = set()

        async def on_beat(beat: Heartbeat, _msg: object) -> None:
            beating.add(beat.pid)

        await bus.subscribe(Subjects(config.bot).heartbeats, Heartbeat, on_beat)
        assert await asyncio.to_thread(_wait, lambda: second_pid in beating, 15)  # up, handlers installed
        await bus.publish(Subjects(config.bot).restart, RestartRequest(
            agent_id="coordinator.x", kind=AgentKind.COORDINATOR, instance="x", pid=second_pid,
            reason="no heartbeat for 9s", attempt=1))
        assert await asyncio.to_thread(_wait, lambda: (supervisor.poll(), child.restarts == 2)[1], 15)
        assert child.last_exit == 0  # it was asked to stop, and stopped cleanly
        third_pid = child.process.pid  # type: ignore[union-attr]
        assert third_pid not in (first_pid, second_pid)
        assert await asyncio.to_thread(_wait, lambda: third_pid in beating, 15)
        await bus.close()
    finally:
        codes = await asyncio.to_thread(supervisor.stop)
        listener.stop()
    assert codes == {"coordinator": 0}
