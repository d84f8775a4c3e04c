"""Folding base bars into coarser ones, checked against the simulator's own aggregation of the
shipped real klines (the same rule the exchange applies)."""

from __future__ import annotations

import httpx
import pytest

from tradingbot_agents.data.bars import aggregate, base_bars_needed, derivable, interval_ms
from tradingbot_agents.exchange.simulator.app import SimulatorConfig
from tradingbot_agents.exchange.simulator.server import SimulatorServer


def test_interval_lengths() -> None:
    assert interval_ms("1h") == 3_600_000 and interval_ms("15m") == 900_000 and interval_ms("1d") == 86_400_000
    assert interval_ms("1w") is None and interval_ms("3d") is None and interval_ms("h") is None
    assert derivable("4h", "1h") == 4 and derivable("1h", "4h") is None and derivable("1w", "1h") is None
    assert base_bars_needed("4h", 99, "1h") == 399


def test_folded_bars_equal_the_exchange_bars() -> None:
    with SimulatorServer(SimulatorConfig(manual_clock=True)) as sim:
        clock = httpx.get(f"{sim.url}/_sim/clock").json()
        # Mid-candle, so the last bar of each interval is still open.
        httpx.post(f"{sim.url}/_sim/clock", json={"time_ms": clock["data_start_ms"] + 90 * 86_400_000 + 1_800_000})

        def rows(interval: str, limit: int) -> list[list[float]]:
            raw = httpx.get(f"{sim.url}/fapi/v1/klines",
                            params={"symbol": "ETHUSDT", "interval": interval, "limit": limit}).json()
            return [[r[0], float(r[1]), float(r[2]), float(r[3]), float(r[4]), float(r[5]), r[6]] for r in raw]

        base = rows("1h", 499)
        for interval, limit in (("1h", 99), ("4h", 99), ("12h", 30), ("1d", 20)):
            folded = aggregate(base, interval, limit, "1h")
            exchange = rows(interval, limit)
            assert [b[0] for b in folded] == [b[0] for b in exchange], interval
            for mine, theirs in zip(folded, exchange, strict=True):
                assert mine[1:5] == pytest.approx(theirs[1:5]), (interval, mine[0])
                assert mine[5] == pytest.approx(theirs[5], rel=1e-6)
                assert mine[6] == theirs[6]
