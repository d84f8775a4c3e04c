"""``make demo``: the whole system on one machine, in shadow mode.

Starts NATS (JetStream) and Redis unless ``NATS_URL``/``REDIS_URL`` are given, runs every
implemented agent as its own process under the :class:`~tradingbot_agents.supervisor.Supervisor`,
prints the status table while it runs, and at the end a summary (also written to
``<log-dir>/summary.json``). Ctrl-C stops everything cleanly.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path

from tradingbot_agents.catalog import implemented
from tradingbot_agents.config import load_config
from tradingbot_agents.exchange.simulator.app import SimulatorConfig
from tradingbot_agents.exchange.simulator.server import SimulatorServer
from tradingbot_agents.localservers import ServerUnavailable, servers
from tradingbot_agents.messages import SystemStatus
from tradingbot_agents.statusclient import fetch_status
from tradingbot_agents.statusview import status_table
from tradingbot_agents.supervisor import Supervisor, child_env

log = logging.getLogger(__name__)

DEMO_BOT = "demo"


class _Stop(Exception):
    pass


def _on_signal(_signum: int, _frame: object) -> None:
    raise _Stop


def run_demo(*, config_path: str | None, minutes: float, log_dir: str, status_every: float,
             speed: float = 2.0) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)-7s demo: %(message)s")
    logs = Path(log_dir)
    logs.mkdir(parents=True, exist_ok=True)
    try:
        with (servers(os.environ.get("NATS_URL"), os.environ.get("REDIS_URL")) as (nats_url, redis_url),
              SimulatorServer(SimulatorConfig(speed=speed)) as sim):
            print(f"NATS {nats_url}   Redis {redis_url}   exchange simulator {sim.url} "
                  f"({speed:g} candles/s)   logs {logs}/", flush=True)
            return _run(config_path, minutes, logs, status_every, nats_url, redis_url, sim.url)
    except ServerUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _run(config_path: str | None, minutes: float, logs: Path, status_every: float,
         nats_url: str, redis_url: str, exchange_url: str) -> int:
    overrides = {
        # Shadow demo: market data from the local simulator replaying real klines, never the internet.
        "TRADINGBOT__EXCHANGE__BASE_URL": exchange_url,
        "NATS_URL": nats_url,
        "REDIS_URL": redis_url,
        "TRADINGBOT__BOT__NAME": DEMO_BOT,
        "TRADINGBOT__RUNTIME__HTTP_PORT": "0",
        "TRADINGBOT__RUNTIME__HTTP_HOST": "127.0.0.1",
        "TRADINGBOT__RUNTIME__HEARTBEAT_INTERVAL": "1",
        "TRADINGBOT__COORDINATOR__HEALTH_CHECK_INTERVAL": "1",
        "TRADINGBOT__MODE": "shadow",
    }
    env = child_env(**overrides)
    config = load_config(config_path, env=env)
    kinds = implemented()
    supervisor = Supervisor(kinds, env=env, log_dir=logs, config_path=config_path)
    previous = signal.signal(signal.SIGTERM, _on_signal)
    started = time.monotonic()
    deadline = started + minutes * 60
    status: SystemStatus | None = None
    print(f"running {', '.join(k.cli for k in kinds)} in shadow mode for {minutes:g} min (Ctrl-C stops)",
          flush=True)
    supervisor.start()
    next_table = started + min(status_every, 3.0)
    try:
        while time.monotonic() < deadline:
            supervisor.poll()
            if time.monotonic() >= next_table:
                status = _status(config) or status
                if status is not None:
                    print(f"\n[{time.monotonic() - started:5.0f}s]\n{status_table(status)}", flush=True)
                next_table = time.monotonic() + status_every
            time.sleep(0.2)
        status = _status(config) or status
    except (KeyboardInterrupt, _Stop):
        print("\nstopping…", flush=True)
    finally:
        signal.signal(signal.SIGTERM, previous)
        codes = supervisor.stop()
    summary = {
        "bot": f"{config.bot.namespace}/{config.bot.name}",
        "ran_s": round(time.monotonic() - started, 1),
        "agents": [k.cli for k in kinds],
        "exit_codes": codes,
        "restarts": {c.kind.cli: max(0, c.restarts) for c in supervisor.children},
        "status": status.model_dump(mode="json") if status else None,
    }
    (logs / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    print("\nsummary")
    if status is not None:
        print(status_table(status))
    print(f"exit codes: {codes}; restarts: {summary['restarts']}; written to {logs / 'summary.json'}")
    return 0 if all(code == 0 for code in codes.values()) else 1


def _status(config) -> SystemStatus | None:  # type: ignore[no-untyped-def]
    try:
        return asyncio.run(fetch_status(config, timeout=2.0))
    except Exception as exc:
        log.info("no status yet: %s", exc)
        return None
