"""The runtime in-process: probes, metrics, heartbeats with load, crash → exit 1, per-bot isolation."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import httpx
import pytest
from nats.aio.msg import Msg
from prometheus_client import CollectorRegistry

from tests.helpers.standin import make_standin
from tradingbot_agents.bus import Bus
from tradingbot_agents.config import Config
from tradingbot_agents.coordinator.agent import CoordinatorAgent
from tradingbot_agents.kinds import AgentKind
from tradingbot_agents.messages import HealthStatus, Heartbeat, StatusRequest, Subjects, SystemStatus
from tradingbot_agents.metrics import BusMetrics
from tradingbot_agents.runtime import EXIT_CRASH, EXIT_OK, Agent


async def _started(agent: Agent) -> asyncio.Task[int]:
    task = asyncio.create_task(agent.serve())
    for _ in range(200):
        if agent.ready:
            return task
        if task.done():
            raise AssertionError(f"agent ended early with {task.result()}")
        await asyncio.sleep(0.02)
    raise AssertionError("agent did not become ready")


async def test_probes_metrics_and_heartbeat_load(make_config: Callable[..., Config]) -> None:
    config = make_config()
    agent = make_standin(AgentKind.RISK)(config)
    beats: list[Heartbeat] = []
    listener = Bus(config.nats, name="listener", metrics=BusMetrics(CollectorRegistry()))
    await listener.connect()

    async def on_beat(beat: Heartbeat, _msg: Msg) -> None:
        beats.append(beat)

    await listener.subscribe(agent.subjects.heartbeat(AgentKind.RISK, agent.instance), Heartbeat, on_beat)
    task = await _started(agent)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{agent.http_port}") as http:
            health = await http.get("/healthz")
            assert health.status_code == 200 and health.json()["alive"] is True
            ready = await http.get("/readyz")
            assert ready.status_code == 200 and ready.json() == {"ready": True, "checks": {"bus": True}}
            metrics = (await http.get("/metrics")).text
            assert "tradingbot_heartbeats_sent_total" in metrics
            assert "process_resident_memory_bytes" in metrics
            # A dependency going down makes the agent unready and its health worse.
            agent.health.set("redis", HealthStatus.DEGRADED, "redis unreachable")
            agent.readiness = lambda: {"bus": True, "redis": False}  # type: ignore[method-assign]
            ready = await http.get("/readyz")
            assert ready.status_code == 503 and ready.json()["checks"]["redis"] is False
        for _ in range(100):
            if len(beats) >= 3 and beats[-1].health.status is HealthStatus.DEGRADED:
                break
            await asyncio.sleep(0.05)
        assert [b.seq for b in beats[:3]] == [0, 1, 2]
        last = beats[-1]
        assert last.health.status is HealthStatus.DEGRADED and "redis unreachable" in last.health.reason
        assert last.load.rss_mb > 10
        assert last.load.loop_lag_ms >= 0 and last.http_port == agent.http_port
        assert last.stats == {"handled": 0.0}
    finally:
        agent.request_stop()
        assert await asyncio.wait_for(task, 10) == EXIT_OK
        await listener.close()


async def test_crash_in_run_exits_1_with_the_cause_logged(
    make_config: Callable[..., Config], caplog: pytest.LogCaptureFixture
) -> None:
    class Crashing(make_standin(AgentKind.SENTIMENT)):  # type: ignore[misc]
        async def run(self) -> None:
            await asyncio.sleep(0.1)
            raise ValueError("feed parser exploded")

    caplog.set_level(logging.ERROR)
    code = await asyncio.wait_for(Crashing(make_config()).serve(), 15)
    assert code == EXIT_CRASH
    assert "agent crashed: feed parser exploded" in caplog.text


async def test_stop_before_nats_is_reachable_exits_cleanly(make_config: Callable[..., Config]) -> None:
    config = make_config(nats={"url": "nats://127.0.0.1:1", "connect_timeout": 0.2})
    agent = make_standin(AgentKind.RL)(config)
    task = asyncio.create_task(agent.serve())
    await asyncio.sleep(0.8)
    assert not agent.ready
    agent.request_stop()
    assert await asyncio.wait_for(task, 10) == EXIT_OK


async def test_two_bots_on_one_nats_never_see_each_other(make_config: Callable[..., Config]) -> None:
    config_a = make_config()
    config_b = make_config(bot={"name": config_a.bot.name + "-b"})
    agents = [CoordinatorAgent(config_a), make_standin(AgentKind.DATA)(config_a),
              CoordinatorAgent(config_b), make_standin(AgentKind.RISK)(config_b)]
    tasks = [await _started(agent) for agent in agents]
    client = Bus(config_a.nats, name="client", metrics=BusMetrics(CollectorRegistry()))
    await client.connect()
    try:
        await asyncio.sleep(0.8)
        status_a = await client.request(Subjects(config_a.bot).status_request, StatusRequest(), SystemStatus)
        status_b = await client.request(Subjects(config_b.bot).status_request, StatusRequest(), SystemStatus)
        assert {s.kind for s in status_a.agents.values()} == {AgentKind.COORDINATOR, AgentKind.DATA}
        assert {s.kind for s in status_b.agents.values()} == {AgentKind.COORDINATOR, AgentKind.RISK}
        assert status_a.bot != status_b.bot
    finally:
        for agent in agents:
            agent.request_stop()
        assert await asyncio.gather(*tasks) == [EXIT_OK] * 4
        await client.close()


async def test_cache_hit_rate_is_aggregated_from_heartbeats(make_config: Callable[..., Config]) -> None:
    config = make_config()

    class CachingStandIn(make_standin(AgentKind.DATA)):  # type: ignore[misc]
        def stats(self) -> dict[str, float]:
            return {"cache_hits": 90.0, "cache_misses": 10.0}

    agents = [CoordinatorAgent(config), CachingStandIn(config)]
    tasks = [await _started(agent) for agent in agents]
    try:
        await asyncio.sleep(0.6)
        status = agents[0].get_system_status()  # type: ignore[attr-defined]
        assert status.cache_stats.hit_rate_percent == 90.0
        assert status.cache_stats.hits == 90
    finally:
        for agent in agents:
            agent.request_stop()
        await asyncio.gather(*tasks)
