"""Shared fixtures: real NATS and Redis servers, one per test session.

The servers are started on free ports from the project's own binaries (see
``tradingbot_agents.localservers``) and never touch 4222/6379 unless ``NATS_URL``/``REDIS_URL`` are
set. Tests isolate from each other by bot identity (every subject and key carries it), not by
server, which is the same isolation two TradingBots get in production.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from tradingbot_agents.config import Config
from tradingbot_agents.localservers import ServerProcess, start_nats, start_redis
from tradingbot_agents.runtime import EXIT_OK, Agent


@pytest.fixture(scope="session")
def nats_server() -> Iterator[ServerProcess | None]:
    if os.environ.get("NATS_URL"):
        yield None
        return
    server = start_nats()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def nats_url(nats_server: ServerProcess | None) -> str:
    return nats_server.url if nats_server else os.environ["NATS_URL"]


@pytest.fixture(scope="session")
def redis_server() -> Iterator[ServerProcess | None]:
    if os.environ.get("REDIS_URL"):
        yield None
        return
    server = start_redis()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_url(redis_server: ServerProcess | None) -> str:
    return redis_server.url if redis_server else os.environ["REDIS_URL"]


@pytest.fixture
def bot_name() -> str:
    """A fresh bot identity per test: its subjects, streams and keys are its own."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def make_config(nats_url: str, redis_url: str, bot_name: str) -> Callable[..., Config]:
    """Build a Config pointed at the session's servers, with sub-second heartbeats."""

    def build(**sections: Any) -> Config:
        data: dict[str, Any] = {
            "bot": {"namespace": "test", "name": bot_name},
            "nats": {"url": nats_url},
            "redis": {"url": redis_url},
            "runtime": {"heartbeat_interval": 0.2, "http_port": 0, "http_host": "127.0.0.1"},
            "coordinator": {"health_check_interval": 0.1},
        }
        for key, value in sections.items():
            data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
        return Config.model_validate(data)

    return build


class AgentStarter:
    """Runs agents in-process for a test: ``await started(agent)`` returns once the agent is ready
    (bus connected, set up); ``await started.stop(agent)`` stops one and returns its exit code. At
    teardown every agent still running is stopped, and each must have exited with code 0."""

    def __init__(self) -> None:
        self.running: list[tuple[Agent, asyncio.Task[int]]] = []

    async def __call__(self, agent: Agent, *, timeout: float = 10.0) -> Any:
        task = asyncio.create_task(agent.serve())
        deadline = asyncio.get_running_loop().time() + timeout
        while not agent.ready:
            if task.done():
                raise AssertionError(f"agent exited early: {task.result()}")
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError("agent not ready")
            await asyncio.sleep(0.02)
        self.running.append((agent, task))
        return agent

    async def stop(self, agent: Agent) -> int:
        for entry in self.running:
            if entry[0] is agent:
                self.running.remove(entry)
                agent.request_stop()
                return await entry[1]
        raise AssertionError("not running")

    async def stop_all(self) -> list[int]:
        for agent, task in self.running:
            if not task.done():
                agent.request_stop()
        return list(await asyncio.gather(*(task for _, task in self.running)))


@pytest.fixture
async def started() -> AsyncIterator[AgentStarter]:
    starter = AgentStarter()
    yield starter
    codes = await starter.stop_all()
    assert codes == [EXIT_OK] * len(codes)
