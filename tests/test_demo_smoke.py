"""A short `make demo` run: its own servers (no NATS_URL/REDIS_URL), status tables, clean stop."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.procs import REPO

pytestmark = pytest.mark.slow


def test_demo_runs_and_stops_cleanly(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("NATS_URL", "REDIS_URL")}
    result = subprocess.run(
        [sys.executable, "-P", "-m", "tradingbot_agents", "demo", "--minutes", "0.1", "--status-every", "2",
         "--log-dir", str(tmp_path / "logs")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "nats://127.0.0.1:" in result.stdout and ":4222" not in result.stdout
    assert "health 100.0%" in result.stdout
    assert "exchange simulator http://127.0.0.1:" in result.stdout
    summary = json.loads((tmp_path / "logs" / "summary.json").read_text())
    assert summary["exit_codes"] == {"coordinator": 0, "data": 0}
    assert summary["status"]["system_stats"]["system_health"] == 100.0
    assert (tmp_path / "logs" / "coordinator_agent.log").read_text().count("started") >= 1
