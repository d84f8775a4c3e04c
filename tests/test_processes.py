"""Agents as separate OS processes: registration, failure detection, graceful stop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry

from tests.helpers.procs import AgentProcess, write_config
from tests.helpers.standin import Echo, echo_subject
from tradingbot_agents.bus import Bus
from tradingbot_agents.config import Config
from tradingbot_agents.kinds import AgentKind
from tradingbot_agents.messages import HealthStatus, StatusRequest, Subjects, SystemStatus
from tradingbot_agents.metrics import BusMetrics

INTERVAL = 0.3

pytestmark = pytest.mark.slow


@pytest.fixture
def procs() -> Iterator[list[AgentProcess]]:
    started: list[AgentProcess] = []
    yield started
    for proc in started:
        proc.stop()


@pytest.fixture
def bot_files(make_config: Callable[..., Config], tmp_path: Path) -> tuple[Path, Subjects]:
    """The config file the agent processes share (fast heartbeats), and the bot's subjects."""
    config = make_config(runtime={"heartbeat_interval": INTERVAL})
    return write_config(config, tmp_path / "config.yaml"), Subjects(config.bot)


@pytest.fixture
async def client(make_config: Callable[..., Config]) -> Bus:
    config = make_config()
    bus = Bus(config.nats, name="test-client", metrics=BusMetrics(CollectorRegistry()))
    await bus.connect()
    yield bus
    await bus.close()


async def _status(bus: Bus, subjects: Subjects) -> SystemStatus:
    return await bus.request(subjects.status_request, StatusRequest(), SystemStatus, timeout=1.0)


async def _wait_for(predicate: Callable[[SystemStatus], bool], bus: Bus, subjects: Subjects,
                    timeout: float) -> SystemStatus:
    deadline = time.monotonic() + timeout
    last: SystemStatus | None = None
    while time.monotonic() < deadline:
        try:
            last = await _status(bus, subjects)
            if predicate(last):
                return last
        except Exception:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError(f"condition not met within {timeout}s; last status: {last}")


def _kinds_ok(status: SystemStatus, kinds: set[AgentKind]) -> bool:
    ok = {s.kind for s in status.agents.values() if s.health.status is HealthStatus.OK}
    return kinds <= ok


async def test_coordinator_sees_agents_and_detects_sigkill(
    bot_files: tuple[Path, Subjects], tmp_path: Path, procs: list[AgentProcess], client: Bus
) -> None:
    path, subjects = bot_files
    procs.append(AgentProcess.product("coordinator", path, tmp_path / "coordinator.log"))
    procs.append(AgentProcess.standin("risk", path, tmp_path / "risk.log"))
    procs.append(AgentProcess.standin("sentiment", path, tmp_path / "sentiment.log"))

    wanted = {AgentKind.COORDINATOR, AgentKind.RISK, AgentKind.SENTIMENT}
    status = await _wait_for(lambda s: _kinds_ok(s, wanted), client, subjects, timeout=20)
    assert status.system_stats.agents_ok == 3
    assert status.system_stats.system_health == 100.0
    # The stand-ins are real processes doing real work over the bus.
    reply = await client.request(echo_subject(subjects.prefix, AgentKind.RISK), Echo(text="hi"), Echo)
    assert reply.text.endswith(":hi")

    victim = procs[1]
    victim.kill()
    killed_at = time.monotonic()
    status = await _wait_for(
        lambda s: any(a.kind is AgentKind.RISK and a.health.status is HealthStatus.FAILED
                      for a in s.agents.values()),
        client, subjects, timeout=10)
    detected_after = time.monotonic() - killed_at
    # Within 3 heartbeat intervals of the kill (plus polling slack: 50 ms poll + request).
    assert detected_after < 3 * INTERVAL + 0.35, detected_after
    failed = next(a for a in status.agents.values() if a.kind is AgentKind.RISK)
    assert "no heartbeat" in failed.health.reason
    assert status.system_stats.agents_failed == 1
    assert status.system_stats.system_health == pytest.approx(200 / 3, abs=0.01)
    # The other agents are unaffected.
    assert _kinds_ok(status, {AgentKind.COORDINATOR, AgentKind.SENTIMENT})


async def test_sigterm_exits_zero_quickly(
    bot_files: tuple[Path, Subjects], tmp_path: Path, procs: list[AgentProcess], client: Bus
) -> None:
    path, subjects = bot_files
    coordinator = AgentProcess.product("coordinator", path, tmp_path / "coordinator.log")
    standin = AgentProcess.standin("data", path, tmp_path / "data.log")
    procs.extend([coordinator, standin])
    await _wait_for(lambda s: _kinds_ok(s, {AgentKind.COORDINATOR, AgentKind.DATA}), client, subjects, 20)

    for proc in (standin, coordinator):
        code, took = await asyncio.to_thread(proc.terminate_and_wait, 10.0)
        assert code == 0, proc.output()
        assert took < 10.0
        assert "stopped (exit 0)" in proc.output()


async def test_malformed_messages_do_not_kill_an_agent(
    bot_files: tuple[Path, Subjects], tmp_path: Path, procs: list[AgentProcess], client: Bus
) -> None:
    path, subjects = bot_files
    procs.append(AgentProcess.product("coordinator", path, tmp_path / "coordinator.log"))
    status = await _wait_for(lambda s: _kinds_ok(s, {AgentKind.COORDINATOR}), client, subjects, 20)
    port = next(iter(status.agents.values())).http_port
    assert port

    # Garbage on the heartbeat subject and on the status request subject.
    for subject in (subjects.heartbeat(AgentKind.RISK, "x"), subjects.status_request):
        await client.nc.publish(subject, b"this is not json")
        await client.nc.publish(subject, b'[1, 2]')  # JSON, but no model is a list
    await client.nc.flush()

    status = await _status(client, subjects)  # still answering
    assert set(status.agents) == {a for a in status.agents if a.startswith("coordinator.")}
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    dropped = {line.split("{")[1].split("}")[0]: float(line.rsplit(" ", 1)[1])
               for line in text.splitlines() if line.startswith("tradingbot_bus_messages_dropped_total{")}
    assert sum(v for k, v in dropped.items() if 'reason="not_json"' in k) == 2
    assert sum(v for k, v in dropped.items() if 'reason="schema"' in k) == 2
    assert coordinator_alive(procs[0])


def coordinator_alive(proc: AgentProcess) -> bool:
    return proc.proc.poll() is None
