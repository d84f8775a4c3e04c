"""A short `make demo` run: its own servers (no NATS_URL/REDIS_URL), status tables, clean stop,
nothing sent to an order endpoint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.procs import REPO
from tradingbot_agents.catalog import implemented

pytestmark = pytest.mark.slow


def test_demo_runs_and_stops_cleanly(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("NATS_URL", "REDIS_URL")}
    result = subprocess.run(
        [sys.executable, "-P", "-m", "tradingbot_agents", "demo", "--minutes", "0.25", "--status-every", "5",
         "--log-dir", str(tmp_path / "logs")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "nats://127.0.0.1:" in result.stdout and ":4222" not in result.stdout
    assert "exchange simulator http://127.0.0.1:" in result.stdout
    assert "status page: http://127.0.0.1:" in result.stdout
    summary = json.loads((tmp_path / "logs" / "summary.json").read_text())
    assert summary["exit_codes"] and set(summary["exit_codes"].values()) == {0}
    kinds = {kind.cli for kind in implemented()}
    assert {name.rsplit("-", 1)[0] if name[-1].isdigit() else name for name in summary["exit_codes"]} == kinds
    assert summary["order_endpoint_calls"] == 0  # shadow mode: never an order to the exchange
    status = summary["status"]
    assert status is not None
    assert {a["kind"] for a in status["agents"].values()} == kinds
    failed = [a["agent_id"] for a in status["agents"].values() if a["health"]["status"] == "failed"]
    assert not failed, failed
    assert (tmp_path / "logs" / "coordinator_agent.log").read_text().count("started") >= 1
    assert (tmp_path / "logs" / "demo-config.yaml").exists()
