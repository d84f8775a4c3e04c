"""Run agents as local OS processes and restart the ones that die, with backoff.

This is what Kubernetes does for the operator's Deployments, for local runs (``make demo``): one
process per agent, restarted when it exits unexpectedly, stopped with SIGTERM (then SIGKILL after
the grace period) on shutdown.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from nats.aio.msg import Msg
from prometheus_client import CollectorRegistry

from tradingbot_agents.bus import Bus
from tradingbot_agents.config import Config
from tradingbot_agents.kinds import AgentKind
from tradingbot_agents.messages import RestartRequest, Subjects
from tradingbot_agents.metrics import BusMetrics

log = logging.getLogger(__name__)


@dataclass
class Child:
    kind: AgentKind
    args: list[str]
    name: str = ""
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    last_exit: int | None = None
    next_start: float = 0.0
    backoff: float = 1.0
    started_at: float = field(default=0.0)


class Supervisor:
    def __init__(self, kinds: list[AgentKind], *, env: Mapping[str, str], log_dir: Path,
                 config_path: str | None = None, max_backoff: float = 30.0,
                 replicas: Mapping[AgentKind, int] | None = None) -> None:
        self.env = dict(env)
        self.restart_requests: queue.Queue[RestartRequest] = queue.Queue()
        self.log_dir = log_dir
        self.max_backoff = max_backoff
        self.children: list[Child] = []
        for kind in kinds:
            args = [sys.executable, "-P", "-m", "tradingbot_agents", "agent", "run", kind.cli,
                    "--log-dir", str(log_dir)]
            if config_path:
                args += ["--config", config_path]
            count = (replicas or {}).get(kind, 1)
            for index in range(count):
                name = kind.cli if count == 1 else f"{kind.cli}-{index + 1}"
                self.children.append(Child(kind, list(args), name=name))

    def _spawn(self, child: Child) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        out = (self.log_dir / f"{child.name}.stderr.log").open("ab")
        child.process = subprocess.Popen(child.args, env=self.env, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        out.close()
        child.started_at = time.monotonic()

    def start(self) -> None:
        for child in self.children:
            self._spawn(child)

    def _act_on_restart_requests(self) -> None:
        """The coordinator asked for a restart of an agent that stays failed but still runs (a hung
        process): stop it with SIGTERM; the loop below starts it again."""
        while True:
            try:
                request = self.restart_requests.get_nowait()
            except queue.Empty:
                return
            for child in self.children:
                proc = child.process
                if proc is not None and proc.poll() is None and proc.pid == request.pid:
                    log.warning("coordinator asked to restart %s (pid %d): %s", child.name, proc.pid,
                                request.reason)
                    proc.send_signal(signal.SIGTERM)

    def poll(self) -> None:
        """Restart children that exited, with exponential backoff reset after a healthy minute."""
        self._act_on_restart_requests()
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
                log.warning("%s exited with code %s; restarting in %.0fs", child.name, child.last_exit,
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
                codes[child.name] = child.last_exit
                continue
            try:
                codes[child.name] = proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                codes[child.name] = proc.wait()
        return codes

    def restarts(self) -> dict[str, int]:
        return {child.name: child.restarts for child in self.children}


class RestartListener:
    """Receives the coordinator's restart requests on a background thread (the supervisor's loop is
    synchronous) and hands them to the supervisor's queue."""

    def __init__(self, config: Config, sink: queue.Queue[RestartRequest]) -> None:
        self.config = config
        self.sink = sink
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="restart-listener", daemon=True)
        self._ready = threading.Event()

    def start(self, timeout: float = 10.0) -> None:
        self._thread.start()
        self._ready.wait(timeout)

    def _run(self) -> None:
        self._loop.run_until_complete(self._main())

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        bus = Bus(self.config.nats, name="supervisor", metrics=BusMetrics(CollectorRegistry()))
        try:
            await bus.connect(self._stop)

            async def on_request(request: RestartRequest, _msg: Msg) -> None:
                self.sink.put(request)

            await bus.subscribe(Subjects(self.config.bot).restart, RestartRequest, on_request)
            self._ready.set()
            await self._stop.wait()
        finally:
            self._ready.set()
            await bus.close()

    def stop(self) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=5)


def child_env(base: Mapping[str, str] | None = None, **overrides: str) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    env.update(overrides)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env
