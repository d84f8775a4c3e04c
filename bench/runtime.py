"""Runtime benchmark: bus request/reply latency, one-way publish rate, idle RSS per agent process.

The typed bus is measured beside the raw nats-py client in the same run, so the cost of the typed
layer (pydantic encode/decode, metrics) is visible rather than guessed. Targets (issue 2): p99
request/reply < 5 ms, idle RSS < 120 MB per agent.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nats
import psutil
from nats.aio.msg import Msg
from prometheus_client import CollectorRegistry

from bench.common import percentile_ms, write_result
from tradingbot_agents.bus import Bus
from tradingbot_agents.catalog import implemented
from tradingbot_agents.config import Config
from tradingbot_agents.localservers import servers
from tradingbot_agents.messages import Alert, StatusRequest
from tradingbot_agents.metrics import BusMetrics

ROUND_TRIPS = 5000
PUBLISH_COUNT = 100_000


async def _request_reply(url: str) -> dict[str, float]:
    config = Config.model_validate({"nats": {"url": url}})
    server = Bus(config.nats, name="bench-server", metrics=BusMetrics(CollectorRegistry()))
    client = Bus(config.nats, name="bench-client", metrics=BusMetrics(CollectorRegistry()))
    await server.connect()
    await client.connect()

    async def respond(_req: StatusRequest) -> Alert:
        return Alert(alert_id="x", kind="bench", subject="BTCUSDT", message="pong")

    await server.serve("bench.typed", StatusRequest, respond)
    for _ in range(200):
        await client.request("bench.typed", StatusRequest(), Alert)
    typed = []
    for _ in range(ROUND_TRIPS):
        t0 = time.perf_counter()
        await client.request("bench.typed", StatusRequest(), Alert)
        typed.append(time.perf_counter() - t0)

    raw_server = await nats.connect(url)
    raw_client = await nats.connect(url)

    async def raw_respond(msg: Msg) -> None:
        await msg.respond(b'{"ok":true}')

    await raw_server.subscribe("bench.raw", cb=raw_respond)
    await raw_server.flush()
    raw = []
    for _ in range(ROUND_TRIPS):
        t0 = time.perf_counter()
        await raw_client.request("bench.raw", b"{}", timeout=2)
        raw.append(time.perf_counter() - t0)

    # One-way: typed publish → typed subscriber, counted at the subscriber.
    received = 0
    done = asyncio.Event()

    async def on_msg(_alert: Alert, _msg: Msg) -> None:
        nonlocal received
        received += 1
        if received == PUBLISH_COUNT:
            done.set()

    await server.subscribe("bench.oneway", Alert, on_msg)
    alert = Alert(alert_id="x", kind="bench", subject="BTCUSDT", message="tick")
    t0 = time.perf_counter()
    for _ in range(PUBLISH_COUNT):
        await client.publish("bench.oneway", alert)
    await client.nc.flush()
    await asyncio.wait_for(done.wait(), 120)
    oneway = PUBLISH_COUNT / (time.perf_counter() - t0)

    for conn in (raw_server, raw_client):
        await conn.close()
    await server.close()
    await client.close()
    return {
        "request_reply_p50_ms": percentile_ms(typed, 50),
        "request_reply_p99_ms": percentile_ms(typed, 99),
        "raw_request_reply_p50_ms": percentile_ms(raw, 50),
        "raw_request_reply_p99_ms": percentile_ms(raw, 99),
        "publish_msgs_per_s": round(oneway, 1),
    }


def _idle_rss(nats_url: str, redis_url: str, settle_s: float = 6.0) -> dict[str, float]:
    env = {**os.environ, "NATS_URL": nats_url, "REDIS_URL": redis_url, "TRADINGBOT__BOT__NAME": "bench",
           "TRADINGBOT__RUNTIME__HTTP_PORT": "0", "TRADINGBOT__RUNTIME__HTTP_HOST": "127.0.0.1",
           "TRADINGBOT__RUNTIME__HEARTBEAT_INTERVAL": "1"}
    result: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        procs = {}
        for kind in implemented():
            with Path(tmp, f"{kind.cli}.log").open("wb") as log:
                procs[kind.cli] = subprocess.Popen(
                    [sys.executable, "-P", "-m", "tradingbot_agents", "agent", "run", kind.cli],
                    env=env, stdout=log, stderr=subprocess.STDOUT)
        time.sleep(settle_s)
        for name, proc in procs.items():
            result[name] = round(psutil.Process(proc.pid).memory_info().rss / 2**20, 1)
            proc.terminate()
            proc.wait(timeout=15)
    return result


def main() -> None:
    with servers(os.environ.get("NATS_URL"), os.environ.get("REDIS_URL")) as (nats_url, redis_url):
        numbers = asyncio.run(_request_reply(nats_url))
        numbers["idle_rss_mb"] = _idle_rss(nats_url, redis_url)
    numbers["targets"] = {"request_reply_p99_ms": "< 5", "idle_rss_mb": "< 120 per agent"}
    path = write_result("runtime", numbers)
    width = max(len(k) for k in numbers)
    for key, value in numbers.items():
        print(f"  {key:<{width}}  {value}")
    print(f"written to {path}")
