"""The agent runtime: what every agent stands on, so an agent module holds only its own logic.

An agent subclasses :class:`Agent` and fills in hooks (``setup``, ``run``, ``teardown``,
``stats``, ``add_routes``). The runtime gives it:

* lifecycle: start, run, graceful stop on SIGTERM/SIGINT (stop taking messages, drain what is in
  flight, exit 0 within ``shutdown_timeout``), and a crash → the cause logged, exit code 1;
* a bus connection (:class:`~tradingbot_agents.bus.Bus`) with the bot's subjects;
* heartbeats every ``heartbeat_interval`` with health (worst of the agent's components) and load
  (event-loop lag, queue depth, messages/s, CPU, RSS);
* an HTTP server: ``/healthz`` (liveness), ``/readyz`` (bus connected, dependencies up), ``/metrics``.

Liveness deliberately does not follow health: an agent that is ``failed`` because the exchange
banned its IP would gain nothing from a restart, so ``/healthz`` only says the event loop answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
from collections.abc import Awaitable, Callable
from typing import ClassVar

import psutil
import uvicorn
from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from tradingbot_agents.bus import Bus, BusError
from tradingbot_agents.config import Config
from tradingbot_agents.kinds import AgentKind
from tradingbot_agents.messages import Health, HealthStatus, Heartbeat, Load, Subjects, sanitize_token
from tradingbot_agents.metrics import BusMetrics, RuntimeMetrics

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_CRASH = 1


class HealthBoard:
    """Health per component ("bus", "redis", "exchange", …); the agent's health is the worst."""

    def __init__(self) -> None:
        self._components: dict[str, Health] = {}

    def set(self, component: str, status: HealthStatus, reason: str = "") -> None:
        previous = self._components.get(component)
        current = Health(status=status, reason=reason)
        if previous != current:
            level = logging.INFO if status is HealthStatus.OK else logging.WARNING
            log.log(level, "health of %s: %s%s", component, status.value, f" ({reason})" if reason else "")
        self._components[component] = current

    def ok(self, component: str) -> None:
        self.set(component, HealthStatus.OK)

    def overall(self) -> Health:
        worst = Health()
        reasons = []
        for name, health in self._components.items():
            if health.status is not HealthStatus.OK:
                reasons.append(f"{name}: {health.reason or health.status.value}")
            if health.status.rank > worst.status.rank:
                worst = health
        return Health(status=worst.status, reason="; ".join(reasons))

    def components(self) -> dict[str, Health]:
        return dict(self._components)


class LoopLagMonitor:
    """Samples event-loop lag: how late a short sleep wakes up. A busy or blocked loop shows here
    before it shows anywhere else, which is why the operator scales on it."""

    def __init__(self, interval: float = 0.25) -> None:
        self.interval = interval
        self.lag_s = 0.0
        self._max_since_read = 0.0

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            await asyncio.sleep(self.interval)
            self.lag_s = max(0.0, loop.time() - start - self.interval)
            self._max_since_read = max(self._max_since_read, self.lag_s)

    def read_max(self) -> float:
        value, self._max_since_read = self._max_since_read, 0.0
        return value


class _QuietServer(uvicorn.Server):
    """uvicorn without its own signal handling: the agent owns SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self):  # type: ignore[no-untyped-def,override]
        yield


def default_instance() -> str:
    """Pod name in Kubernetes (HOSTNAME), host and pid locally: unique per running process."""
    host = os.environ.get("HOSTNAME") or socket.gethostname()
    return sanitize_token(f"{host}-{os.getpid()}")


class Agent:
    """Base class of every agent. Subclasses set ``kind`` and override the hooks they need."""

    kind: ClassVar[AgentKind]

    def __init__(self, config: Config, *, instance: str | None = None,
                 registry: CollectorRegistry | None = None) -> None:
        self.config = config
        self.instance = instance or default_instance()
        self.agent_id = f"{self.kind.value}.{self.instance}"
        self.subjects = Subjects(config.bot)
        self.registry = registry or CollectorRegistry()
        self.runtime_metrics = RuntimeMetrics(self.registry)
        self.runtime_metrics.info.labels(self.kind.value, self.agent_id, self.subjects.prefix).set(1)
        self.bus = Bus(config.nats, name=self.agent_id, metrics=BusMetrics(self.registry))
        self.health = HealthBoard()
        self.stopping = asyncio.Event()
        self.started_at = time.time()
        self.http_port: int | None = None
        self.ready = False
        self._lag = LoopLagMonitor()
        self._process = psutil.Process()
        self._process.cpu_percent(None)  # first call primes the counter
        self._seq = 0
        self._last_rate_sample = (time.monotonic(), 0)
        self._tasks: list[asyncio.Task[None]] = []

    # -- hooks for agents ---------------------------------------------------------------------
    async def setup(self) -> None:
        """Subscribe, connect to dependencies. Runs after the bus is connected."""

    async def run(self) -> None:
        """The agent's main loop. The default waits for stop; periodic work belongs here."""
        await self.stopping.wait()

    async def teardown(self) -> None:
        """Release resources; the bus is drained after this returns."""

    def stats(self) -> dict[str, float]:
        """Agent-specific numbers carried in each heartbeat (the coordinator aggregates them)."""
        return {}

    def add_routes(self, app: FastAPI) -> None:
        """Add agent-specific HTTP routes beside /healthz, /readyz and /metrics."""

    def readiness(self) -> dict[str, bool]:
        """Dependencies that must be up to serve. The bus is always one."""
        return {"bus": self.bus.connected}

    # -- helpers for agents -------------------------------------------------------------------
    def spawn(self, coro: Awaitable[None], name: str) -> asyncio.Task[None]:
        """A background task owned by the runtime: if it crashes, the agent crashes (exit 1) rather
        than limping on with a dead loop nobody notices."""
        task = asyncio.ensure_future(coro)
        task.set_name(name)
        self._tasks.append(task)
        return task

    async def every(self, interval: float, work: Callable[[], Awaitable[None]]) -> None:
        """Run ``work`` every ``interval`` seconds until stop; a failing round is logged, not fatal."""
        while not self.stopping.is_set():
            try:
                await work()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("periodic %s failed", getattr(work, "__name__", "work"))
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), interval)

    def request_stop(self) -> None:
        if not self.stopping.is_set():
            log.info("stop requested")
            self.stopping.set()

    # -- heartbeats ---------------------------------------------------------------------------
    def load(self) -> Load:
        now = time.monotonic()
        last_t, last_n = self._last_rate_sample
        received = self.bus.received_total
        rate = (received - last_n) / (now - last_t) if now > last_t else 0.0
        self._last_rate_sample = (now, received)
        depth = self.bus.queue_depth if self.bus.connected else 0
        lag = self._lag.read_max()
        self.runtime_metrics.loop_lag.set(lag)
        self.runtime_metrics.queue_depth.set(depth)
        return Load(
            loop_lag_ms=round(lag * 1000, 3),
            queue_depth=depth,
            msgs_per_s=round(max(rate, 0.0), 3),
            cpu_percent=self._process.cpu_percent(None),
            rss_mb=round(self._process.memory_info().rss / 2**20, 2),
        )

    def heartbeat(self) -> Heartbeat:
        health = self.health.overall()
        self.runtime_metrics.health.set(health.status.rank)
        beat = Heartbeat(
            agent_id=self.agent_id, kind=self.kind, instance=self.instance, pid=os.getpid(),
            seq=self._seq, interval_s=self.config.runtime.heartbeat_interval,
            started_at=self.started_at, http_port=self.http_port, health=health, load=self.load(),
            stats=self.stats(),
        )
        self._seq += 1
        return beat

    async def _heartbeat_loop(self) -> None:
        subject = self.subjects.heartbeat(self.kind, self.instance)

        async def beat() -> None:
            if self.bus.connected:
                await self.bus.publish(subject, self.heartbeat())
                self.runtime_metrics.heartbeats.inc()

        await self.every(self.config.runtime.heartbeat_interval, beat)

    # -- HTTP ---------------------------------------------------------------------------------
    def build_app(self) -> FastAPI:
        app = FastAPI(title=f"tradingbot {self.kind.value}", docs_url=None, redoc_url=None,
                      openapi_url=None)

        @app.get("/healthz")
        async def healthz() -> JSONResponse:
            health = self.health.overall()
            return JSONResponse({"alive": True, "agent_id": self.agent_id, "health": health.model_dump()})

        @app.get("/readyz")
        async def readyz() -> JSONResponse:
            checks = self.readiness()
            ready = self.ready and all(checks.values())
            return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)

        @app.get("/metrics")
        async def metrics() -> Response:
            return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)

        self.add_routes(app)
        return app

    async def _start_http(self) -> _QuietServer:
        settings = self.config.runtime
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((settings.http_host, settings.http_port))
        self.http_port = sock.getsockname()[1]
        server = _QuietServer(uvicorn.Config(self.build_app(), log_config=None, access_log=False,
                                             lifespan="off", timeout_graceful_shutdown=1))
        self.spawn(server.serve(sockets=[sock]), "http")
        while not server.started:
            await asyncio.sleep(0.01)
        log.info("HTTP on %s:%d (/healthz /readyz /metrics)", settings.http_host, self.http_port)
        return server

    # -- lifecycle ----------------------------------------------------------------------------
    async def serve(self) -> int:
        """Run until stopped (exit 0) or crashed (exit 1)."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.request_stop)
        try:
            return await self._serve()
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(sig)

    async def _serve(self) -> int:
        code = EXIT_OK
        server: _QuietServer | None = None
        run_task: asyncio.Task[None] | None = None
        try:
            self.spawn(self._lag.run(), "loop-lag")
            server = await self._start_http()
            self.health.set("bus", HealthStatus.FAILED, "connecting")
            await self.bus.connect(self.stopping)
            self.health.ok("bus")
            await self.setup()
            self.spawn(self._heartbeat_loop(), "heartbeat")
            self.ready = True
            log.info("%s %s started", self.kind.value, self.agent_id)
            run_task = asyncio.ensure_future(self.run())
            stop_task = asyncio.ensure_future(self.stopping.wait())
            watched = {run_task, stop_task, *self._tasks}
            done, _ = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
            stop_task.cancel()
            for task in done:
                if task is stop_task or task.cancelled():
                    continue
                if task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
                if task is not run_task and not self.stopping.is_set():
                    # Periodic loops end by themselves once stop is requested; before that, a
                    # loop that returns is a bug that would leave the agent half alive.
                    raise RuntimeError(f"background task {task.get_name()!r} ended unexpectedly")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if self.stopping.is_set() and isinstance(exc, BusError):
                code = EXIT_OK
            else:
                log.exception("agent crashed: %s", exc)
                code = EXIT_CRASH
        finally:
            self.ready = False
            self.stopping.set()
            code = await self._shutdown(run_task, server, code)
        return code

    async def _shutdown(self, run_task: asyncio.Task[None] | None, server: _QuietServer | None,
                        code: int) -> int:
        timeout = self.config.runtime.shutdown_timeout
        deadline = time.monotonic() + timeout
        if run_task is not None and not run_task.done():
            try:
                await asyncio.wait_for(run_task, max(0.1, deadline - time.monotonic()) / 2)
            except (TimeoutError, asyncio.CancelledError):
                pass
            except Exception:
                log.exception("run() failed while stopping")
        try:
            await asyncio.wait_for(self.teardown(), max(0.1, deadline - time.monotonic()))
        except Exception:
            log.exception("teardown failed")
            code = code or EXIT_CRASH
        await self.bus.drain(max(0.1, deadline - time.monotonic()))
        if server is not None:
            server.should_exit = True
        for task in self._tasks:
            if task.get_name() != "http":
                task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        log.info("%s stopped (exit %d)", self.agent_id, code)
        return code


def run_agent(agent_factory: Callable[[], Agent]) -> int:
    """Process entry point: build the agent inside the event loop and serve it."""

    async def main() -> int:
        return await agent_factory().serve()

    return asyncio.run(main())
