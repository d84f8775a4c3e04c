"""Exchange test fixtures: a loopback simulator replaying the shipped klines (never the internet)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from tradingbot_agents.exchange import ExchangeClient
from tradingbot_agents.exchange.simulator import SimulatorConfig, SimulatorServer
from tradingbot_agents.exchange.simulator.app import Stats

API_KEY = SecretStr("sim-api-key")
API_SECRET = SecretStr("sim-api-secret")


@pytest.fixture(scope="session")
def shared_sim() -> Iterator[SimulatorServer]:
    """One manual-clock simulator for the session; :func:`sim` resets it per test."""
    with SimulatorServer(SimulatorConfig(manual_clock=True)) as server:
        yield server


@pytest.fixture
def sim(shared_sim: SimulatorServer) -> SimulatorServer:
    s = shared_sim.simulator
    s.stats = Stats()
    s.rates.clear()
    s.misbehave = None
    s.clock.set(s.market.first_open + 48 * 3_600_000)
    s.paper.accounts.clear()
    return shared_sim


@pytest.fixture
def make_client() -> Iterator[Callable[..., ExchangeClient]]:
    """Build clients with fast retries; all are closed at teardown."""
    made: list[ExchangeClient] = []

    def build(url: str, **kwargs: Any) -> ExchangeClient:
        options: dict[str, Any] = {"api_key": API_KEY, "api_secret": API_SECRET, "backoff_base_s": 0.01,
                                   "backoff_max_s": 0.05, "timeout_s": 5.0}
        options.update(kwargs)
        client = ExchangeClient(url, **options)
        made.append(client)
        return client

    yield build


@pytest.fixture
async def client(sim: SimulatorServer, make_client: Callable[..., ExchangeClient]) -> AsyncIterator[ExchangeClient]:
    async with make_client(sim.url) as c:
        yield c


async def sim_stats(url: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=url) as http:
        return (await http.get("/_sim/stats")).json()


async def misbehave(url: str, **body: Any) -> None:
    async with httpx.AsyncClient(base_url=url) as http:
        (await http.post("/_sim/misbehave", json=body)).raise_for_status()
