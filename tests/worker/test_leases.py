"""Pair leases over a real NATS JetStream KV: split, follow the coordinator, survive a killed worker."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import nats.js.errors
import pytest

from tests.helpers.procs import AgentProcess, write_config
from tests.worker.conftest import PAIRS, eventually, set_active_pairs
from tradingbot_agents.bus import Bus
from tradingbot_agents.config import Config
from tradingbot_agents.messages import PairAssignment, Subjects
from tradingbot_agents.worker.agent import TradingWorkerAgent
from tradingbot_agents.worker.leases import LeaseTable, lease_holders, open_lease_bucket


async def test_create_is_compare_and_set_and_keys_expire(client_bus: Bus, make_config: Callable[..., Config]) -> None:
    subjects = Subjects(make_config().bot)
    kv = await open_lease_bucket(client_bus.js, subjects.kv_bucket("LEASES"), 0.6)
    a, b = LeaseTable(kv, "worker-a", 0.6), LeaseTable(kv, "worker-b", 0.6)
    assert await a.acquire("BTCUSDT")
    assert not await b.acquire("BTCUSDT")
    with pytest.raises(nats.js.errors.KeyWrongLastSequenceError):
        await kv.create("BTCUSDT", b"worker-b")
    assert await a.renew() == []
    assert await lease_holders(kv) == {"BTCUSDT": "worker-a"}
    # a stops renewing (as if dead): its local fence lapses first, then the key expires, then b takes it.
    started = time.monotonic()
    await eventually(lambda: not a.holds("BTCUSDT"), timeout=2)
    await eventually(lambda: b.acquire("BTCUSDT"), timeout=3, interval=0.02)
    assert time.monotonic() - started >= 0.6
    assert await a.renew() == ["BTCUSDT"]  # a learns it lost the pair
    assert await lease_holders(kv) == {"BTCUSDT": "worker-b"}
    await b.release("BTCUSDT")
    assert await lease_holders(kv) == {}
    assert await a.acquire("BTCUSDT")  # a released key can be taken again at once


async def test_two_workers_split_the_pairs_then_follow_an_assignment(
    trading_config: Callable[..., Config], started, client_bus: Bus
) -> None:
    config = trading_config(trading_worker={"loop_interval": 60})
    subjects = Subjects(config.bot)
    await set_active_pairs(client_bus, subjects, PAIRS)
    w1 = await started(TradingWorkerAgent(config, instance="w1"))
    w2 = await started(TradingWorkerAgent(config, instance="w2"))
    assert w1.leases is not None and w2.leases is not None
    kv = w1.leases.kv

    def split() -> bool:
        return len(w1.leases.held) == 2 and len(w2.leases.held) == 2  # type: ignore[union-attr]

    deadline = time.monotonic() + 10
    while not split():
        assert not set(w1.leases.held) & set(w2.leases.held), "a pair held by two workers"
        assert time.monotonic() < deadline, (w1.leases.held, w2.leases.held)
        await asyncio.sleep(0.02)
    assert set(w1.leases.held) | set(w2.leases.held) == set(PAIRS)
    holders = await lease_holders(kv)
    assert {p for p, h in holders.items() if h == w1.agent_id} == set(w1.leases.held)
    assert w1.stats()["pairs_held"] == 2.0

    # The coordinator's desired assignment wins over the fair share.
    await client_bus.publish(subjects.assignment, PairAssignment(
        assignments={w1.agent_id: PAIRS[:3], w2.agent_id: PAIRS[3:]}))
    deadline = time.monotonic() + 10
    while not (w1.leases.held == sorted(PAIRS[:3]) and w2.leases.held == PAIRS[3:]):
        assert not set(w1.leases.held) & set(w2.leases.held), "a pair held by two workers"
        assert time.monotonic() < deadline, (w1.leases.held, w2.leases.held)
        await asyncio.sleep(0.02)


@pytest.mark.slow
async def test_killed_worker_gives_its_pairs_to_the_other_within_a_lease_ttl(
    trading_config: Callable[..., Config], started, client_bus: Bus, tmp_path: Path
) -> None:
    config = trading_config(trading_worker={"loop_interval": 60})
    subjects = Subjects(config.bot)
    ttl = config.coordinator.missed_heartbeats_failed * config.runtime.heartbeat_interval
    await set_active_pairs(client_bus, subjects, PAIRS)
    proc = AgentProcess.product("trading-worker", write_config(config, tmp_path / "config.yaml"),
                                tmp_path / "worker.log")
    try:
        kv = None
        survivor = await started(TradingWorkerAgent(config, instance="survivor"))
        assert survivor.leases is not None
        kv = survivor.leases.kv

        async def victim_holds_two() -> bool:
            holders = await lease_holders(kv)
            return sum(1 for h in holders.values() if h != survivor.agent_id) == 2 and len(holders) == 4

        await eventually(victim_holds_two, timeout=15)
        victim_pairs = {p for p, h in (await lease_holders(kv)).items() if h != survivor.agent_id}
        proc.kill()  # SIGKILL: no release, no goodbye
        killed = time.monotonic()
        moved_after = None
        while time.monotonic() - killed < 5:
            believed = set(survivor.leases.held)  # read the survivor's belief first, then the KV
            # The survivor never trades a pair whose lease is not its own in the KV (read key by key:
            # a listing of the keys can miss one that is being renewed at that instant).
            for pair in believed:
                assert (await kv.get(pair)).value.decode() == survivor.agent_id, pair
            holders = await lease_holders(kv)
            if set(holders) == set(PAIRS) and all(h == survivor.agent_id for h in holders.values()):
                moved_after = time.monotonic() - killed
                break
            await asyncio.sleep(0.01)
        assert moved_after is not None, f"pairs {victim_pairs} never moved: {await lease_holders(kv)}"
        # Bound: the key expires one TTL after the victim's last renewal (the server removes it up to
        # ~0.3 s late) and the survivor polls every TTL/4.
        assert moved_after <= ttl + ttl / 4 + 0.5, moved_after
        print(f"pairs moved {moved_after:.3f}s after SIGKILL (lease TTL {ttl:.2f}s)")
        assert set(survivor.leases.held) == set(PAIRS)
    finally:
        proc.stop()


async def test_workers_follow_the_real_coordinators_assignment(
    trading_config: Callable[..., Config], started, client_bus: Bus
) -> None:
    from tradingbot_agents.coordinator.agent import CoordinatorAgent

    config = trading_config(trading_worker={"loop_interval": 60})
    subjects = Subjects(config.bot)
    coordinator = await started(CoordinatorAgent(config))
    workers = [await started(TradingWorkerAgent(config, instance=f"w{i}")) for i in range(3)]
    await set_active_pairs(client_bus, subjects, PAIRS)

    def settled() -> bool:
        plan = coordinator.assignment
        held = {w.agent_id: w.leases.held for w in workers}  # type: ignore[union-attr]
        return bool(plan) and all(held[w] == sorted(plan.get(w, [])) for w in held) and \
            sorted(p for ps in held.values() for p in ps) == sorted(PAIRS)

    deadline = time.monotonic() + 15
    while not settled():
        seen: list[str] = [p for w in workers for p in w.leases.held]  # type: ignore[union-attr]
        assert len(seen) == len(set(seen)), "a pair held by two workers"
        assert time.monotonic() < deadline, (coordinator.assignment, [w.leases.held for w in workers])
        await asyncio.sleep(0.02)
    assert all(w.assigned() is not None for w in workers)  # following the plan, not the fair share
