"""Run agents as local OS processes and restart the ones that die, with backoff.

This is what Kubernetes does for the operator's Deployments, for local runs (``make demo``): one
process per agent, restarted when it exits unexpectedly, stopped with SIGTERM (then SIGKILL after
the grace period) on shutdown.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tradingbot_agents.kinds import AgentKind

log = logging.getLogger(__name__)


@dataclass
class Child:
    kind: AgentKind
    args: list[str]
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    last_exit: int | None = None
    next_start: float = 0.0
    backoff: float = 1.0
    started_at: float = field(default=0.0)


class Supervisor:
    def __init__(self, kinds: list[AgentKind], *, env: Mapping[str, str], log_dir: Path,
                 config_path: str | None = None, max_backoff: float = 30.0) -> None:
        self.env = dict(env)
        self.log_dir = log_dir
        self.max_backoff = max_backoff
        self.children: list[Child] = []
        for kind in kinds:
            args = [sys.executable, "-P", "-m", "tradingbot_agents", "agent", "run", kind.cli,
                    "--log-dir", str(log_dir)]
            if config_path:
                args += ["--config", config_path]
            self.children.append(Child(kind, args))

    def _spawn(self, child: Child) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        out = (self.log_dir / f"{child.kind.config_section}.stderr.log").open("ab")
        child.process = subprocess.Popen(child.args, env=self.env, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        out.close()
        child.started_at = time.monotonic()

    def start(self) -> None:
        for child in self.children:
            self._spawn(child)

    def poll(self) -> None:
        """Restart children that exited, with exponential backoff reset after a healthy minute."""
        now = time.monotonic()
        for child in self.children:
            proc = child.process
            if proc is not None and proc.poll() is None:
                if now - child.started_at > 60:
                    child.backoff = 1.0
                continue
            if proc is not None:
                child.last_exit = proc.returncode
                child.process = None
                child.next_start = now + child.backoff
                log.warning("%s exited with code %s; restarting in %.0fs", child.kind.cli, child.last_exit,
                            child.backoff)
                child.backoff = min(child.backoff * 2, self.max_backoff)
            if child.process is None and now >= child.next_start:
                child.restarts += 1
                self._spawn(child)

    def stop(self, grace: float = 10.0) -> dict[str, int | None]:
        """SIGTERM every child, wait up to ``grace`` seconds, SIGKILL the rest. Returns exit codes."""
        for child in self.children:
            if child.process is not None and child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        codes: dict[str, int | None] = {}
        for child in self.children:
            proc = child.process
            if proc is None:
                codes[child.kind.cli] = child.last_exit
                continue
            try:
                codes[child.kind.cli] = proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                codes[child.kind.cli] = proc.wait()
        return codes


def child_env(base: Mapping[str, str] | None = None, **overrides: str) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    env.update(overrides)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env
