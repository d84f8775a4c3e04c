"""The data agent over real NATS, Redis and the exchange simulator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from tradingbot_agents.bus import Bus
from tradingbot_agents.config import Config
from tradingbot_agents.data.agent import DataAgent
from tradingbot_agents.data.client import MarketDataClient, MarketDataUnavailable
from tradingbot_agents.exchange.simulator.app import SimulatorConfig
from tradingbot_agents.exchange.simulator.server import SimulatorServer
from tradingbot_agents.localservers import start_redis
from tradingbot_agents.messages import HealthStatus, Subjects
from tradingbot_agents.metrics import BusMetrics

SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT", "DOGEUSDT", "ADAUSDT", "AVAXUSDT",
           "LINKUSDT", "DOTUSDT", "LTCUSDT", "BCHUSDT", "ATOMUSDT", "NEARUSDT", "UNIUSDT", "AAVEUSDT",
           "FILUSDT", "ETCUSDT", "SUIUSDT", "APTUSDT"]


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorServer]:
    with SimulatorServer(SimulatorConfig(manual_clock=True)) as server:
        clock = httpx.get(f"{server.url}/_sim/clock").json()
        httpx.post(f"{server.url}/_sim/clock", json={"time_ms": clock["data_start_ms"] + 60 * 86_400_000})
        yield server


def sim_stats(sim: SimulatorServer) -> dict[str, Any]:
    return httpx.get(f"{sim.url}/_sim/stats").json()


def endpoint_count(sim: SimulatorServer, endpoint: str) -> int:
    return sum(v for k, v in sim_stats(sim)["by_endpoint"].items() if endpoint in k)


@pytest.fixture
def data_config(make_config: Callable[..., Config], sim: SimulatorServer) -> Config:
    httpx.post(f"{sim.url}/_sim/reset")
    return make_config(exchange={"base_url": sim.url, "egress": f"test-{id(sim)}"},
                       data_agent={"poll_interval": 0.1, "ticker_ttl": 5.0, "kline_ttl": 30.0,
                                   "kline_limit": 50})


@pytest.fixture
async def consumer(data_config: Config) -> AsyncIterator[MarketDataClient]:
    bus = Bus(data_config.nats, name="consumer", metrics=BusMetrics(CollectorRegistry()))
    await bus.connect()
    client = MarketDataClient(bus, Subjects(data_config.bot), "consumer-1", renew_every=0.2)
    yield client
    await client.close()
    await bus.close()


async def test_twenty_ticker_lookups_cost_one_exchange_call(
    data_config: Config, sim: SimulatorServer, started, consumer: MarketDataClient
) -> None:
    agent = await started(DataAgent(data_config))
    replies = await asyncio.gather(*(consumer.ticker(s) for s in SYMBOLS))
    assert [r.symbol for r in replies] == SYMBOLS
    assert all(r.price > 0 for r in replies)
    assert endpoint_count(sim, "/fapi/v1/ticker/price") == 1
    # The price is the simulator's (which replays the shipped candles).
    direct = httpx.get(f"{sim.url}/fapi/v1/ticker/price", params={"symbol": "BTCUSDT"}).json()
    assert replies[0].price == pytest.approx(float(direct["price"]))
    again = await consumer.ticker("ETHUSDT")
    assert again.fetched_at == replies[1].fetched_at  # served from the cache
    assert endpoint_count(sim, "/fapi/v1/ticker/price") == 2  # only the direct call above was added
    assert agent.stats()["cache_hits"] >= 1


async def test_two_replicas_on_one_redis_do_not_duplicate_exchange_calls(
    data_config: Config, sim: SimulatorServer, started, consumer: MarketDataClient
) -> None:
    first = await started(DataAgent(data_config))
    second = await started(DataAgent(data_config))
    # Ask both replicas directly, at once, for the same keys.
    calls = [replica.klines(s, "1h", 50) for s in SYMBOLS[:5] for replica in (first, second)]
    results = await asyncio.gather(*calls)
    assert len(results) == 10
    assert endpoint_count(sim, "/fapi/v1/klines") == 5, sim_stats(sim)["by_endpoint"]
    # exchangeInfo was fetched once for both, and both limiters took the exchange's weight limit
    # (each replica loads it in its run(), which starts right after it is ready).
    for _ in range(250):
        if all(replica.client.limiter.configured for replica in (first, second)):
            break
        await asyncio.sleep(0.02)
    assert endpoint_count(sim, "/fapi/v1/exchangeInfo") == 1
    for replica in (first, second):
        assert replica.client.limiter.configured and replica.client.limiter.config.limit == 2400
    # The agents' own count agrees with the simulator's (klines + their start-up exchangeInfo).
    assert first.exchange_calls + second.exchange_calls == 5 + endpoint_count(sim, "/fapi/v1/exchangeInfo")
    # Through the bus (queue group): more look-ups, still no new exchange call.
    data = await consumer.klines("BTCUSDT", "1h", 50)
    assert len(data.bars) == 50 and data.bars[-1].high >= data.bars[-1].low
    assert endpoint_count(sim, "/fapi/v1/klines") == 5


async def test_pushes_follow_interest_and_one_replica_publishes(
    data_config: Config, started, consumer: MarketDataClient
) -> None:
    replicas = [await started(DataAgent(data_config)), await started(DataAgent(data_config))]
    await consumer.want(["BTCUSDT", "ETHUSDT"], ["1h", "4h"])
    for _ in range(200):
        if len(consumer.tickers) == 2 and len(consumer.klines_pushed) == 4:
            break
        await asyncio.sleep(0.02)
    assert set(consumer.tickers) == {"BTCUSDT", "ETHUSDT"}
    assert set(consumer.klines_pushed) == {(s, i) for s in ("BTCUSDT", "ETHUSDT") for i in ("1h", "4h")}
    four_h = consumer.klines_pushed[("BTCUSDT", "4h")].bars
    assert all(b.close_time - b.open_time == 4 * 3600 * 1000 - 1 for b in four_h)
    await asyncio.sleep(0.5)
    publishing = [r for r in replicas if r.published > 0]
    assert len(publishing) == 1, [r.published for r in replicas]


async def test_exchange_misbehaving_gives_typed_errors_and_the_agent_keeps_serving(
    data_config: Config, sim: SimulatorServer, started, consumer: MarketDataClient
) -> None:
    agent = await started(DataAgent(data_config))
    for _ in range(250):  # the start-up exchangeInfo load is done (it reports exchange health too)
        if agent.client.limiter.configured:
            break
        await asyncio.sleep(0.02)
    httpx.post(f"{sim.url}/_sim/misbehave", json={"mode": "truncated", "count": 1, "path_prefix": "/fapi/v1/klines"})
    with pytest.raises(MarketDataUnavailable, match=r"(?i)malformed|html|json"):
        await consumer.klines("SOLUSDT", "1h", 50)
    assert agent.health.overall().status is HealthStatus.DEGRADED
    # The next look-up works and health recovers.
    data = await consumer.klines("SOLUSDT", "1h", 50)
    assert data.symbol == "SOLUSDT" and data.bars
    assert agent.health.components()["exchange"].status is HealthStatus.OK
    with pytest.raises(MarketDataUnavailable, match="unknown symbol"):
        await consumer.ticker("NOPEUSDT")


async def test_redis_killed_mid_run_still_serves_from_l1_then_recovers(
    make_config: Callable[..., Config], sim: SimulatorServer, started, consumer: MarketDataClient
) -> None:
    redis = start_redis()
    try:
        config = make_config(redis={"url": redis.url, "socket_timeout": 0.3},
                             exchange={"base_url": sim.url, "egress": "redis-kill"},
                             data_agent={"poll_interval": 0.1, "ticker_ttl": 30.0})
        agent = await started(DataAgent(config))
        bus = Bus(config.nats, name="c2", metrics=BusMetrics(CollectorRegistry()))
        await bus.connect()
        client = MarketDataClient(bus, Subjects(config.bot), "c2")
        first = await client.ticker("BTCUSDT")
        port = redis.port
        redis.kill()
        again = await client.ticker("BTCUSDT")  # L1 still has it
        assert again.price == first.price
        for _ in range(100):
            if agent.health.components()["cache"].status is HealthStatus.DEGRADED:
                break
            await asyncio.sleep(0.05)
        assert agent.health.components()["cache"].status is HealthStatus.DEGRADED
        redis.stop()
        redis = start_redis(port=port)
        for _ in range(100):
            await client.ticker("ETHUSDT")
            if agent.health.components()["cache"].status is HealthStatus.OK:
                break
            await asyncio.sleep(0.05)
        assert agent.health.components()["cache"].status is HealthStatus.OK
        await bus.close()
    finally:
        redis.stop()


async def test_symbol_list_from_cached_exchange_info(
    data_config: Config, sim: SimulatorServer, started, consumer: MarketDataClient
) -> None:
    await started(DataAgent(data_config))
    usdt = await consumer.list_symbols("USDT")
    assert len(usdt) == 20 and "BTCUSDT" in usdt and usdt == sorted(usdt)
    assert await consumer.list_symbols("BTC") == []
    assert await consumer.list_symbols() == usdt
    # Loaded once at start (it also sets the weight limit), then served from the cache.
    assert endpoint_count(sim, "/fapi/v1/exchangeInfo") == 1
