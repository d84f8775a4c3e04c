"""``make demo``: the whole system on one machine, in shadow mode.

Starts NATS (JetStream) and Redis unless ``NATS_URL``/``REDIS_URL`` are given, and the exchange
simulator replaying the shipped real klines at ``--speed`` candles per second; writes the demo's
config (``<log-dir>/demo-config.yaml``: the user's ``--config`` if any, with the local endpoints and
offline sources laid over it); runs every implemented agent as its own process under the
:class:`~tradingbot_agents.supervisor.Supervisor` (two trading workers, so pairs are shared by
lease), prints a progress line and status tables while it runs, and at the end a summary (also
written to ``<log-dir>/summary.json``). Ctrl-C stops everything cleanly. Nothing here talks to the
internet: market data come from the simulator and sentiment from recorded payloads.
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
from typing import Any

import yaml

from tradingbot_agents.catalog import implemented
from tradingbot_agents.config import Config, deep_merge, load_config
from tradingbot_agents.exchange.simulator.app import SimulatorConfig
from tradingbot_agents.exchange.simulator.server import SimulatorServer
from tradingbot_agents.kinds import AgentKind
from tradingbot_agents.localservers import ServerUnavailable, servers
from tradingbot_agents.messages import SystemStatus
from tradingbot_agents.statusclient import fetch_status
from tradingbot_agents.statusview import status_table
from tradingbot_agents.supervisor import RestartListener, Supervisor, child_env

log = logging.getLogger(__name__)

DEMO_BOT = "demo"
DATA_DIR = Path(__file__).resolve().parents[1] / "data"
REPLICAS = {AgentKind.TRADING_WORKER: 2}


class _Stop(Exception):
    pass


def _on_signal(_signum: int, _frame: object) -> None:
    raise _Stop


def demo_overrides(*, nats_url: str, redis_url: str, exchange_url: str, speed: float) -> dict[str, Any]:
    """What the demo lays over the user's config: local endpoints, offline sentiment, short
    intervals so two minutes show something. One replayed candle lasts ``1/speed`` seconds."""
    candle_s = 1.0 / speed
    payloads = DATA_DIR / "payloads"
    return {
        "mode": "shadow",
        "bot": {"namespace": "default", "name": DEMO_BOT},
        "nats": {"url": nats_url},
        "redis": {"url": redis_url},
        "runtime": {"http_port": 0, "http_host": "127.0.0.1", "heartbeat_interval": 1.0},
        "coordinator": {"health_check_interval": 1.0, "restart_after": 10.0},
        "exchange": {"base_url": exchange_url, "egress": "demo"},
        "data_agent": {"poll_interval": max(0.5, candle_s / 2), "ticker_ttl": max(0.25, candle_s / 4),
                       "kline_ttl": max(0.5, candle_s / 2)},
        "sentiment_agent": {
            "fetch_interval": 10.0,
            "sources": {
                "reddit": {"enabled": False, "weight": 0.0},
                "news": {"enabled": False, "weight": 0.0},
                "file": {"enabled": True, "weight": 1.0,
                         "targets": [str(payloads / "reddit"), str(payloads / "rss"), str(payloads / "twitter")]},
            },
        },
        "risk_agent": {"check_interval_seconds": 1.0},
        "pairs": {"refresh_interval": 30.0},
        "trading_worker": {"loop_interval": max(1.0, candle_s)},
        "rl_agent": {"advice_interval": 5.0},
    }


def write_demo_config(user: Config, overrides: dict[str, Any], path: Path) -> Config:
    data = deep_merge(user.model_dump(mode="json"), overrides)
    config = Config.model_validate(data)
    path.write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False), encoding="utf-8")
    return config


def run_demo(*, config_path: str | None, minutes: float, log_dir: str, status_every: float,
             speed: float = 2.0) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)-7s demo: %(message)s")
    logs = Path(log_dir)
    logs.mkdir(parents=True, exist_ok=True)
    user = load_config(config_path)
    try:
        with (servers(os.environ.get("NATS_URL"), os.environ.get("REDIS_URL")) as (nats_url, redis_url),
              SimulatorServer(SimulatorConfig(speed=speed)) as sim):
            print(f"NATS {nats_url}   Redis {redis_url}   exchange simulator {sim.url} "
                  f"({speed:g} candles/s)   logs {logs}/", flush=True)
            overrides = demo_overrides(nats_url=nats_url, redis_url=redis_url, exchange_url=sim.url, speed=speed)
            config = write_demo_config(user, overrides, logs / "demo-config.yaml")
            return _run(config, logs / "demo-config.yaml", minutes, logs, status_every, sim)
    except ServerUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _run(config: Config, config_path: Path, minutes: float, logs: Path, status_every: float,
         sim: SimulatorServer) -> int:
    # Children read the demo config only: environment overrides meant for this process stay here.
    env = child_env({k: v for k, v in os.environ.items() if not k.startswith("TRADINGBOT__")
                     and k not in ("NATS_URL", "REDIS_URL", "TRADINGBOT_CONFIG")})
    kinds = implemented()
    supervisor = Supervisor(kinds, env=env, log_dir=logs, config_path=str(config_path), replicas=REPLICAS)
    previous = signal.signal(signal.SIGTERM, _on_signal)
    started = time.monotonic()
    deadline = started + minutes * 60
    status: SystemStatus | None = None
    names = ", ".join(f"{k.cli} x{REPLICAS[k]}" if REPLICAS.get(k, 1) > 1 else k.cli for k in kinds)
    print(f"running {names} in shadow mode for {minutes:g} min (Ctrl-C stops)", flush=True)
    listener = RestartListener(config, supervisor.restart_requests)
    listener.start()
    supervisor.start()
    next_table = started + min(status_every, 3.0)
    next_progress = started + 1.0
    page_shown = False
    try:
        while time.monotonic() < deadline:
            supervisor.poll()
            now = time.monotonic()
            if now >= next_table:
                status = _status(config) or status
                if status is not None and not page_shown:
                    page_shown = _show_status_page(status, config_path)
                if status is not None:
                    print(f"\n[{now - started:5.0f}s]\n{status_table(status)}", flush=True)
                next_table = time.monotonic() + status_every
            elif now >= next_progress and status is not None:
                line = _progress(_status(config) or status, now - started, minutes * 60)
                if sys.stdout.isatty():
                    print(f"\r{line}", end="", flush=True)
                    next_progress = now + 1.0
                else:  # a log file: one line every few seconds, no carriage returns
                    print(line, flush=True)
                    next_progress = now + 5.0
            time.sleep(0.2)
        status = _status(config) or status
    except (KeyboardInterrupt, _Stop):
        print("\nstopping…", flush=True)
    finally:
        signal.signal(signal.SIGTERM, previous)
        codes = supervisor.stop()
        listener.stop()
    sim_stats = sim.simulator.stats
    summary = build_summary(config, status, codes, supervisor, time.monotonic() - started,
                            {"requests_total": sim_stats.requests_total, "weight_total": sim_stats.weight_total,
                             "order_requests": sim_stats.order_requests, "answered_429": sim_stats.answered_429})
    (logs / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    print("\n\nsummary")
    if status is not None:
        print(status_table(status))
    print(summary_table(summary))
    print(f"written to {logs / 'summary.json'}")
    return 0 if all(code == 0 for code in codes.values()) else 1


def _show_status_page(status: SystemStatus, config_path: Path) -> bool:
    coordinator = next((a for a in status.agents.values() if a.kind is AgentKind.COORDINATOR and a.http_port),
                       None)
    if coordinator is None:
        return False
    print(f"status page: http://127.0.0.1:{coordinator.http_port}/   "
          f"(also: tradingbot status --config {config_path})", flush=True)
    return True


def _progress(status: SystemStatus, elapsed: float, total: float) -> str:
    trading = status.trading
    return (f"[{elapsed:4.0f}/{total:.0f}s] health {status.system_stats.system_health:5.1f}%  "
            f"agents {status.system_stats.agents_ok}/{status.system_stats.agents_total} ok  "
            f"exchange calls {status.market_data.exchange_calls}  trades {trading.trades}  ")


def build_summary(config: Config, status: SystemStatus | None, codes: dict[str, int | None],
                  supervisor: Supervisor, ran_s: float, exchange: dict[str, int]) -> dict[str, Any]:
    trading = status.trading if status else None
    data_agents = [a for a in status.agents.values() if a.kind is AgentKind.DATA] if status else []
    # Without the data agent every look-up, and every push to every interested consumer, would
    # have been an exchange request of its own.
    naive = int(sum(a.stats.get("lookups", 0.0) + a.stats.get("push_deliveries", 0.0) for a in data_agents))
    return {
        "bot": f"{config.bot.namespace}/{config.bot.name}",
        "ran_s": round(ran_s, 1),
        "exit_codes": codes,
        "restarts": supervisor.restarts(),
        # A system without the data agent makes one exchange call per look-up; the simulator
        # counted what was really sent.
        "exchange_calls": exchange["requests_total"],
        "exchange_calls_naive_estimate": naive,
        "exchange_weight": exchange["weight_total"],
        "order_endpoint_calls": exchange["order_requests"],
        "http_429": exchange["answered_429"],
        "cache_hit_rate_pct": status.cache_stats.hit_rate_percent if status else None,
        "lookup_p50_ms": max((a.stats.get("lookup_p50_ms", 0.0) for a in data_agents), default=None),
        "lookup_p99_ms": max((a.stats.get("lookup_p99_ms", 0.0) for a in data_agents), default=None),
        "trades": trading.trades if trading else 0,
        "pnl": trading.pnl if trading else None,
        "var_95": trading.var_95 if trading else None,
        "sharpe": trading.sharpe if trading else None,
        "max_drawdown": trading.max_drawdown if trading else None,
        "system_health_pct": status.system_stats.system_health if status else None,
        "status": status.model_dump(mode="json") if status else None,
    }


def summary_table(summary: dict[str, Any]) -> str:
    def fmt(value: Any, suffix: str = "") -> str:
        if value is None:
            return "-"
        return f"{value:.4g}{suffix}" if isinstance(value, float) else f"{value}{suffix}"

    rows = [
        ("exchange calls (simulator count)", fmt(summary["exchange_calls"])),
        ("  naive estimate (look-ups + pushes)", fmt(summary["exchange_calls_naive_estimate"])),
        ("orders sent to the exchange", fmt(summary["order_endpoint_calls"])),
        ("HTTP 429 answered", fmt(summary["http_429"])),
        ("cache hit rate", fmt(summary["cache_hit_rate_pct"], "%")),
        ("look-up latency p50 / p99",
         f"{fmt(summary['lookup_p50_ms'], ' ms')} / {fmt(summary['lookup_p99_ms'], ' ms')}"),
        ("trades (paper)", fmt(summary["trades"])),
        ("PnL (USDT)", fmt(summary["pnl"])),
        ("VaR 95% (1h, of equity)", fmt(summary["var_95"])),
        ("Sharpe (annualised)", fmt(summary["sharpe"])),
        ("max drawdown", fmt(summary["max_drawdown"])),
        ("restarts", fmt(summary["restarts"])),
        ("exit codes", fmt(summary["exit_codes"])),
    ]
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"  {label:<{width}}  {value}" for label, value in rows)


def _status(config: Config) -> SystemStatus | None:
    try:
        return asyncio.run(fetch_status(config, timeout=2.0))
    except Exception as exc:
        log.info("no status yet: %s", exc)
        return None
