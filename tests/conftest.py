"""Shared fixtures: real NATS and Redis servers, one per test session.

The servers are started on free ports from the project's own binaries (see
``tradingbot_agents.localservers``) and never touch 4222/6379 unless ``NATS_URL``/``REDIS_URL`` are
set. Tests isolate from each other by bot identity (every subject and key carries it), not by
server, which is the same isolation two TradingBots get in production.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tradingbot_agents.config import Config
from tradingbot_agents.localservers import ServerProcess, start_nats, start_redis


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
