"""One consumer process of the market-data benchmark (see bench/market_data.py).

Each period (one replayed candle, "one simulated minute" of the scenario) it needs fresh tickers
and the last 99 bars of 1h and 4h klines for 20 symbols, and reports its latencies. ``naive``
calls the exchange itself (its own client, no cache); ``cached`` asks the data agents over NATS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import nats

sys.path.append(str(Path(__file__).resolve().parents[1]))

from tradingbot_agents.bus import Bus
from tradingbot_agents.config import BotIdentity, NatsSettings
from tradingbot_agents.data.client import MarketDataClient
from tradingbot_agents.exchange import ExchangeClient, RateLimitConfig, RateLimiter
from tradingbot_agents.messages import Subjects
from tradingbot_agents.metrics import BusMetrics

KLINE_LIMIT = 99
INTERVALS = ("1h", "4h")
CONCURRENCY = 8


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=["naive", "cached"], required=True)
    parser.add_argument("--id", required=True)
    parser.add_argument("--nats-url", required=True)
    parser.add_argument("--exchange-url", required=True)
    parser.add_argument("--bot", default="bench")
    parser.add_argument("--symbols", required=True)
    args = parser.parse_args()
    symbols = args.symbols.split(",")
    control = await nats.connect(args.nats_url)
    prefix = f"bench.{args.mode}"

    fetchers: list[Callable[[], Awaitable[float | None]]] = []
    if args.mode == "naive":
        # A naive bot: its own client and its own idea of the weight budget, no cache, no batching.
        client = ExchangeClient(args.exchange_url, sync_on_enter=False,
                                limiter=RateLimiter(config=RateLimitConfig(limit=10**9, window_s=60.0)))
        for symbol in symbols:
            fetchers.append(lambda s=symbol: _naive(client.ticker_price(s)))
            for interval in INTERVALS:
                fetchers.append(lambda s=symbol, i=interval: _naive(client.klines(s, i, KLINE_LIMIT)))
    else:
        bus = Bus(NatsSettings(url=args.nats_url), name=f"consumer-{args.id}", metrics=BusMetrics(
            __import__("prometheus_client").CollectorRegistry()))
        await bus.connect()
        md = MarketDataClient(bus, Subjects(BotIdentity(namespace="bench", name=args.bot)), f"consumer-{args.id}")
        for symbol in symbols:
            fetchers.append(lambda s=symbol: _cached(md.ticker(s)))
            for interval in INTERVALS:
                fetchers.append(lambda s=symbol, i=interval: _cached(md.klines(s, i, KLINE_LIMIT)))

    done = asyncio.Event()

    async def on_period(msg: nats.aio.msg.Msg) -> None:
        request = json.loads(msg.data)
        if request.get("stop"):
            done.set()
            return
        started = request["started_at"]
        semaphore = asyncio.Semaphore(CONCURRENCY)
        latencies: list[float] = []
        warm: list[float] = []  # answers whose data were already cached when asked
        stale = errors = 0

        async def one(fetch: Callable[[], Awaitable[float | None]]) -> None:
            nonlocal stale, errors
            async with semaphore:
                t0 = time.perf_counter()
                asked_at = time.time()
                try:
                    fetched_at = await fetch()
                except Exception:
                    errors += 1
                    return
                latencies.append(time.perf_counter() - t0)
                if fetched_at is not None and fetched_at < asked_at:
                    warm.append(latencies[-1])
                if fetched_at is not None and fetched_at < started:
                    stale += 1
                    if stale <= 3:
                        print(f"stale: period {request['period']} fetched_at {fetched_at:.3f} < {started:.3f}",
                              flush=True)

        await asyncio.gather(*(one(f) for f in fetchers))
        await control.publish(f"{prefix}.done", json.dumps(
            {"id": args.id, "period": request["period"], "latencies": latencies, "warm": warm, "stale": stale,
             "errors": errors}).encode())

    await control.subscribe(f"{prefix}.period", cb=on_period)
    await control.publish(f"{prefix}.ready", args.id.encode())
    await done.wait()
    await control.drain()


async def _naive(pending: Awaitable[object]) -> float | None:
    await pending
    return None  # straight from the exchange: fresh by construction


async def _cached(pending: Awaitable[object]) -> float | None:
    return float((await pending).fetched_at)  # type: ignore[attr-defined]


if __name__ == "__main__":
    asyncio.run(main())
