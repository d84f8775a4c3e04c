"""Start agents as real OS processes for tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from tradingbot_agents.config import Config

REPO = Path(__file__).resolve().parents[2]


def write_config(config: Config, path: Path) -> Path:
    path.write_text(yaml.safe_dump(config.model_dump(mode="json")), encoding="utf-8")
    return path


class AgentProcess:
    def __init__(self, args: list[str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("wb")
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRADINGBOT__")}
        env["PYTHONUNBUFFERED"] = "1"
        self.proc = subprocess.Popen([sys.executable, "-P", *args], cwd=REPO, stdout=self._log,
                                     stderr=subprocess.STDOUT, env=env)

    @classmethod
    def product(cls, kind: str, config_path: Path, log_path: Path) -> AgentProcess:
        return cls(["-m", "tradingbot_agents", "agent", "run", kind, "--config", str(config_path)], log_path)

    @classmethod
    def standin(cls, kind: str, config_path: Path, log_path: Path) -> AgentProcess:
        script = REPO / "tests" / "helpers" / "standin.py"
        return cls([str(script), "--kind", kind, "--config", str(config_path)], log_path)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def terminate_and_wait(self, timeout: float = 10.0) -> tuple[int, float]:
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        return code, time.monotonic() - started

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=5)

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self._log.close()
