"""The typed bus over a real nats-server: typed pub/sub, junk handling, request/reply, queue
groups, JetStream durability and de-duplication."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
from nats.aio.msg import Msg
from prometheus_client import CollectorRegistry

from tradingbot_agents.bus import Bus, RequestTimeout
from tradingbot_agents.config import Config
from tradingbot_agents.messages import Alert, Subjects
from tradingbot_agents.metrics import BusMetrics


def _dropped(registry: CollectorRegistry, reason: str) -> float:
    total = 0.0
    for metric in registry.collect():
        for sample in metric.samples:
            if sample.name == "tradingbot_bus_messages_dropped_total" and sample.labels["reason"] == reason:
                total += sample.value
    return total


@pytest.fixture
def config(make_config: Callable[..., Config]) -> Config:
    return make_config()


@pytest.fixture
async def new_bus(config: Config) -> AsyncIterator[Callable[[], asyncio.Future[Bus]]]:
    made: list[Bus] = []

    async def make(registry: CollectorRegistry | None = None) -> Bus:
        bus = Bus(config.nats, name=f"test-{len(made)}", metrics=BusMetrics(registry or CollectorRegistry()))
        await bus.connect()
        made.append(bus)
        return bus

    yield make  # type: ignore[misc]
    for bus in made:
        await bus.close()


def _alert(n: int) -> Alert:
    return Alert(alert_id=f"a{n}", kind="test", subject="BTCUSDT", message=f"alert {n}")


async def test_typed_publish_subscribe_and_junk_is_dropped(new_bus, config: Config) -> None:
    registry = CollectorRegistry()
    sub_bus = await new_bus(registry)
    pub_bus = await new_bus()
    subject = f"{Subjects(config.bot).prefix}.t.alerts"
    got: list[Alert] = []
    done = asyncio.Event()

    async def handler(alert: Alert, _msg: Msg) -> None:
        got.append(alert)
        if alert.alert_id == "a2":
            raise RuntimeError("a handler bug must not stop the subscription")
        if len(got) == 3:
            done.set()

    await sub_bus.subscribe(subject, Alert, handler)
    await pub_bus.publish(subject, _alert(1))
    await pub_bus.nc.publish(subject, b"\xff\xfe not json")
    await pub_bus.nc.publish(subject, b'{"alert_id": "x"}')  # missing required fields
    await pub_bus.publish(subject, _alert(2))
    await pub_bus.publish(subject, _alert(3))
    await asyncio.wait_for(done.wait(), 5)
    assert [a.alert_id for a in got] == ["a1", "a2", "a3"]
    assert isinstance(got[0], Alert)
    assert _dropped(registry, "not_json") == 1
    assert _dropped(registry, "schema") == 1


async def test_request_reply_and_timeout(new_bus, config: Config) -> None:
    server = await new_bus()
    client = await new_bus()
    subject = f"{Subjects(config.bot).prefix}.t.echo"

    async def respond(alert: Alert) -> Alert:
        return alert.model_copy(update={"message": alert.message.upper()})

    await server.serve(subject, Alert, respond)
    reply = await client.request(subject, _alert(7), Alert, timeout=2)
    assert reply.message == "ALERT 7"
    with pytest.raises(RequestTimeout):
        await client.request(f"{subject}.nobody", _alert(8), Alert, timeout=0.3)


async def test_queue_group_shares_work(new_bus, config: Config) -> None:
    workers = [await new_bus(), await new_bus()]
    publisher = await new_bus()
    subject = f"{Subjects(config.bot).prefix}.t.work"
    seen: dict[int, list[str]] = {0: [], 1: []}
    for index, bus in enumerate(workers):
        async def handler(alert: Alert, _msg: Msg, index: int = index) -> None:
            seen[index].append(alert.alert_id)
        await bus.subscribe(subject, Alert, handler, queue="workers")
    for n in range(200):
        await publisher.publish(subject, _alert(n))
    await publisher.nc.flush()
    for _ in range(100):
        if len(seen[0]) + len(seen[1]) == 200:
            break
        await asyncio.sleep(0.02)
    assert sorted(seen[0] + seen[1], key=lambda a: int(a[1:])) == [f"a{n}" for n in range(200)]
    assert seen[0] and seen[1], "both members of the queue group got work"


async def test_jetstream_survives_subscriber_restart_and_processes_once(new_bus, config: Config) -> None:
    subjects = Subjects(config.bot)
    stream = subjects.alerts_stream
    publisher = await new_bus()
    await publisher.ensure_stream(stream)
    await publisher.ensure_stream(stream)  # idempotent
    durable = f"risk-{uuid.uuid4().hex[:6]}"
    processed: list[str] = []

    async def handler(alert: Alert, _msg: Msg) -> None:
        processed.append(alert.alert_id)

    async def run_consumer(expect: int) -> None:
        bus = await new_bus()
        await bus.consume(stream.name, durable, subjects.alerts, Alert, handler)
        for _ in range(200):
            if len(processed) >= expect:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)  # room for any wrong redelivery to show up
        await bus.drain(2)

    # First life of the subscriber: one message.
    assert await publisher.publish_durable(subjects.alerts, _alert(1), msg_id="a1")
    await run_consumer(expect=1)
    assert processed == ["a1"]

    # While it is down: a new message, and a retry of it (same id) that the server de-duplicates.
    assert await publisher.publish_durable(subjects.alerts, _alert(2), msg_id="a2")
    assert not await publisher.publish_durable(subjects.alerts, _alert(2), msg_id="a2")

    # Second life: the message published while down arrives, exactly once; a1 is not redone.
    await run_consumer(expect=2)
    assert processed == ["a1", "a2"]


async def test_failed_handler_gets_redelivered(new_bus, config: Config) -> None:
    subjects = Subjects(config.bot)
    stream = subjects.alerts_stream
    bus = await new_bus()
    await bus.ensure_stream(stream)
    attempts: list[str] = []

    async def flaky(alert: Alert, _msg: Msg) -> None:
        attempts.append(alert.alert_id)
        if len(attempts) == 1:
            raise RuntimeError("transient")

    await bus.consume(stream.name, "flaky", subjects.alerts, Alert, flaky)
    await bus.publish_durable(subjects.alerts, _alert(9), msg_id="a9")
    for _ in range(500):  # the nak asks for a 1 s delay; a loaded machine may add a few more
        if len(attempts) >= 2:
            break
        await asyncio.sleep(0.02)
    assert attempts == ["a9", "a9"]


async def test_reconnects_after_nats_restarts() -> None:
    """A NATS restart (same port) is survived: the client reconnects by itself and traffic resumes."""
    from tradingbot_agents.localservers import start_nats

    server = start_nats()
    config = Config.model_validate({"nats": {"url": server.url, "reconnect_wait": 0.2}})
    registry = CollectorRegistry()
    bus = Bus(config.nats, name="reconnecting", metrics=BusMetrics(registry))
    got: list[str] = []
    try:
        await bus.connect()

        async def handler(alert: Alert, _msg: Msg) -> None:
            got.append(alert.alert_id)

        await bus.subscribe("probe.alerts", Alert, handler)
        port = server.port
        server.kill()
        server.stop()
        for _ in range(100):
            if not bus.connected:
                break
            await asyncio.sleep(0.02)
        assert not bus.connected
        server = start_nats(port=port)
        for _ in range(250):
            if bus.connected:
                break
            await asyncio.sleep(0.02)
        assert bus.connected
        await bus.publish("probe.alerts", _alert(1))  # the subscription was restored too
        for _ in range(100):
            if got:
                break
            await asyncio.sleep(0.02)
        assert got == ["a1"]
        assert registry.get_sample_value("tradingbot_bus_reconnects_total") == 1
    finally:
        await bus.close()
        server.stop()


async def test_drain_with_a_durable_consumer_is_quick(new_bus, config: Config) -> None:
    subjects = Subjects(config.bot)
    bus = await new_bus()
    await bus.ensure_stream(subjects.alerts_stream)

    async def handler(_alert: Alert, _msg: Msg) -> None:
        return None

    await bus.consume(subjects.alerts_stream.name, "quick", subjects.alerts, Alert, handler)
    await bus.publish_durable(subjects.alerts, _alert(1), msg_id="q1")
    await asyncio.sleep(2.5)  # a delivery, then empty fetch rounds that leave status messages behind
    loop = asyncio.get_running_loop()
    started = loop.time()
    await bus.drain(8.0)
    assert loop.time() - started < 2.0
