"""Two operator replicas (two processes, like two pods): the one with the lower priority stays
paused and never acts (field note 4). The standby also proves ``tradingbot operator run`` starts."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

import aiohttp

from tests.operator_kmock.conftest import PEERING
from tests.operator_kmock.harness import Api, Emulator, OperatorThread, eventually, example_bot, free_port

RUN = "import sys; from tradingbot_operator.runner import main; sys.exit(main(sys.argv[1:]))"


def reconciles(text: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("tradingbot_operator_reconciles_total"))


async def test_a_lower_priority_replica_never_acts(operator: OperatorThread, emulator: Emulator, api: Api,
                                                   namespace: str, tmp_path):
    port = free_port()
    env = {**os.environ, "KUBECONFIG": str(emulator.kubeconfig), "TRADINGBOT_OPERATOR_CONTROL_INTERVAL_S": "0.2"}
    log = (tmp_path / "standby.log").open("wb")
    standby = await asyncio.create_subprocess_exec(
        sys.executable, "-P", "-c", RUN, "run", "--all-namespaces", "--priority", "5", "--peering", PEERING,
        "--metrics-port", str(port), env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        async with aiohttp.ClientSession() as session:

            async def metrics() -> str | None:
                try:
                    async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
                        return await response.text()
                except aiohttp.ClientError:
                    return None

            await eventually(metrics, timeout=20, what="standby operator serving /metrics")
            await asyncio.sleep(1.0)  # let it see the active peer
            await api.create(example_bot(namespace, "peer"))

            async def handled() -> bool:
                bot = await api.bot(namespace, "peer")
                return (bot.get("status") or {}).get("observedGeneration") == 1

            await eventually(handled, what="reconciled by the active replica")
            await asyncio.sleep(1.0)
            assert standby.returncode is None, "the standby exited"
            text = await metrics()
            assert text is not None and "tradingbot_operator_control_loops 0.0" in text
            assert reconciles(text) == 0
        assert operator.ctx.metrics.registry.get_sample_value(
            "tradingbot_operator_reconciles_total", {"result": "applied"}) >= 1
        peering = await api.client.get(f"/apis/kopf.dev/v1/clusterkopfpeerings/{PEERING}")
        priorities = sorted(p["priority"] for p in (peering.get("status") or {}).values() if isinstance(p, dict))
        assert priorities == [5, 10]  # both replicas registered, with distinct priorities
    finally:
        standby.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(standby.wait(), 15)
        except TimeoutError:
            standby.kill()
            await standby.wait()
        log.close()
