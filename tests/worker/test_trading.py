"""Shadow trading end to end over real NATS, Redis, the exchange simulator and a real data agent."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.helpers.procs import AgentProcess, write_config
from tests.worker.conftest import PAIRS, RiskStandIn, eventually, set_active_pairs, stream_messages
from tradingbot_agents.bus import Bus
from tradingbot_agents.config import Config, Mode, Secrets
from tradingbot_agents.data.agent import DataAgent
from tradingbot_agents.exchange.simulator.server import SimulatorServer
from tradingbot_agents.messages import ControlCommand, FillEvent, OrderEvent, Side, Subjects
from tradingbot_agents.worker.agent import EXIT_REFUSED, TradingWorkerAgent


def order_requests(sim: SimulatorServer) -> int:
    return int(httpx.get(f"{sim.url}/_sim/stats").json()["order_requests"])


async def fills_of(bus: Bus, subjects: Subjects) -> list[FillEvent]:
    return await stream_messages(bus, subjects.fills_stream.name, f"{subjects.prefix}.fills.>", FillEvent)


async def orders_of(bus: Bus, subjects: Subjects) -> list[OrderEvent]:
    return await stream_messages(bus, subjects.orders_stream.name, f"{subjects.prefix}.orders.>", OrderEvent)


async def test_shadow_trades_land_on_jetstream_and_no_order_reaches_the_exchange(
    trading_config: Callable[..., Config], started, client_bus: Bus, sim: SimulatorServer
) -> None:
    config = trading_config()
    subjects = Subjects(config.bot)
    orders_before = order_requests(sim)
    risk = await RiskStandIn().serve(client_bus, subjects)
    await started(DataAgent(config))
    worker = await started(TradingWorkerAgent(config))
    await set_active_pairs(client_bus, subjects, PAIRS)
    await eventually(lambda: worker.stats()["trades"] >= len(PAIRS), timeout=15)
    fills = await fills_of(client_bus, subjects)
    assert {f.symbol for f in fills} == set(PAIRS)
    assert all(f.mode == "shadow" and f.fee > 0 and f.worker_id == worker.agent_id for f in fills)
    # Paper prices are the simulator's last price worsened by half the spread and the slippage.
    for fill in fills:
        last = float(httpx.get(f"{sim.url}/fapi/v1/ticker/price", params={"symbol": fill.symbol}).json()["price"])
        sign = 1 if fill.side.value == "BUY" else -1
        assert fill.price == pytest.approx(last * (1 + sign * 1e-4) ** 2, rel=1e-9)  # 1 bp half spread, 1 bp slip
    orders = await orders_of(client_bus, subjects)
    assert {o.status for o in orders} >= {"NEW", "FILLED"}
    assert len(risk.intents) >= len(PAIRS)  # every order was pre-checked
    assert order_requests(sim) == orders_before == 0  # shadow: not one call to an order endpoint
    await eventually(lambda: worker.stats()["pairs_held"] == worker.stats()["open_positions"] == len(PAIRS))


async def test_positions_survive_a_restart_rebuilt_from_the_fills_stream(
    trading_config: Callable[..., Config], started, client_bus: Bus
) -> None:
    config = trading_config()
    subjects = Subjects(config.bot)
    await RiskStandIn().serve(client_bus, subjects)
    await started(DataAgent(config))
    first = await started(TradingWorkerAgent(config, instance="first"))
    await set_active_pairs(client_bus, subjects, PAIRS[:2])
    await eventually(lambda: first.stats()["trades"] >= 2, timeout=15)
    positions = {s: first.book.get(s).amount for s in PAIRS[:2]}
    first.request_stop()
    await eventually(lambda: not first.ready, timeout=10)
    second = TradingWorkerAgent(config, instance="second")
    await started(second)
    assert {s: second.book.get(s).amount for s in PAIRS[:2]} == positions
    assert all(abs(v) > 0 for v in positions.values())
    await asyncio.sleep(1.0)
    assert second.stats()["trades"] == 0  # it manages the positions; it does not open them again


async def test_an_over_limit_order_is_vetoed_by_risk_and_never_executed(
    trading_config: Callable[..., Config], started, client_bus: Bus, caplog: pytest.LogCaptureFixture
) -> None:
    config = trading_config(trading_worker={"order_notional": 500.0})
    subjects = Subjects(config.bot)
    risk = await RiskStandIn(max_notional=100.0).serve(client_bus, subjects)
    await started(DataAgent(config))
    worker = await started(TradingWorkerAgent(config))
    await set_active_pairs(client_bus, subjects, PAIRS[:2])
    with caplog.at_level("INFO", logger="tradingbot_agents.worker"):
        await eventually(lambda: worker.stats()["risk_rejected"] >= 4, timeout=15)
    assert all(i.notional > 100 for i in risk.intents)
    assert "exceeds max_position_notional" in caplog.text
    assert worker.stats()["trades"] == 0 and worker.stats()["orders"] == 0
    assert await fills_of(client_bus, subjects) == [] and await orders_of(client_bus, subjects) == []


async def test_no_risk_answer_means_no_trade(
    trading_config: Callable[..., Config], started, client_bus: Bus
) -> None:
    config = trading_config(trading_worker={"risk_timeout": 0.2})
    subjects = Subjects(config.bot)
    await started(DataAgent(config))
    worker = await started(TradingWorkerAgent(config))
    await set_active_pairs(client_bus, subjects, PAIRS[:1])
    await eventually(lambda: worker.stats()["risk_timeouts"] >= 2, timeout=15)
    assert worker.stats()["orders"] == 0 and await fills_of(client_bus, subjects) == []
    assert "risk" in worker.health.overall().reason


async def test_halt_stops_new_orders_within_one_heartbeat_and_resume_restarts_them(
    trading_config: Callable[..., Config], started, client_bus: Bus
) -> None:
    config = trading_config()
    subjects = Subjects(config.bot)
    risk = await RiskStandIn().serve(client_bus, subjects)
    await started(DataAgent(config))
    worker = await started(TradingWorkerAgent(config))
    await client_bus.publish(subjects.control, ControlCommand(command="halt", reason="test kill switch"))
    await asyncio.sleep(config.runtime.heartbeat_interval)  # one heartbeat
    assert worker.halted
    await set_active_pairs(client_bus, subjects, PAIRS[:2])
    await eventually(lambda: worker.stats()["signals"] >= 6, timeout=15)
    await asyncio.sleep(0.5)
    assert worker.stats()["orders"] == 0 and risk.intents == []
    assert worker.counters["halted_skips"] > 0  # it wanted to trade and did not
    assert await orders_of(client_bus, subjects) == []
    await client_bus.publish(subjects.control, ControlCommand(command="resume"))
    await eventually(lambda: worker.stats()["trades"] >= 2, timeout=15)


async def test_halted_in_config_still_closes_open_positions(
    trading_config: Callable[..., Config], started, client_bus: Bus
) -> None:
    """Kill switch semantics: nothing new, but what is open is still managed (closed on signal)."""
    config = trading_config(trading={"halted": True})
    subjects = Subjects(config.bot)
    await RiskStandIn().serve(client_bus, subjects)
    await started(DataAgent(config))
    worker = await started(TradingWorkerAgent(config))
    await set_active_pairs(client_bus, subjects, PAIRS[:1])
    signal = await worker.trade_pair(PAIRS[0])
    assert signal.action in ("buy", "sell") and worker.stats()["orders"] == 0
    # Give it an open position against the signal (as if opened before the halt): it must close it.
    opposite = Side.SELL if signal.action == "buy" else Side.BUY
    worker.book.apply(FillEvent(fill_id="before-halt", client_order_id="before-halt", worker_id="x",
                                symbol=PAIRS[0], side=opposite, quantity=0.001, price=1.0, fee=0.0, mode="shadow"))
    await eventually(lambda: abs(worker.book.get(PAIRS[0]).amount) < 1e-12, timeout=10)
    fills = await fills_of(client_bus, subjects)
    assert len(fills) == 1 and fills[0].side.value == signal.action.upper()


async def test_production_without_flag_or_keys_refuses_to_start(
    trading_config: Callable[..., Config], tmp_path: Path
) -> None:
    config = trading_config(mode="production")
    code = await TradingWorkerAgent(config, secrets=Secrets()).serve()
    assert code == EXIT_REFUSED
    flagged = trading_config(mode="production", trading_worker={"allow_live_orders": True})
    assert await TradingWorkerAgent(flagged, secrets=Secrets()).serve() == EXIT_REFUSED
    # The real command line says why and exits 2 (no keys in its environment).
    proc = AgentProcess.product("trading-worker", write_config(config, tmp_path / "c.yaml"), tmp_path / "w.log")
    try:
        started = time.monotonic()
        while proc.proc.poll() is None and time.monotonic() - started < 20:
            await asyncio.sleep(0.05)
        assert proc.proc.returncode == 2
        assert "allow_live_orders" in proc.output()
    finally:
        proc.stop()
    assert config.mode is Mode.PRODUCTION


async def test_with_the_real_risk_agent_small_orders_trade_and_over_limit_orders_are_vetoed(
    trading_config: Callable[..., Config], started, client_bus: Bus, sim: SimulatorServer
) -> None:
    """The whole chain with the product's risk agent (no stand-in): data → worker → risk → paper."""
    from tradingbot_agents.risk.agent import RiskAgent

    config = trading_config(risk_agent={"max_position_notional": 1000.0, "check_interval_seconds": 60},
                            trading_worker={"order_notional": 100.0})
    subjects = Subjects(config.bot)
    await started(DataAgent(config))
    await started(RiskAgent(config))
    worker = await started(TradingWorkerAgent(config, instance="small"))
    await set_active_pairs(client_bus, subjects, PAIRS[:2])
    await eventually(lambda: worker.stats()["trades"] >= 2, timeout=20)
    assert order_requests(sim) == 0

    big = trading_config(risk_agent={"max_position_notional": 1000.0, "check_interval_seconds": 60},
                         trading_worker={"order_notional": 5000.0})
    big = big.model_copy(update={"bot": config.bot})
    greedy = await started(TradingWorkerAgent(big, instance="greedy"))
    await set_active_pairs(client_bus, subjects, PAIRS)
    await eventually(lambda: greedy.stats()["risk_rejected"] >= 1, timeout=20)
    assert greedy.stats()["trades"] == 0
    fills = await fills_of(client_bus, subjects)
    assert fills and all(f.worker_id == worker.agent_id for f in fills)


async def test_production_with_flag_and_keys_sends_signed_idempotent_orders(
    make_config: Callable[..., Config], started, client_bus: Bus
) -> None:
    """Production against the simulator's signed order endpoint (its own instance: this one DOES
    receive orders). The client order id is derived from the intent, so a retry cannot double it."""
    from pydantic import SecretStr

    from tradingbot_agents.exchange.simulator.app import SimulatorConfig

    with SimulatorServer(SimulatorConfig(manual_clock=True)) as live_sim:
        clock = httpx.get(f"{live_sim.url}/_sim/clock").json()
        httpx.post(f"{live_sim.url}/_sim/clock", json={"time_ms": clock["data_start_ms"] + 60 * 86_400_000})
        config = make_config(mode="production", exchange={"base_url": live_sim.url, "egress": "live-test"},
                             trading_worker={"allow_live_orders": True, "loop_interval": 0.2,
                                             "signal_threshold": 0.01})
        subjects = Subjects(config.bot)
        await RiskStandIn().serve(client_bus, subjects)
        await started(DataAgent(config))
        keys = Secrets(binance_api_key=SecretStr("sim-api-key"), binance_api_secret=SecretStr("sim-api-secret"))
        worker = await started(TradingWorkerAgent(config, secrets=keys))
        await set_active_pairs(client_bus, subjects, PAIRS[:1])
        await eventually(lambda: worker.stats()["trades"] >= 1, timeout=20)
        fills = await fills_of(client_bus, subjects)
        assert fills[0].mode == "production" and fills[0].client_order_id.startswith("tb-")
        stats = httpx.get(f"{live_sim.url}/_sim/stats").json()
        # One signed POST per order the worker sent, nothing else on the order endpoints.
        assert stats["order_requests"] == stats["by_endpoint"].get("POST /fapi/v1/order") == worker.stats()["orders"]
