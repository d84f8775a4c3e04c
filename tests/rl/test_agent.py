"""The RL agent end to end over real NATS, Redis, the exchange simulator and a data agent."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import numpy as np
import pytest
import redis.asyncio as aioredis
from nats.aio.msg import Msg
from prometheus_client import CollectorRegistry

from tradingbot_agents.bus import Bus
from tradingbot_agents.config import Config
from tradingbot_agents.data.agent import DataAgent
from tradingbot_agents.data.client import MarketDataClient
from tradingbot_agents.exchange.simulator.app import SimulatorConfig
from tradingbot_agents.exchange.simulator.server import SimulatorServer
from tradingbot_agents.messages import ActivePairs, HealthStatus, RLAdvice, Subjects
from tradingbot_agents.metrics import BusMetrics
from tradingbot_agents.pairselector.store import ACTIVE_KEY, open_pairs_bucket
from tradingbot_agents.rl.agent import RLAgent, closed_closes
from tradingbot_agents.rl.policy import Policy
from tradingbot_agents.rl.store import ModelStore
from tradingbot_agents.runtime import EXIT_OK

SYMBOLS = ["BTCUSDT", "ETHUSDT"]


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorServer]:
    with SimulatorServer(SimulatorConfig(manual_clock=True)) as server:
        clock = httpx.get(f"{server.url}/_sim/clock").json()
        httpx.post(f"{server.url}/_sim/clock", json={"time_ms": clock["data_start_ms"] + 60 * 86_400_000})
        yield server


@pytest.fixture
def rl_config(make_config: Callable[..., Config], sim: SimulatorServer) -> Config:
    return make_config(exchange={"base_url": sim.url, "egress": f"rl-{id(sim)}"},
                       data_agent={"poll_interval": 0.2},
                       rl_agent={"symbols": SYMBOLS, "window": 12, "hidden_units": 16, "train_episodes": 4,
                                 "episode_bars": 64, "train_bars": 300, "advice_interval": 0.2,
                                 "retrain_interval": 3600})


@pytest.fixture
async def bus(rl_config: Config) -> AsyncIterator[Bus]:
    client = Bus(rl_config.nats, name="rl-test", metrics=BusMetrics(CollectorRegistry()))
    await client.connect()
    yield client
    await client.close()


async def collect_advice(bus: Bus, subjects: Subjects, symbol: str) -> asyncio.Queue[RLAdvice]:
    queue: asyncio.Queue[RLAdvice] = asyncio.Queue()

    async def on_advice(advice: RLAdvice, _msg: Msg) -> None:
        await queue.put(advice)

    await bus.subscribe(subjects.rl_advice(symbol), RLAdvice, on_advice)
    return queue


async def test_trains_saves_publishes_advice_and_a_restart_serves_the_stored_model(
    rl_config: Config, started, bus: Bus, redis_url: str
) -> None:
    subjects = Subjects(rl_config.bot)
    btc = await collect_advice(bus, subjects, "BTCUSDT")
    eth = await collect_advice(bus, subjects, "ETHUSDT")
    await started(DataAgent(rl_config))
    agent: RLAgent = await started(RLAgent(rl_config))
    assert not agent.loaded_from_store  # nothing in Redis for this fresh bot: it trains

    advice = await asyncio.wait_for(btc.get(), 30)
    assert advice.symbol == "BTCUSDT" and advice.model_version == "v1"
    assert advice.action in {"buy", "sell", "hold"} and len(advice.q_values) == 3
    assert 0 <= advice.confidence <= 1
    assert (await asyncio.wait_for(eth.get(), 5)).symbol == "ETHUSDT"
    assert agent.trainings == 1 and agent.policy is not None
    assert not agent.short_history and agent.retrain_delay() == 3600
    assert sorted(agent.policy.meta.symbols) == SYMBOLS
    assert agent.health.overall().status is HealthStatus.OK
    stats = agent.stats()
    assert stats["rl_model_version"] == 1 and stats["rl_advice_published"] >= 2

    # The model is in Redis under the bot's keys, and the advice is what that model says about
    # the klines the data agent serves (the simulator's clock is frozen, so they are the same bars).
    redis = aioredis.Redis.from_url(redis_url)
    try:
        stored = await ModelStore(redis, rl_config.bot).load_latest()
    finally:
        await redis.aclose()
    assert stored is not None and stored.meta.version == "v1"
    reader = MarketDataClient(bus, subjects, "rl-test-reader")
    bars = (await reader.klines("BTCUSDT", "1h", 14)).bars
    expected = Policy.from_stored(stored, rl_config.rl_agent).advise(closed_closes(bars), 0.0)
    first_btc = advice  # the first advice for a symbol is computed from a flat position
    assert first_btc.q_values == pytest.approx(expected.q_values, rel=1e-12)
    assert (first_btc.action, first_btc.confidence) == (expected.action, pytest.approx(expected.confidence))

    # Restart: the new process serves the stored model at once, without training.
    assert await started.stop(agent) == EXIT_OK
    while not btc.empty():
        btc.get_nowait()
    restarted: RLAgent = await started(RLAgent(rl_config))
    assert restarted.loaded_from_store and restarted.policy is not None
    advice = await asyncio.wait_for(btc.get(), 5)
    assert advice.model_version == "v1"
    assert restarted.trainings == 0


async def test_without_symbols_it_waits_for_active_pairs(
    make_config: Callable[..., Config], sim: SimulatorServer, started, bus: Bus
) -> None:
    config = make_config(exchange={"base_url": sim.url, "egress": f"rl-{id(sim)}"},
                         rl_agent={"window": 8, "hidden_units": 8, "train_episodes": 2, "episode_bars": 32,
                                   "train_bars": 100, "advice_interval": 0.2})
    subjects = Subjects(config.bot)
    sol = await collect_advice(bus, subjects, "SOLUSDT")
    await started(DataAgent(config))
    agent: RLAgent = await started(RLAgent(config))
    await asyncio.sleep(0.5)
    # Waiting for pairs is normal at start-up: not ready to advise, but not unhealthy.
    assert agent.policy is None and "no symbols" in agent.waiting
    assert agent.health.overall().status is HealthStatus.OK
    assert agent.readiness()["model"] is False
    await bus.publish(subjects.pairs_active, ActivePairs(pairs=["SOLUSDT"]))
    advice = await asyncio.wait_for(sol.get(), 30)
    assert advice.symbol == "SOLUSDT" and advice.model_version == "v1"
    assert agent.readiness()["model"] is True
    assert np.isfinite(advice.q_values).all()


@pytest.mark.parametrize(("train_bars", "retrain_interval", "short_history"), [
    (100, 0.3, False),  # the configured interval
    (1500, 3600.0, True),  # the simulator has 1440 bars so far: retrain after 10 advice rounds
])
async def test_retrains_periodically_and_serves_the_new_version(
    make_config: Callable[..., Config], sim: SimulatorServer, started, bus: Bus,
    train_bars: int, retrain_interval: float, short_history: bool,
) -> None:
    config = make_config(exchange={"base_url": sim.url, "egress": f"rl-{id(sim)}"},
                         rl_agent={"symbols": ["ETHUSDT"], "window": 8, "hidden_units": 8, "train_episodes": 2,
                                   "episode_bars": 32, "train_bars": train_bars, "advice_interval": 0.05,
                                   "retrain_interval": retrain_interval})
    eth = await collect_advice(bus, Subjects(config.bot), "ETHUSDT")
    await started(DataAgent(config))
    agent: RLAgent = await started(RLAgent(config))
    versions: set[str] = set()
    for _ in range(100):
        versions.add((await asyncio.wait_for(eth.get(), 10)).model_version)
        if "v2" in versions:
            break
    assert {"v1", "v2"} <= versions
    assert agent.trainings >= 2
    assert agent.short_history is short_history
    assert agent.retrain_delay() == pytest.approx(0.5 if short_history else retrain_interval)


async def test_late_starter_reads_the_active_pairs_from_kv_and_bad_symbols_degrade_health(
    make_config: Callable[..., Config], sim: SimulatorServer, started, bus: Bus
) -> None:
    config = make_config(exchange={"base_url": sim.url, "egress": f"rl-{id(sim)}"},
                         rl_agent={"window": 8, "hidden_units": 8, "train_episodes": 2, "episode_bars": 32,
                                   "train_bars": 100, "advice_interval": 0.1})
    subjects = Subjects(config.bot)
    # The pair selector published before this agent started: only the KV bucket has the list.
    kv = await open_pairs_bucket(bus.js, subjects.kv_bucket("PAIRS"))
    await kv.put(ACTIVE_KEY, ActivePairs(pairs=["NOPEUSDT"]).model_dump_json().encode())
    await started(DataAgent(config))
    agent: RLAgent = await started(RLAgent(config))
    assert agent.symbols() == ["NOPEUSDT"]
    for _ in range(100):
        if "training" in agent.health.components():
            break
        await asyncio.sleep(0.05)
    # The simulator does not know the symbol: no klines, no model, health says why.
    training = agent.health.components()["training"]
    assert training.status is HealthStatus.DEGRADED and "klines" in training.reason
    assert agent.policy is None


async def test_a_damaged_stored_model_is_replaced_not_fatal(
    rl_config: Config, started, bus: Bus, redis_url: str
) -> None:
    prefix = f"tb:{rl_config.bot.namespace}:{rl_config.bot.name}:rl:model"
    redis = aioredis.Redis.from_url(redis_url)
    try:
        await redis.hset(f"{prefix}:v9", mapping={"meta": "{not json", "weights": b"junk"})
        await redis.set(f"{prefix}:latest", "v9")
        btc = await collect_advice(bus, Subjects(rl_config.bot), "BTCUSDT")
        await started(DataAgent(rl_config))
        agent: RLAgent = await started(RLAgent(rl_config))
        advice = await asyncio.wait_for(btc.get(), 30)
        assert not agent.loaded_from_store and agent.trainings == 1
        assert advice.model_version == "v1"
        assert await redis.get(f"{prefix}:latest") == b"v1"
    finally:
        await redis.aclose()
