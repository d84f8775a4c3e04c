"""The coordinator over real NATS: pair plans for live workers, restart requests, the status page."""

from __future__ import annotations

import asyncio
import shutil
import struct
import subprocess
import zlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from nats.aio.msg import Msg
from prometheus_client import CollectorRegistry

from tests.helpers.standin import make_standin
from tradingbot_agents.bus import Bus
from tradingbot_agents.config import Config
from tradingbot_agents.coordinator.agent import CoordinatorAgent
from tradingbot_agents.kinds import AgentKind
from tradingbot_agents.messages import ActivePairs, HealthStatus, PairAssignment, RestartRequest, RiskSnapshot
from tradingbot_agents.metrics import BusMetrics

PAIRS = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "ADAUSDT"]


@pytest.fixture
async def client(make_config: Callable[..., Config]) -> AsyncIterator[Bus]:
    bus = Bus(make_config().nats, name="client", metrics=BusMetrics(CollectorRegistry()))
    await bus.connect()
    yield bus
    await bus.close()


async def test_assignment_spreads_active_pairs_over_live_workers(
    make_config: Callable[..., Config], started, client: Bus
) -> None:
    config = make_config()
    coordinator = await started(CoordinatorAgent(config))
    worker_cls = make_standin(AgentKind.TRADING_WORKER)
    workers = [await started(worker_cls(config, instance=f"w{n}")) for n in range(2)]
    plans: list[PairAssignment] = []

    async def on_plan(plan: PairAssignment, _msg: Msg) -> None:
        plans.append(plan)

    await client.subscribe(coordinator.subjects.assignment, PairAssignment, on_plan)
    await client.publish(coordinator.subjects.pairs_active, ActivePairs(pairs=PAIRS))
    for _ in range(100):
        if plans and len(plans[-1].assignments) == 2:
            break
        await asyncio.sleep(0.05)
    plan = plans[-1].assignments
    assert set(plan) == {w.agent_id for w in workers}
    assert sorted(p for pairs in plan.values() for p in pairs) == sorted(PAIRS)
    assert all(plan.values()), "both live workers get pairs (shares follow their reported load)"
    status = coordinator.get_system_status()
    assert status.trading.pairs_active == PAIRS and status.trading.assignment == plan

    # A pair the selector dropped while a position is open stays assigned, so it can be closed.
    await client.publish(coordinator.subjects.risk_metrics,
                         RiskSnapshot(exposure_by_symbol={"LINKUSDT": 150.0, "BTCUSDT": 80.0, "DOTUSDT": 0.0}))
    for _ in range(100):
        if "LINKUSDT" in {p for pairs in plans[-1].assignments.values() for p in pairs}:
            break
        await asyncio.sleep(0.05)
    assigned = sorted(p for pairs in plans[-1].assignments.values() for p in pairs)
    assert assigned == sorted([*PAIRS, "LINKUSDT"])  # DOTUSDT has no exposure: not kept

    # One worker dies: its pairs go to the other within a few heartbeat timeouts.
    dead = workers[0]
    dead.request_stop()
    for _ in range(100):
        if plans[-1].assignments.keys() == {workers[1].agent_id}:
            break
        await asyncio.sleep(0.05)
    assert plans[-1].assignments == {workers[1].agent_id: sorted([*PAIRS, "LINKUSDT"])}


async def test_an_agent_that_stays_failed_gets_a_restart_request(
    make_config: Callable[..., Config], started, client: Bus
) -> None:
    config = make_config(coordinator={"restart_after": 0.3, "restart_backoff_max": 5})
    coordinator = await started(CoordinatorAgent(config))
    sick = await started(make_standin(AgentKind.RISK)(config))
    requests: list[RestartRequest] = []

    async def on_request(request: RestartRequest, _msg: Msg) -> None:
        requests.append(request)

    await client.subscribe(coordinator.subjects.restart, RestartRequest, on_request)
    sick.health.set("feeds", HealthStatus.FAILED, "all price feeds down")
    for _ in range(100):
        if requests:
            break
        await asyncio.sleep(0.05)
    assert requests, "no restart request"
    request = requests[0]
    assert request.agent_id == sick.agent_id and request.attempt == 1
    assert "all price feeds down" in request.reason and request.pid is not None
    await asyncio.sleep(0.4)
    assert len(requests) == 1  # backoff: not again right away


def _png_size_and_colours(path: Path) -> tuple[int, int, int]:
    """Width, height and the number of distinct colours of an 8-bit RGB(A) PNG, decoded by hand
    (no imaging library): enough to tell a rendered page from a blank one."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height, colour_type = 8, b"", 0, 0, 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, _depth, colour_type = struct.unpack(">IIBB", chunk[:10])
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    channels = 4 if colour_type == 6 else 3
    raw = zlib.decompress(idat)
    stride = width * channels
    colours: set[bytes] = set()
    previous = bytearray(stride)
    for row in range(height):
        start = row * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        for i in range(stride):  # undo the PNG filters
            left = line[i - channels] if i >= channels else 0
            up, up_left = previous[i], previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - up_left
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - up_left)
                pred = left if pa <= pb and pa <= pc else up if pb <= pc else up_left
                line[i] = (line[i] + pred) & 0xFF
        if row % 8 == 0:
            colours.update(bytes(line[i:i + 3]) for i in range(0, stride, channels * 4))
        previous = line
    return width, height, len(colours)


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROME_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--hide-scrollbars", "--virtual-time-budget=4000"]


async def test_status_page_in_headless_chromium(
    make_config: Callable[..., Config], started, tmp_path: Path
) -> None:
    assert CHROMIUM, "chromium is missing: `make test` installs it (`make tools`)"
    config = make_config()
    coordinator = await started(CoordinatorAgent(config))
    await started(make_standin(AgentKind.DATA)(config))
    await asyncio.sleep(0.6)
    url = f"http://127.0.0.1:{coordinator.http_port}/"
    async with httpx.AsyncClient() as http:
        assert "tradingbot" in (await http.get(url)).text
    flags = [*CHROME_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    # The DOM after the page's script ran: the table was filled from /status.
    dom = await asyncio.to_thread(subprocess.run, [CHROMIUM, *flags, "--dump-dom", url],
                                  capture_output=True, text=True, timeout=90)
    assert coordinator.agent_id in dom.stdout, dom.stderr[-2000:]
    assert "data." in dom.stdout and "100.0%" in dom.stdout
    shot = tmp_path / "status.png"
    result = await asyncio.to_thread(subprocess.run, [CHROMIUM, *flags, "--window-size=1280,720",
                                                      f"--screenshot={shot}", url],
                                     capture_output=True, text=True, timeout=90)
    assert shot.exists(), result.stderr[-2000:]
    width, height, colours = _png_size_and_colours(shot)
    assert (width, height) == (1280, 720)
    assert colours > 8, "the screenshot is (nearly) blank"
    artifacts = Path(__file__).resolve().parents[1] / "artifacts"
    artifacts.mkdir(exist_ok=True)
    shutil.copy(shot, artifacts / "status_page.png")
