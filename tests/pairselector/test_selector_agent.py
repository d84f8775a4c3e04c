"""The pair selector over real NATS, Redis, the simulator and a real data agent."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import numpy as np
from nats.aio.msg import Msg

from tests.worker.conftest import eventually
from tradingbot_agents.bus import Bus
from tradingbot_agents.config import Config
from tradingbot_agents.data.agent import DataAgent
from tradingbot_agents.exchange.simulator.server import SimulatorServer
from tradingbot_agents.messages import ActivePairs, HealthStatus, Subjects
from tradingbot_agents.pairselector.agent import PairSelectorAgent
from tradingbot_agents.pairselector.store import open_pairs_bucket, read_active_pairs

CANDIDATES = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT", "DOGEUSDT", "LTCUSDT", "LINKUSDT"]


def sim_returns(sim: SimulatorServer, symbol: str, n: int) -> np.ndarray:
    """Reference data straight from the simulator (the test's own view, not the agent's)."""
    rows = httpx.get(f"{sim.url}/fapi/v1/klines", params={"symbol": symbol, "interval": "1h", "limit": n}).json()
    return np.diff(np.log([float(r[4]) for r in rows]))


async def test_selector_ranks_drops_correlated_and_stores_the_list(
    trading_config: Callable[..., Config], started, client_bus: Bus, sim: SimulatorServer
) -> None:
    config = trading_config(pairs={"static": CANDIDATES, "max_pairs": 5, "refresh_interval": 60},
                            pair_selector={"max_correlation": 0.6, "lookback_bars": 168})
    subjects = Subjects(config.bot)
    received: list[ActivePairs] = []

    async def on_active(active: ActivePairs, _msg: Msg) -> None:
        received.append(active)

    await client_bus.subscribe(subjects.pairs_active, ActivePairs, on_active)
    await started(DataAgent(config))
    selector = await started(PairSelectorAgent(config))
    await eventually(lambda: received, timeout=15)
    active = received[0]
    assert 1 <= len(active.pairs) <= 5
    assert sorted(p.symbol for p in active.ranked) == sorted(CANDIDATES)
    scores = [p.score for p in active.ranked]
    assert scores == sorted(scores, reverse=True)
    # Volume ranking is real: the 24 h quote volume the selector used is the simulator's own figure.
    top = active.ranked[0]
    ticker = httpx.get(f"{sim.url}/fapi/v1/ticker/24hr", params={"symbol": top.symbol}).json()
    assert abs(top.quote_volume_24h / float(ticker["quoteVolume"]) - 1) < 1e-6
    # No two chosen pairs correlate above the limit (checked on the simulator's data), and on this
    # real data the majors do: something was dropped as a near-duplicate.
    returns = {s: sim_returns(sim, s, 168) for s in active.pairs}
    for i, a in enumerate(active.pairs):
        for b in active.pairs[i + 1:]:
            assert np.corrcoef(returns[a], returns[b])[0, 1] <= 0.6 + 1e-9, (a, b)
    assert selector.last_selection is not None and selector.last_selection.dropped_correlated
    assert selector.stats()["dropped_correlated"] >= 1
    # A late joiner reads the same list from the KV bucket.
    stored = await read_active_pairs(await open_pairs_bucket(client_bus.js, subjects.kv_bucket("PAIRS")))
    assert stored is not None and stored.pairs == active.pairs


async def test_selector_without_candidates_is_degraded_and_publishes_nothing(
    trading_config: Callable[..., Config], started, client_bus: Bus
) -> None:
    config = trading_config(pairs={"static": [], "refresh_interval": 0.1})
    subjects = Subjects(config.bot)
    received: list[ActivePairs] = []

    async def on_active(active: ActivePairs, _msg: Msg) -> None:
        received.append(active)

    await client_bus.subscribe(subjects.pairs_active, ActivePairs, on_active)
    selector = await started(PairSelectorAgent(config))
    await eventually(lambda: "candidates" in selector.health.components(), timeout=5)
    await asyncio.sleep(0.3)
    assert selector.health.overall().status is HealthStatus.DEGRADED
    assert "pairs.static" in selector.health.overall().reason
    assert received == []


async def test_without_static_pairs_the_selector_ranks_what_the_exchange_lists(
    trading_config: Callable[..., Config], started, client_bus: Bus, sim: SimulatorServer
) -> None:
    config = trading_config(pairs={"static": [], "max_pairs": 4, "refresh_interval": 60},
                            pair_selector={"lookback_bars": 48})
    subjects = Subjects(config.bot)
    received: list[ActivePairs] = []

    async def on_active(active: ActivePairs, _msg: Msg) -> None:
        received.append(active)

    await client_bus.subscribe(subjects.pairs_active, ActivePairs, on_active)
    await started(DataAgent(config))
    await started(PairSelectorAgent(config))
    await eventually(lambda: received, timeout=20)
    listed = [s["symbol"] for s in httpx.get(f"{sim.url}/fapi/v1/exchangeInfo").json()["symbols"]
              if s["status"] == "TRADING" and s["quoteAsset"] == "USDT"]
    assert len(listed) == 20
    assert sorted(p.symbol for p in received[0].ranked) == sorted(listed)
    assert 1 <= len(received[0].pairs) <= 4
