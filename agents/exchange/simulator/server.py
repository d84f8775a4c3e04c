"""Run the simulator with uvicorn on a free loopback port, in a background thread.

Binding the socket ourselves (port 0) and handing it to uvicorn avoids the pick-a-port-then-bind
race that makes parallel test runs flaky. A thread (not a subprocess) keeps start-up under a
second and lets tests reach the :class:`Simulator` object directly (e.g. its manual clock).
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import threading
import time
from types import TracebackType
from typing import Self

import uvicorn

from tradingbot_agents.exchange.simulator.app import Simulator, SimulatorConfig, create_app
from tradingbot_agents.exchange.simulator.clock import ReplayClock


class SimulatorServer:
    """``with SimulatorServer(SimulatorConfig(...)) as server: server.url``."""

    def __init__(self, config: SimulatorConfig | None = None, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.simulator = Simulator(config)
        self._built = time.monotonic()
        self.app = create_app(self.simulator)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted sockets inherit TCP_NODELAY: without it a streamed answer (headers, then body)
        # meets delayed ACK and every request costs ~40 ms on loopback.
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock.bind((host, port))
        self.host, self.port = self._sock.getsockname()[:2]
        self._server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning", access_log=False,
                                                     lifespan="off", timeout_keep_alive=30))
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout_s: float = 10.0) -> Self:
        def run() -> None:
            asyncio.run(self._server.serve(sockets=[self._sock]))

        self._thread = threading.Thread(target=run, name=f"exchange-sim-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("exchange simulator did not start")
            time.sleep(0.01)
        clock = self.simulator.clock
        if isinstance(clock, ReplayClock):  # the replay starts when the server does, not at build time
            clock.set(clock.now_ms() - int((time.monotonic() - self._built) * clock.speed * 3_600_000))
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._sock.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    """``python -m tradingbot_agents.exchange.simulator --port 8765 --speed 60``."""
    parser = argparse.ArgumentParser(description="Binance USDⓈ-M futures simulator replaying shipped klines")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--speed", type=float, default=1.0, help="candles (hours) per wall second")
    parser.add_argument("--start-ms", type=int, default=None)
    parser.add_argument("--weight-limit", type=int, default=2400)
    args = parser.parse_args(argv)
    config = SimulatorConfig(speed=args.speed, start_ms=args.start_ms, weight_limit=args.weight_limit)
    uvicorn.run(create_app(Simulator(config)), host=args.host, port=args.port, log_level="info")
