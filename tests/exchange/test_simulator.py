"""The simulator replays the shipped real klines faithfully and counts what it is asked."""

from __future__ import annotations

import asyncio
import gzip
import itertools
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from tradingbot_agents.exchange import ExchangeClient
from tradingbot_agents.exchange.simulator import SimulatorConfig, SimulatorServer

from .conftest import sim_stats

KLINES = Path(__file__).resolve().parents[2] / "data" / "klines" / "binance-usdm-futures-1h"
HOUR = 3_600_000
MINUTE = 60_000


def csv_rows(symbol: str) -> list[tuple[int, float, float, float, float, float]]:
    """Read the shipped file directly, independently of the simulator's loader."""
    lines = gzip.decompress((KLINES / f"{symbol}-1h.csv.gz").read_bytes()).decode().splitlines()[1:]
    rows = []
    for line in lines:
        t, o, h, low, c, v = line.split(",")
        rows.append((int(t), float(o), float(h), float(low), float(c), float(v)))
    return rows


def expected_walk(o: float, h: float, low: float, c: float, fraction: float) -> float:
    """Independent re-statement of the convention: open -> nearer extreme -> other -> close, at
    constant speed along the path; ``fraction`` is the share of the path travelled."""
    near, far = (h, low) if (h - o) < (o - low) or ((h - o) == (o - low) and c < o) else (low, h)
    points = [o, near, far, c]
    total = sum(abs(points[i + 1] - points[i]) for i in range(3))
    travelled = total * fraction
    for a, b in itertools.pairwise(points):
        leg = abs(b - a)
        if travelled <= leg:
            return a + (b - a) * (travelled / leg if leg else 1.0)
        travelled -= leg
    return c


def test_shipped_data_is_one_aligned_year() -> None:
    files = sorted(KLINES.glob("*-1h.csv.gz"))
    assert len(files) == 20
    rows = csv_rows("BTCUSDT")
    assert len(rows) == 8760
    assert rows[0][0] == 1748073600000 and rows[-1][0] == 1779606000000  # 2025-05-24 08:00 .. 2026-05-24 07:00
    assert all(b[0] - a[0] == HOUR for a, b in itertools.pairwise(rows))


async def test_ticker_replays_real_prices(sim: SimulatorServer, client: ExchangeClient) -> None:
    rows = csv_rows("ETHUSDT")
    index = 1000
    t, o, h, low, c, _ = rows[index]
    clock = sim.simulator.clock
    clock.set(t)  # step 0: the open
    assert (await client.ticker_price("ETHUSDT"))[0].price == o
    clock.set(t + 59 * MINUTE)  # last step: exactly the close
    assert (await client.ticker_price("ETHUSDT"))[0].price == c
    for minute in (7, 20, 33, 46):
        clock.set(t + minute * MINUTE + 1234)
        ticker = (await client.ticker_price("ETHUSDT"))[0]
        assert low <= ticker.price <= h
        assert ticker.price == pytest.approx(round(expected_walk(o, h, low, c, minute / 59), 2), abs=0.0101)
        assert ticker.time == t + minute * MINUTE + 1234  # simulated time, not wall time


async def test_all_symbols_ticker_is_one_request(sim: SimulatorServer, client: ExchangeClient) -> None:
    symbols = [f.name.split("-")[0] for f in sorted(KLINES.glob("*-1h.csv.gz"))]
    before = await sim_stats(sim.url)
    tickers = await client.batch_fetch_tickers(symbols)
    after = await sim_stats(sim.url)
    assert sorted(tickers) == symbols
    assert after["requests_total"] - before["requests_total"] == 1
    assert after["by_endpoint"]["GET /fapi/v1/ticker/price"] == before["by_endpoint"].get(
        "GET /fapi/v1/ticker/price", 0) + 1
    assert after["weight_total"] - before["weight_total"] == 2  # documented weight without symbol


async def test_klines_4h_aggregate_1h_consistently(sim: SimulatorServer, client: ExchangeClient) -> None:
    rows = csv_rows("SOLUSDT")
    now = rows[2000][0] + 2 * HOUR + 25 * MINUTE  # inside a 4h bucket, partway through an hour
    sim.simulator.clock.set(now)
    k4 = await client.klines("SOLUSDT", "4h", limit=6)
    k1 = await client.klines("SOLUSDT", "1h", limit=24)
    assert k4[-1].open_time <= now <= k4[-1].close_time  # the bucket in progress comes last
    assert all(k.open_time <= now for k in k1)
    by_open = {k.open_time: k for k in k1}
    for bucket in k4[:-1]:
        assert bucket.open_time % (4 * HOUR) == 0
        assert bucket.close_time == bucket.open_time + 4 * HOUR - 1
        hours = [by_open[bucket.open_time + i * HOUR] for i in range(4)]
        assert bucket.open == hours[0].open
        assert bucket.close == hours[-1].close
        assert bucket.high == max(x.high for x in hours)
        assert bucket.low == min(x.low for x in hours)
        assert bucket.volume == pytest.approx(sum(x.volume for x in hours), rel=1e-9)
        csv = [r for r in rows if bucket.open_time <= r[0] < bucket.open_time + 4 * HOUR]
        assert bucket.high == max(r[2] for r in csv) and bucket.volume == pytest.approx(sum(r[5] for r in csv))


async def test_klines_wire_format(sim: SimulatorServer) -> None:
    async with httpx.AsyncClient(base_url=sim.url) as http:
        rows = (await http.get("/fapi/v1/klines", params={"symbol": "BTCUSDT", "interval": "1h", "limit": 2})).json()
        bad = await http.get("/fapi/v1/klines", params={"symbol": "BTCUSDT", "interval": "1m"})
    row = rows[0]
    assert len(row) == 12
    assert isinstance(row[0], int) and isinstance(row[6], int) and isinstance(row[8], int)
    assert all(isinstance(row[i], str) for i in (1, 2, 3, 4, 5, 7, 9, 10, 11))
    assert row[6] == row[0] + HOUR - 1
    assert bad.status_code == 400 and bad.json()["code"] == -1120


async def test_24hr_quote_volume_is_derived_from_24_candles(sim: SimulatorServer, client: ExchangeClient) -> None:
    rows = csv_rows("BTCUSDT")
    index = 500
    sim.simulator.clock.set(rows[index][0] + 59 * MINUTE)  # last step: the current candle is complete
    ticker = (await client.ticker_24hr("BTCUSDT"))[0]
    window = rows[index - 23:index + 1]
    assert ticker.quote_volume == pytest.approx(sum(r[5] * r[4] for r in window), rel=1e-9)
    assert ticker.high_price == max(r[2] for r in window) and ticker.low_price == min(r[3] for r in window)
    assert ticker.last_price == rows[index][4] and ticker.open_price == window[0][1]


async def test_exchange_info_has_real_shape_and_configured_limits(client: ExchangeClient) -> None:
    info = await client.exchange_info()
    assert len(info.symbols) == 20
    btc = info.symbol("BTCUSDT")
    assert btc is not None and btc.price_precision == 2
    assert btc.filter("PRICE_FILTER") == {**btc.filter("PRICE_FILTER"), "tickSize": "0.01"}  # type: ignore[dict-item]
    weight = [r for r in info.rate_limits if r.rate_limit_type == "REQUEST_WEIGHT"]
    assert weight[0].limit == 2400 and client.limiter.config.limit == 2400


async def test_stats_count_requests_by_endpoint(sim: SimulatorServer, client: ExchangeClient) -> None:
    before = await sim_stats(sim.url)
    await client.ticker_price("BTCUSDT")
    await client.ticker_price("BTCUSDT")
    await client.klines("BTCUSDT", "1h", limit=150)
    await client.new_order("BTCUSDT", "BUY", "MARKET", "0.001")
    after = await sim_stats(sim.url)
    ep = after["by_endpoint"]
    assert ep["GET /fapi/v1/ticker/price"] - before["by_endpoint"].get("GET /fapi/v1/ticker/price", 0) == 2
    assert ep["POST /fapi/v1/order"] - before["by_endpoint"].get("POST /fapi/v1/order", 0) == 1
    assert after["order_requests"] - before["order_requests"] == 1
    assert after["weight_total"] - before["weight_total"] == 1 + 1 + 2 + 0


async def test_market_order_fills_with_fee_and_moves_position(sim: SimulatorServer, client: ExchangeClient) -> None:
    rows = csv_rows("BTCUSDT")
    t = rows[3000][0] + 10 * MINUTE
    sim.simulator.clock.set(t)
    bid, ask = sim.simulator.paper.bid_ask("BTCUSDT", t)
    assert bid < ask  # modelled spread
    buy = await client.new_order("BTCUSDT", "BUY", "MARKET", "0.010")
    assert buy.status == "FILLED" and buy.executed_qty == Decimal("0.010")
    assert buy.avg_price == Decimal(f"{round(ask * (1 + 1 / 10_000), 2):.2f}")  # ask + 1 bps slippage
    positions = await client.position_risk("BTCUSDT")
    assert positions[0].position_amt == Decimal("0.010") and positions[0].entry_price == buy.avg_price
    sell = await client.new_order("BTCUSDT", "SELL", "MARKET", "0.010")
    assert await client.position_risk("BTCUSDT") == []
    account = await client.account()
    fees = (buy.cum_quote + sell.cum_quote) * Decimal("0.0005")
    pnl = (sell.avg_price - buy.avg_price) * Decimal("0.010")
    assert account.total_wallet_balance == pytest.approx(Decimal(10_000) + pnl - fees, abs=Decimal("0.00001"))
    assert account.total_wallet_balance < Decimal(10_000)  # a round trip costs spread and fees


async def test_limit_order_rests_until_the_walk_crosses_it(sim: SimulatorServer, client: ExchangeClient) -> None:
    rows = csv_rows("ETHUSDT")
    # A candle whose low is well below its open, so a bid between them must wait for the walk.
    index = next(i for i in range(4000, 8000) if rows[i][1] - rows[i][3] > 0.01 * rows[i][1])
    t, o, _h, low, _c, _v = rows[index]
    sim.simulator.clock.set(t)
    limit_price = round((o + low) / 2, 2)
    order = await client.new_order("ETHUSDT", "BUY", "LIMIT", "0.100", price=f"{limit_price:.2f}")
    assert order.status == "NEW"
    assert [o.order_id for o in await client.open_orders("ETHUSDT")] == [order.order_id]
    assert await client.position_risk("ETHUSDT") == []
    sim.simulator.clock.set(t + 59 * MINUTE)  # the walk has visited the low by the end of the candle
    filled = await client.query_order("ETHUSDT", order_id=order.order_id)
    assert filled.status == "FILLED" and filled.avg_price == Decimal(f"{limit_price:.2f}")  # maker at its price
    assert await client.open_orders("ETHUSDT") == []
    position = (await client.position_risk("ETHUSDT"))[0]
    assert position.position_amt == Decimal("0.100")
    account = await client.account()
    maker_fee = Decimal(f"{limit_price:.2f}") * Decimal("0.1") * Decimal("0.0002")
    assert Decimal(10_000) - account.total_wallet_balance == pytest.approx(maker_fee, abs=Decimal("0.00001"))


async def test_big_market_order_fills_partially_by_candle_volume(sim: SimulatorServer,
                                                                 client: ExchangeClient) -> None:
    rows = csv_rows("APTUSDT")
    index = 6000
    sim.simulator.clock.set(rows[index][0])
    cap = rows[index][5] * 0.1  # max_volume_fraction of the candle's real volume
    order = await client.new_order("APTUSDT", "BUY", "MARKET", f"{round(cap * 3, 1):.1f}")
    assert order.status == "EXPIRED"
    assert float(order.executed_qty) == pytest.approx(cap, abs=0.1)


async def test_unknown_symbol_and_bad_precision_are_rejected(client: ExchangeClient) -> None:
    from tradingbot_agents.exchange import ExchangeAPIError, InvalidSymbol

    with pytest.raises(InvalidSymbol) as info:
        await client.ticker_price("NOPEUSDT")
    assert info.value.code == -1121 and info.value.http_status == 400
    with pytest.raises(ExchangeAPIError) as info2:
        await client.new_order("BTCUSDT", "BUY", "MARKET", "0.00000001")
    assert info2.value.code == -1111


async def test_simulator_bans_callers_that_ignore_429(make_client: Callable[..., ExchangeClient]) -> None:
    config = SimulatorConfig(manual_clock=True, weight_limit=5, weight_interval="SECOND", retry_after_s=0.5,
                             ban_after_429s=2, ban_s=0.5)
    with SimulatorServer(config) as server:
        async with httpx.AsyncClient(base_url=server.url) as http:
            await asyncio.sleep(1.01 - time.time() % 1)  # start at a window's beginning: one window only
            answers = [await http.get("/fapi/v1/ticker/price", params={"symbol": "BTCUSDT"}) for _ in range(10)]
        codes = [a.status_code for a in answers]
        assert codes.count(200) <= 5 and 429 in codes and 418 in codes
        first_429 = answers[codes.index(429)]
        assert first_429.json()["code"] == -1003 and float(first_429.headers["Retry-After"]) > 0
        ban = answers[codes.index(418)]
        assert "banned until" in ban.json()["msg"] and "x-mbx-used-weight-1s" in ban.headers
        stats = await sim_stats(server.url)
        assert stats["answered_418"] >= 1 and stats["answered_429"] >= 1


def test_replay_clock_runs_speed_candles_per_wall_second() -> None:
    from tradingbot_agents.exchange.simulator import ReplayClock

    clock = ReplayClock(1_748_160_000_000, speed=10.0)  # 10 candles (hours) per wall second
    time.sleep(0.2)
    assert clock.now_ms() - 1_748_160_000_000 == pytest.approx(2 * HOUR, rel=0.25)
    clock.speed = 0.0  # changing speed re-anchors: no jump, then the clock stands still
    frozen = clock.now_ms()
    time.sleep(0.05)
    assert clock.now_ms() == frozen
