"""Fixtures for the trading side: the exchange simulator, in-process agents, a risk stand-in."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from tradingbot_agents.bus import Bus
from tradingbot_agents.config import Config
from tradingbot_agents.exchange.simulator.app import SimulatorConfig
from tradingbot_agents.exchange.simulator.server import SimulatorServer
from tradingbot_agents.messages import ActivePairs, OrderIntent, RiskDecision, Subjects
from tradingbot_agents.metrics import BusMetrics
from tradingbot_agents.pairselector.store import ACTIVE_KEY, open_pairs_bucket

PAIRS = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT"]


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorServer]:
    """Manual clock, 60 days into the data: every agent sees the same, repeatable market."""
    with SimulatorServer(SimulatorConfig(manual_clock=True)) as server:
        clock = httpx.get(f"{server.url}/_sim/clock").json()
        httpx.post(f"{server.url}/_sim/clock", json={"time_ms": clock["data_start_ms"] + 60 * 86_400_000})
        yield server


@pytest.fixture
def trading_config(make_config: Callable[..., Config], sim: SimulatorServer) -> Callable[..., Config]:
    def build(**sections: Any) -> Config:
        base: dict[str, Any] = {
            "exchange": {"base_url": sim.url, "egress": f"worker-test-{id(sim)}"},
            "data_agent": {"poll_interval": 0.5, "ticker_ttl": 0.5},
            "trading_worker": {"loop_interval": 0.2, "signal_threshold": 0.01, "risk_timeout": 0.5},
        }
        for key, value in sections.items():
            base[key] = {**base.get(key, {}), **value} if isinstance(value, dict) else value
        return make_config(**base)

    return build


@pytest.fixture
async def client_bus(make_config: Callable[..., Config]) -> AsyncIterator[Bus]:
    """A plain bus connection for the test itself (publishing pairs, reading KV and streams)."""
    bus = Bus(make_config().nats, name="test", metrics=BusMetrics(CollectorRegistry()))
    await bus.connect()
    yield bus
    await bus.close()


async def set_active_pairs(bus: Bus, subjects: Subjects, pairs: list[str]) -> None:
    """What the pair selector does (tested on its own): store in KV and publish."""
    active = ActivePairs(pairs=pairs)
    kv = await open_pairs_bucket(bus.js, subjects.kv_bucket("PAIRS"))
    await kv.put(ACTIVE_KEY, active.model_dump_json().encode())
    await bus.publish(subjects.pairs_active, active)


class RiskStandIn:
    """TEST STAND-IN for the risk agent (built in parallel): answers the pre-trade check on the
    real subject, approving up to ``max_notional`` and rejecting above it with a reason."""

    def __init__(self, max_notional: float = 1e12) -> None:
        self.max_notional = max_notional
        self.intents: list[OrderIntent] = []

    async def decide(self, intent: OrderIntent) -> RiskDecision:
        self.intents.append(intent)
        if intent.notional > self.max_notional and not intent.reduce_only:
            return RiskDecision(intent_id=intent.intent_id, approved=False,
                                reason=f"notional {intent.notional:.2f} exceeds max_position_notional "
                                       f"{self.max_notional:.2f}", checks={"notional": intent.notional})
        return RiskDecision(intent_id=intent.intent_id, approved=True, checks={"notional": intent.notional})

    async def serve(self, bus: Bus, subjects: Subjects) -> RiskStandIn:
        await bus.serve(subjects.risk_check, OrderIntent, self.decide)
        return self


async def stream_messages(bus: Bus, stream: str, subject: str, model: type, *, wait: float = 0.5) -> list[Any]:
    """Everything stored on a stream (an ephemeral ordered consumer from the start)."""
    info = await bus.js.stream_info(stream)
    out: list[Any] = []
    if info.state.messages == 0:
        return out
    done = asyncio.Event()
    last = info.state.last_seq

    async def cb(msg: Any) -> None:
        out.append(model.model_validate_json(msg.data))
        if msg.metadata.sequence.stream >= last:
            done.set()

    sub = await bus.js.subscribe(subject, cb=cb, ordered_consumer=True, stream=stream)
    try:
        await asyncio.wait_for(done.wait(), wait + 2)
    finally:
        await sub.unsubscribe()
    return out


async def eventually(check: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)
