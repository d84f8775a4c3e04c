"""Market-data benchmark (issue 4): the seed's "70–90% fewer API calls" table, measured.

Scenario: 7 agents each need, every simulated minute, fresh tickers and the last 99 bars of 1h and 4h
klines for 20 symbols, for 30 simulated minutes. The data are hourly candles, so (decisions.md) one
"simulated minute" is one replayed candle: the simulator's clock is stepped one candle per period,
and every consumer must get data fetched after the period began (the same freshness rule on both
sides; the cached side counts any answer older than the period as stale).

  (a) naive:  each agent polls the exchange itself: its own client, no cache, no batching;
  (b) cached: one data agent (cache L1 → Redis, one all-symbols ticker request, 1h bars folded into
      4h) answers the agents over NATS request/reply.

Each side runs against its own simulator (same data, same clock steps) in one process tree: the
consumers (and the data agent) are child processes whose CPU seconds and peak RSS are measured;
the simulators run in this process and are not counted. The simulators' weight limit is raised so
that throttling does not hide the naive side's demand; both sides' weight per simulated minute is
reported next to Binance's 2400/min. Requests and weight are what the simulators counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import nats
import psutil

from bench.common import percentile_ms, write_result
from tradingbot_agents.exchange.simulator.app import SimulatorConfig
from tradingbot_agents.exchange.simulator.server import SimulatorServer
from tradingbot_agents.localservers import servers

CONSUMERS = 7
PERIODS = 30
PERIOD_S = 1.0
TTL_S = 0.5  # the cached side's ticker and kline TTL: shorter than a period
SYMBOLS = ["BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "XRPUSDT", "DOGEUSDT", "ADAUSDT", "AVAXUSDT",
           "LINKUSDT", "DOTUSDT", "LTCUSDT", "BCHUSDT", "ATOMUSDT", "NEARUSDT", "UNIUSDT", "AAVEUSDT",
           "FILUSDT", "ETCUSDT", "SUIUSDT", "APTUSDT"]
HOUR_MS = 3_600_000
BINANCE_WEIGHT_PER_MIN = 2400
ROOT = Path(__file__).resolve().parents[1]


class TreeSampler:
    """Samples the summed RSS of a set of processes; reads their CPU seconds at the end."""

    def __init__(self) -> None:
        self.procs: list[psutil.Process] = []
        self.peak_rss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def add(self, pid: int) -> None:
        self.procs.append(psutil.Process(pid))

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            total = 0
            for proc in self.procs:
                with contextlib.suppress(psutil.Error):
                    total += proc.memory_info().rss
            self.peak_rss = max(self.peak_rss, total)
            self._stop.wait(0.1)

    def cpu_seconds(self) -> float:
        total = 0.0
        for proc in self.procs:
            try:
                times = proc.cpu_times()
                total += times.user + times.system
            except psutil.Error:
                pass
        return total

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, "-P", *args], env=env, stdout=out, stderr=subprocess.STDOUT)


async def _run_side(mode: str, nats_url: str, redis_url: str, logs: Path) -> dict[str, Any]:
    config = SimulatorConfig(manual_clock=True, weight_limit=10**7)
    with SimulatorServer(config) as sim:
        clock = httpx.get(f"{sim.url}/_sim/clock").json()
        start_ms = clock["data_start_ms"] + 200 * 24 * HOUR_MS  # leaves 499 past 1h bars
        httpx.post(f"{sim.url}/_sim/clock", json={"time_ms": start_ms})
        env = {**os.environ, "PYTHONSAFEPATH": "1"}
        procs: list[subprocess.Popen[bytes]] = []
        sampler = TreeSampler()
        control = await nats.connect(nats_url)
        beats: dict[str, Any] = {}

        async def on_beat(msg: Any) -> None:
            beats[msg.subject] = json.loads(msg.data)

        if mode == "cached":
            ttl = str(TTL_S)
            agent_env = {**env, "NATS_URL": nats_url, "REDIS_URL": redis_url,
                         "TRADINGBOT__BOT__NAMESPACE": "bench", "TRADINGBOT__BOT__NAME": "bench",
                         "TRADINGBOT__EXCHANGE__BASE_URL": sim.url, "TRADINGBOT__EXCHANGE__EGRESS": "bench-cached",
                         "TRADINGBOT__DATA_AGENT__TICKER_TTL": ttl, "TRADINGBOT__DATA_AGENT__KLINE_TTL": ttl,
                         "TRADINGBOT__RUNTIME__HTTP_PORT": "0", "TRADINGBOT__RUNTIME__HTTP_HOST": "127.0.0.1",
                         "TRADINGBOT__RUNTIME__HEARTBEAT_INTERVAL": "0.5"}
            await control.subscribe("tb.bench.bench.agent.heartbeat.>", cb=on_beat)
            procs.append(_spawn(["-m", "tradingbot_agents", "agent", "run", "data"], agent_env, logs / "data.log"))
        ready: set[str] = set()
        ready_event = asyncio.Event()

        async def on_ready(msg: Any) -> None:
            ready.add(msg.data.decode())
            if len(ready) == CONSUMERS:
                ready_event.set()

        await control.subscribe(f"bench.{mode}.ready", cb=on_ready)
        for n in range(CONSUMERS):
            procs.append(_spawn([str(ROOT / "bench" / "md_consumer.py"), "--mode", mode, "--id", str(n),
                                 "--nats-url", nats_url, "--exchange-url", sim.url,
                                 "--symbols", ",".join(SYMBOLS)], env, logs / f"{mode}-consumer-{n}.log"))
        for proc in procs:
            sampler.add(proc.pid)
        sampler.start()
        await asyncio.wait_for(ready_event.wait(), 60)
        if mode == "cached":
            for _ in range(200):  # the data agent is up once it heartbeats
                if beats:
                    break
                await asyncio.sleep(0.05)
        httpx.post(f"{sim.url}/_sim/reset")  # count the scenario only

        results: list[dict[str, Any]] = []
        period_done = asyncio.Event()

        async def on_done(msg: Any) -> None:
            results.append(json.loads(msg.data))
            if len(results) % CONSUMERS == 0:
                period_done.set()

        await control.subscribe(f"bench.{mode}.done", cb=on_done)
        cpu_before = sampler.cpu_seconds()
        run_started = time.monotonic()
        for period in range(PERIODS):
            period_started = time.monotonic()
            httpx.post(f"{sim.url}/_sim/clock", json={"advance_ms": HOUR_MS})
            period_done.clear()
            await control.publish(f"bench.{mode}.period", json.dumps(
                {"period": period, "started_at": time.time()}).encode())
            await asyncio.wait_for(period_done.wait(), 60)
            # The next minute starts no sooner than PERIOD_S after this one began, and no sooner
            # than one TTL after its last answer: whatever was fetched for this minute has then
            # expired, so the next minute's answers are fresh (the naive side's are by construction).
            await asyncio.sleep(max(TTL_S, PERIOD_S - (time.monotonic() - period_started)))
        elapsed = time.monotonic() - run_started
        cpu = sampler.cpu_seconds() - cpu_before
        stats = httpx.get(f"{sim.url}/_sim/stats").json()
        await control.publish(f"bench.{mode}.period", json.dumps({"stop": True}).encode())
        await control.flush()
        hit_rate = fetch_p50 = fetch_p99 = None
        if mode == "cached":
            await asyncio.sleep(0.8)  # one more heartbeat with the final counters
            agent_stats = next(iter(beats.values()))["stats"]
            fetch_p50 = agent_stats.get("fetch_latency_p50_ms")
            fetch_p99 = agent_stats.get("fetch_latency_p99_ms")
            lookups = agent_stats["cache_hits"] + agent_stats["cache_misses"]
            hit_rate = round(100.0 * agent_stats["cache_hits"] / lookups, 2) if lookups else None
        sampler.stop()
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        await control.drain()

    latencies = [lat for r in results for lat in r["latencies"]]
    warm = [lat for r in results for lat in r["warm"]]
    return {
        "requests_per_min": round(stats["requests_total"] / PERIODS, 2),
        "weight_per_min": round(stats["weight_total"] / PERIODS, 2),
        "requests_total": stats["requests_total"],
        "weight_total": stats["weight_total"],
        "by_endpoint": stats["by_endpoint"],
        "http_429": stats["answered_429"],
        "cpu_s": round(cpu, 2),
        "peak_rss_mb": round(sampler.peak_rss / 2**20, 1),
        "latency_p50_ms": percentile_ms(latencies, 50),
        "latency_p99_ms": percentile_ms(latencies, 99),
        "lookups": len(latencies),
        # Answers that were already in the cache when asked (no wait for an exchange fetch).
        "warm_latency_p50_ms": percentile_ms(warm, 50) if warm else None,
        "warm_latency_p99_ms": percentile_ms(warm, 99) if warm else None,
        "warm_answers": len(warm),
        "exchange_fetch_p50_ms": fetch_p50,
        "exchange_fetch_p99_ms": fetch_p99,
        "stale_answers": sum(r["stale"] for r in results),
        "errors": sum(r["errors"] for r in results),
        "wall_s": round(elapsed, 1),
        "cache_hit_rate_pct": hit_rate,
    }


async def _run(logs: Path) -> dict[str, Any]:
    with servers(os.environ.get("NATS_URL"), os.environ.get("REDIS_URL")) as (nats_url, redis_url):
        # One side after the other: on 2 cores, running both at once would make each side's
        # latency and CPU figures mostly a measure of the other.
        naive = await _run_side("naive", nats_url, redis_url, logs)
        cached = await _run_side("cached", nats_url, redis_url, logs)
    return {"naive": naive, "cached": cached}


def main() -> None:
    logs = ROOT / "logs" / "bench-market-data"
    logs.mkdir(parents=True, exist_ok=True)
    sides = asyncio.run(_run(logs))
    naive, cached = sides["naive"], sides["cached"]
    result = {
        "scenario": {"consumers": CONSUMERS, "symbols": len(SYMBOLS), "klines": ["1h", "4h"], "kline_limit": 99,
                     "periods": PERIODS, "period": "one replayed 1h candle = one simulated minute",
                     "period_wall_s": PERIOD_S, "simulator_weight_limit": "raised (10^7/min) on both sides"},
        "naive": naive,
        "cached": cached,
        "request_reduction_pct": round(100.0 * (1 - cached["requests_total"] / naive["requests_total"]), 2),
        "weight_reduction_pct": round(100.0 * (1 - cached["weight_total"] / naive["weight_total"]), 2),
        "cache_hit_rate_pct": cached["cache_hit_rate_pct"],
        "consumer_p50_ms": cached["latency_p50_ms"],
        "consumer_p99_ms": cached["latency_p99_ms"],
        "http_429_count": cached["http_429"],
        "binance_weight_limit_per_min": BINANCE_WEIGHT_PER_MIN,
        "targets": {"request_reduction_pct": ">= 90", "cache_hit_rate_pct": ">= 90", "http_429_count": "0",
                    "consumer_p99_ms": "< 20"},
    }
    path = write_result("market_data", result)
    rows = [("exchange requests / sim. minute", "requests_per_min"), ("weight / sim. minute", "weight_per_min"),
            ("consumer latency p50 ms", "latency_p50_ms"), ("consumer latency p99 ms", "latency_p99_ms"),
            ("  of answers already cached: p50 ms", "warm_latency_p50_ms"),
            ("  of answers already cached: p99 ms", "warm_latency_p99_ms"),
            ("exchange fetch p50 ms (data agent)", "exchange_fetch_p50_ms"),
            ("exchange fetch p99 ms (data agent)", "exchange_fetch_p99_ms"),
            ("CPU seconds", "cpu_s"), ("peak RSS MB (process tree)", "peak_rss_mb"),
            ("stale answers", "stale_answers"), ("errors", "errors"), ("HTTP 429", "http_429")]
    print(f"  {'':34} {'naive':>12} {'cached':>12}")
    for label, key in rows:
        print(f"  {label:34} {naive[key]!s:>12} {cached[key]!s:>12}")
    print(f"  request reduction {result['request_reduction_pct']}%  weight reduction "
          f"{result['weight_reduction_pct']}%  cache hit rate {result['cache_hit_rate_pct']}%")
    print(f"written to {path}")
