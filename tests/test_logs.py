"""Logs: per-agent files locally, JSON lines on stdout in a container, --debug verbosity."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from tradingbot_agents.config import RuntimeSettings
from tradingbot_agents.kinds import AgentKind
from tradingbot_agents.logs import configure_logging


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def test_json_on_stdout_in_a_container(monkeypatch, capsys) -> None:
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    configure_logging(AgentKind.RISK, RuntimeSettings())
    logging.getLogger("tradingbot_agents.test").warning("VaR over limit: %s", 0.07)
    line = capsys.readouterr().out.strip().splitlines()[-1]
    entry = json.loads(line)
    assert entry["level"] == "warning" and entry["agent"] == "risk"
    assert entry["msg"] == "VaR over limit: 0.07" and entry["ts"].endswith("Z")


def test_per_agent_file_and_debug(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    configure_logging(AgentKind.DATA, RuntimeSettings(log_dir=str(tmp_path), debug=True))
    logging.getLogger("tradingbot_agents.test").debug("cache warm")
    for handler in logging.getLogger().handlers:
        handler.flush()
    assert "cache warm" in (tmp_path / "data_agent.log").read_text()


def test_info_hides_debug(tmp_path: Path) -> None:
    configure_logging(AgentKind.DATA, RuntimeSettings(log_dir=str(tmp_path), log_format="text"))
    logging.getLogger("tradingbot_agents.test").debug("noise")
    logging.getLogger("tradingbot_agents.test").info("signal")
    for handler in logging.getLogger().handlers:
        handler.flush()
    text = (tmp_path / "data_agent.log").read_text()
    assert "signal" in text and "noise" not in text
