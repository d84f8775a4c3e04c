"""The risk agent over real NATS (JetStream, KV), Redis, the data agent and the exchange simulator
replaying the shipped klines; Telegram is a local server replaying the recorded answer."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import nats.js.errors
import pytest
from prometheus_client import CollectorRegistry
from pydantic import SecretStr
from pytest_httpserver import HTTPServer

from tradingbot_agents.bus import Bus
from tradingbot_agents.config import Config, Secrets
from tradingbot_agents.data.agent import DataAgent
from tradingbot_agents.exchange.simulator.app import SimulatorConfig
from tradingbot_agents.exchange.simulator.server import SimulatorServer
from tradingbot_agents.messages import (
    Alert,
    ControlCommand,
    FillEvent,
    OrderIntent,
    RiskDecision,
    RiskSnapshot,
    Side,
    Subjects,
)
from tradingbot_agents.metrics import BusMetrics
from tradingbot_agents.risk.agent import BOOK_KEY, DURABLE, RiskAgent
from tradingbot_agents.risk.positions import PositionBook
from tradingbot_agents.runtime import Agent

PAYLOADS = Path(__file__).resolve().parents[2] / "data" / "payloads" / "telegram"
TOKEN = "424242:risk-agent-test-token"


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorServer]:
    with SimulatorServer(SimulatorConfig(manual_clock=True)) as server:
        clock = httpx.get(f"{server.url}/_sim/clock").json()
        httpx.post(f"{server.url}/_sim/clock", json={"time_ms": clock["data_start_ms"] + 60 * 86_400_000})
        yield server


def sim_price(sim: SimulatorServer, symbol: str) -> float:
    return float(httpx.get(f"{sim.url}/fapi/v1/ticker/price", params={"symbol": symbol}).json()["price"])


@pytest.fixture
def risk_config(make_config: Callable[..., Config], sim: SimulatorServer) -> Callable[..., Config]:
    def build(**risk: Any) -> Config:
        settings = {"check_interval_seconds": 3600, "initial_equity": 10_000, "max_position_notional": 1_000,
                    "max_total_exposure": 5_000, "max_leverage": 3, "max_portfolio_var": 0.05, **risk}
        # A short shutdown timeout: nats-py leaves stale pull-fetch status messages un-"done" in
        # the pull subscription's queue, so a drain of a long-lived durable consumer waits out
        # its timeout (reported to the bus owner); 1 s keeps the test fast.
        return make_config(runtime={"shutdown_timeout": 1.0},
                           exchange={"base_url": sim.url, "egress": f"risk-{id(sim)}"},
                           data_agent={"poll_interval": 0.1, "kline_ttl": 30.0}, risk_agent=settings)

    return build


async def stop(agent: Agent) -> None:
    agent.request_stop()
    for _ in range(500):
        if not agent.ready and agent.bus.nc.is_closed:
            return
        await asyncio.sleep(0.02)


@pytest.fixture
async def client_bus(make_config: Callable[..., Config]) -> AsyncIterator[tuple[Bus, Subjects]]:
    config = make_config()
    bus = Bus(config.nats, name="risk-test-client", metrics=BusMetrics(CollectorRegistry()))
    await bus.connect()
    subjects = Subjects(config.bot)
    await bus.ensure_stream(subjects.fills_stream)
    await bus.ensure_stream(subjects.alerts_stream)
    yield bus, subjects
    await bus.close()


async def eventually(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


def make_fill(n: int, symbol: str, side: Side, quantity: float, price: float) -> FillEvent:
    return FillEvent(fill_id=f"fill-{n}", client_order_id=f"order-{n}", worker_id="worker-1", symbol=symbol,
                     side=side, quantity=quantity, price=price, fee=round(quantity * price * 0.0004, 8),
                     mode="shadow")


async def publish_fill(bus: Bus, subjects: Subjects, fill: FillEvent) -> None:
    await bus.publish_durable(subjects.fills(fill.symbol), fill, msg_id=fill.fill_id)


async def ask(bus: Bus, subjects: Subjects, intent: OrderIntent) -> RiskDecision:
    return await bus.request(subjects.risk_check, intent, RiskDecision, timeout=5.0)


def intent(n: int, symbol: str, side: Side, notional: float, price: float, reduce_only: bool = False) -> OrderIntent:
    return OrderIntent(intent_id=f"intent-{n}", worker_id="worker-1", symbol=symbol, side=side,
                       quantity=round(notional / price, 6), price=price, reduce_only=reduce_only)


async def test_pre_trade_check_over_nats_vetoes_over_limit_and_approves_small(
        risk_config: Callable[..., Config], sim: SimulatorServer, started, client_bus) -> None:
    bus, subjects = client_bus
    config = risk_config()
    await started(DataAgent(config))
    risk = await started(RiskAgent(config, secrets=Secrets()))
    price = sim_price(sim, "BTCUSDT")

    big = await ask(bus, subjects, intent(1, "BTCUSDT", Side.BUY, 2_000, price))
    assert not big.approved
    assert "BTCUSDT position would be" in big.reason and "above max_position_notional 1,000.00 USDT" in big.reason
    assert big.checks["position_notional_after"] == pytest.approx(2_000, rel=1e-3)

    small = await ask(bus, subjects, intent(2, "BTCUSDT", Side.BUY, 200, price))
    assert small.approved, small.reason
    # The VaR it judged came from real klines served by the data agent: 2% of equity in BTC.
    assert 0 < small.checks["portfolio_var_95_after"] < 0.05 * 0.02 * 5
    assert risk.checks_approved == 1 and risk.checks_rejected == 1

    risky = await ask(bus, subjects, intent(3, "ETHUSDT", Side.SELL, 900, sim_price(sim, "ETHUSDT")))
    assert risky.approved, risky.reason  # a second symbol, history fetched on demand
    snapshot_sub: asyncio.Future[RiskSnapshot] = asyncio.get_running_loop().create_future()

    async def on_snapshot(snapshot: RiskSnapshot, _msg: Any) -> None:
        if not snapshot_sub.done():
            snapshot_sub.set_result(snapshot)

    await bus.subscribe(subjects.risk_metrics, RiskSnapshot, on_snapshot)
    await risk.check_once()
    published = await asyncio.wait_for(snapshot_sub, 5)
    assert published.open_positions == 0 and published.var_95_historical == 0.0  # nothing filled yet
    assert risk.stats()["var_95"] == 0.0 and risk.stats()["trades"] == 0
    async with httpx.AsyncClient() as http:  # the agent's own /metrics, served on this event loop
        metrics = (await http.get(f"http://127.0.0.1:{risk.http_port}/metrics")).text
    assert "tradingbot_risk_var_limit 0.05" in metrics
    assert 'tradingbot_risk_checks_total{result="rejected"} 1.0' in metrics


async def test_halted_rejects_new_exposure_and_approves_reduce_only(
        risk_config: Callable[..., Config], sim: SimulatorServer, started, client_bus) -> None:
    bus, subjects = client_bus
    config = risk_config().model_copy(update={"trading": Config().trading.model_copy(update={"halted": True})})
    await started(DataAgent(config))
    risk = await started(RiskAgent(config, secrets=Secrets()))
    price = sim_price(sim, "BTCUSDT")
    await publish_fill(bus, subjects, make_fill(1, "BTCUSDT", Side.BUY, 0.005, price))
    await eventually(lambda: risk.book.quantity("BTCUSDT") == pytest.approx(0.005))

    opening = await ask(bus, subjects, intent(1, "BTCUSDT", Side.BUY, 100, price))
    assert not opening.approved and "halted" in opening.reason
    reducing = await ask(bus, subjects, OrderIntent(intent_id="r1", worker_id="worker-1", symbol="BTCUSDT",
                                                    side=Side.SELL, quantity=0.005, price=price, reduce_only=True))
    assert reducing.approved, reducing.reason
    # The operator resumes trading: new exposure is judged by the limits again.
    await bus.publish(subjects.control, ControlCommand(command="resume", reason="test"))
    await eventually(lambda: not risk.halted)
    assert (await ask(bus, subjects, intent(2, "BTCUSDT", Side.BUY, 100, price))).approved
    await bus.publish(subjects.control, ControlCommand(command="halt", reason="test"))
    await eventually(lambda: risk.halted)
    assert not (await ask(bus, subjects, intent(3, "BTCUSDT", Side.BUY, 100, price))).approved


async def alerts_in_stream(bus: Bus, subjects: Subjects) -> list[Alert]:
    stream = subjects.alerts_stream.name
    info = await bus.js.stream_info(stream)
    alerts = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        with_data = await bus.js.get_msg(stream, seq)
        alerts.append(Alert.model_validate_json(with_data.data))
    return [a for a in alerts if a.kind]


async def test_alert_fires_once_inside_its_cooldown_then_again_after(
        risk_config: Callable[..., Config], sim: SimulatorServer, started, client_bus, httpserver: HTTPServer) -> None:
    bus, subjects = client_bus
    httpserver.expect_request(f"/bot{TOKEN}/sendMessage", method="POST").respond_with_json(
        json.loads((PAYLOADS / "sendMessage_ok.json").read_text()))
    cooldown_s = 1.5
    config = risk_config(max_portfolio_var=0.0001, alert_cooldown_minutes=cooldown_s / 60,
                         telegram_api_url=httpserver.url_for("/"))
    await started(DataAgent(config))
    risk = await started(RiskAgent(config, secrets=Secrets(telegram_bot_token=SecretStr(TOKEN),
                                                           telegram_chat_id="123456789")))
    price = sim_price(sim, "BTCUSDT")
    await publish_fill(bus, subjects, make_fill(1, "BTCUSDT", Side.BUY, round(300 / price, 6), price))
    await eventually(lambda: risk.book.trades == 1)

    first = await risk.check_once()
    second = await risk.check_once()  # the condition holds twice inside the cooldown
    for snapshot in (first, second):
        assert snapshot.var_95_historical is not None and snapshot.var_95_historical > 0.0001
    await eventually(lambda: len(httpserver.log) >= 1)
    await asyncio.sleep(0.3)  # a second message, if one were (wrongly) queued, would arrive by now
    assert len(httpserver.log) == 1
    stored = await alerts_in_stream(bus, subjects)
    assert [(a.kind, a.subject) for a in stored] == [("var_limit", "portfolio")]
    text = httpserver.log[0][0].get_json()["text"]
    assert "VaR(95%)" in text and "above the limit 0.01%" in text and TOKEN not in text

    await asyncio.sleep(cooldown_s)
    await risk.check_once()
    await eventually(lambda: len(httpserver.log) == 2)
    stored = await alerts_in_stream(bus, subjects)
    assert [(a.kind, a.subject) for a in stored] == [("var_limit", "portfolio")] * 2
    assert stored[0].alert_id != stored[1].alert_id
    stats = risk.stats()  # what the heartbeat carries to the coordinator
    assert stats["alerts"] == 2 and stats["trades"] == 1 and stats["open_positions"] == 1
    assert stats["var_95"] == pytest.approx(first.var_95_historical, rel=0.2)


async def test_telegram_flood_control_never_blocks_checks_or_the_durable_alert(
        risk_config: Callable[..., Config], sim: SimulatorServer, started, client_bus, httpserver: HTTPServer) -> None:
    bus, subjects = client_bus
    flood = {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 30",
             "parameters": {"retry_after": 30}}  # documented shape; no recorded 429 exists
    httpserver.expect_request(f"/bot{TOKEN}/sendMessage", method="POST").respond_with_json(flood, status=429)
    config = risk_config(max_portfolio_var=0.0001, telegram_api_url=httpserver.url_for("/"))
    await started(DataAgent(config))
    risk = await started(RiskAgent(config, secrets=Secrets(telegram_bot_token=SecretStr(TOKEN),
                                                           telegram_chat_id="123456789")))
    price = sim_price(sim, "BTCUSDT")
    await publish_fill(bus, subjects, make_fill(1, "BTCUSDT", Side.BUY, round(300 / price, 6), price))
    await eventually(lambda: risk.book.trades == 1)
    await risk.check_once()
    await eventually(lambda: len(httpserver.log) == 1)  # Telegram said "wait 30 s"; the notifier waits
    loop = asyncio.get_running_loop()
    started_at = loop.time()
    decision = await ask(bus, subjects, intent(9, "BTCUSDT", Side.BUY, 10, price))
    snapshot = await risk.check_once()
    assert loop.time() - started_at < 1.5
    assert decision.intent_id == "intent-9" and snapshot.trades == 1
    assert [a.kind for a in await alerts_in_stream(bus, subjects)] == ["var_limit"]  # recorded regardless


async def test_positions_rebuilt_after_restart_nothing_lost_nothing_double_counted(
        risk_config: Callable[..., Config], started, client_bus) -> None:
    bus, subjects = client_bus
    config = risk_config()
    fills = [
        make_fill(1, "BTCUSDT", Side.BUY, 0.004, 95_000.0),
        make_fill(2, "ETHUSDT", Side.SELL, 0.2, 3_500.0),
        make_fill(3, "BTCUSDT", Side.BUY, 0.002, 96_500.0),
        make_fill(4, "BTCUSDT", Side.SELL, 0.003, 97_000.0),  # while the agent is down
        make_fill(5, "ETHUSDT", Side.BUY, 0.05, 3_400.0),
    ]
    expected = PositionBook()
    for fill in fills:
        expected.apply(fill)

    def same_positions(book: PositionBook) -> None:
        assert book.trades == len(fills)
        for symbol, position in expected.positions.items():
            got = book.positions[symbol]
            assert got.quantity == pytest.approx(position.quantity)
            assert got.entry_price == pytest.approx(position.entry_price)
            assert got.realized_pnl == pytest.approx(position.realized_pnl)
            assert got.fees == pytest.approx(position.fees)

    for fill in fills[:3]:
        await publish_fill(bus, subjects, fill)
    first = await started(RiskAgent(config, secrets=Secrets(), instance="first"))
    await eventually(lambda: first.book.trades == 3)
    await stop(first)

    for fill in fills[3:]:
        await publish_fill(bus, subjects, fill)
    await publish_fill(bus, subjects, fills[3])  # a publisher retry: de-duplicated by JetStream
    second = await started(RiskAgent(config, secrets=Secrets(), instance="second"))
    await eventually(lambda: second.book.trades == 5)
    await asyncio.sleep(0.3)  # anything more would be double counting
    same_positions(second.book)
    assert second.stats()["open_positions"] == 2 and second.stats()["trades"] == 5
    await stop(second)

    # Redelivery of everything (the consumer's position lost): the saved book skips what it has.
    await bus.js.delete_consumer(subjects.fills_stream.name, DURABLE)
    third = await started(RiskAgent(config, secrets=Secrets(), instance="third"))
    consumer = await bus.js.consumer_info(subjects.fills_stream.name, DURABLE)
    await eventually(lambda: third.bus.received_total >= 5)
    await asyncio.sleep(0.3)
    same_positions(third.book)
    assert consumer.config.durable_name == DURABLE
    await stop(third)

    # The saved book lost: the stream is replayed from its start into an empty book.
    kv = await bus.js.key_value(subjects.kv_bucket("RISK"))
    await kv.delete(BOOK_KEY)
    with pytest.raises(nats.js.errors.KeyNotFoundError):
        await kv.get(BOOK_KEY)
    fourth = await started(RiskAgent(config, secrets=Secrets(), instance="fourth"))
    await eventually(lambda: fourth.book.trades == 5)
    same_positions(fourth.book)
    assert json.loads((await kv.get(BOOK_KEY)).value)["book"]["last_seq"] == 5
