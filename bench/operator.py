"""Operator benchmark (issue 3), against KMock, read as decisions.md says.

KMock caps end-to-end figures (every request is matched against its request log; ~47 creates/s
at best), so the 100-bot figure is reported beside the emulator's own raw create rate, measured in
the same run, and as a ratio of it (goal >= 60 %). Also: create-to-children for one bot (p50/p99
over sequential bots), the pure render rate (spec -> manifests, no I/O; goal >= 5,000 objects/s on
one core) and the operator's RSS (it runs as its own process: ``tradingbot operator run``).

"Reconciled" for a bot means: its status carries ``observedGeneration`` equal to its generation,
which the operator writes only after applying every child; the children are then counted.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import yaml

from bench.common import percentile_ms, write_result
from tests.operator_kmock.harness import TB, Api, Emulator
from tradingbot_operator.apply import NotFound, resource_path
from tradingbot_operator.builders import MANAGED_KINDS, desired_state
from tradingbot_operator.crd import render_crd

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "tradingbot.yaml"
RAW_CREATES = int(os.environ.get("BENCH_RAW_CREATES", "300"))
SINGLE_BOTS = int(os.environ.get("BENCH_SINGLE_BOTS", "10"))
MANY_BOTS = int(os.environ.get("BENCH_MANY_BOTS", "100"))
POLL_S = 0.2  # every poll is a request the emulator must serve: polling fast would slow it down


def bot_body(namespace: str, name: str, uid: str | None = None) -> dict[str, Any]:
    bot = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    bot["metadata"] = {"name": name, "namespace": namespace, **({"uid": uid} if uid else {})}
    return bot


def render_rate(seconds: float = 3.0) -> dict[str, float]:
    """Pure render throughput on one core: spec -> manifests, no I/O."""
    bot = bot_body("bench", "render", uid="00000000-0000-0000-0000-000000000000")
    objects = len(desired_state(bot))
    rounds = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        desired_state(bot)
        rounds += 1
    elapsed = time.perf_counter() - started
    return {"objects_per_bot": objects, "render_objects_per_s": round(rounds * objects / elapsed, 1)}


async def raw_create_rate(api: Api, namespace: str) -> float:
    """The emulator's own ceiling: ConfigMap creates, sequential, nothing else running."""
    started = time.perf_counter()
    for n in range(RAW_CREATES):
        await api.create({"apiVersion": "v1", "kind": "ConfigMap",
                          "metadata": {"name": f"raw-{n}", "namespace": namespace}, "data": {"n": str(n)}})
    return RAW_CREATES / (time.perf_counter() - started)


async def reconciled(api: Api, namespace: str, name: str) -> bool:
    try:
        bot = await api.bot(namespace, name)
    except NotFound:
        return False
    status = bot.get("status") or {}
    generation = bot["metadata"].get("generation")
    return generation is not None and status.get("observedGeneration") == generation


async def count_children(api: Api, namespace: str) -> int:
    total = 0
    for api_version, kind in MANAGED_KINDS:
        total += len(await api.list(api_version, kind, namespace, "app.kubernetes.io/managed-by=tradingbot-operator"))
    return total


async def _run(workdir: Path) -> dict[str, Any]:
    emulator = Emulator(workdir, keep_requests=200)
    operator: subprocess.Popen[bytes] | None = None
    client = emulator.client()
    api = Api(client)
    try:
        await client.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", body=render_crd())
        # Peering as deployed (the chart creates this object): one replica here, so it always leads.
        await client.request("POST", "/apis/kopf.dev/v1/clusterkopfpeerings", body={
            "apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": "tradingbot-operator"}})
        raw = await raw_create_rate(api, "raw")
        print(f"  emulator: {raw:.1f} raw creates/s", flush=True)
        env = {**os.environ, "PYTHONSAFEPATH": "1",
               # The control loop would ask each bot's coordinator for status; there is none here.
               "TRADINGBOT_OPERATOR_CONTROL_INTERVAL_S": "3600", "TRADINGBOT_OPERATOR_RESYNC_S": "0"}
        command = [sys.executable, "-P", "-m", "tradingbot_agents", "operator", "run", "-A", "--priority", "10",
                   "--metrics-port", "0", "--kubeconfig", str(emulator.kubeconfig)]
        with (workdir / "operator.log").open("wb") as log:
            operator = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        await asyncio.sleep(3.0)  # kopf's start-up: discovery, backbone, watches
        objects_per_bot = len(desired_state(bot_body("x", "x", uid="u")))

        # One bot at a time: create -> reconciled.
        single: list[float] = []
        for n in range(SINGLE_BOTS):
            namespace = f"one-{n}"
            started = time.perf_counter()
            await api.create(bot_body(namespace, "bot"))
            deadline = time.perf_counter() + 120
            while not await reconciled(api, namespace, "bot"):
                if time.perf_counter() > deadline or operator.poll() is not None:
                    raise RuntimeError(f"bot {namespace}/bot not reconciled; see {workdir / 'operator.log'}")
                await asyncio.sleep(POLL_S)
            single.append(time.perf_counter() - started)
            print(f"  bot {n + 1}/{SINGLE_BOTS}: {single[-1]:.2f} s", flush=True)
            assert await count_children(api, namespace) == objects_per_bot, namespace

        # Many at once.
        started = time.perf_counter()
        for n in range(MANY_BOTS):
            await api.create(bot_body("many", f"bot-{n:03d}"))
        pending = {f"bot-{n:03d}" for n in range(MANY_BOTS)}
        while pending:
            listing = await client.request("GET", resource_path(*TB, "many"))
            for item in listing.get("items") or []:
                status = item.get("status") or {}
                if status.get("observedGeneration") == item["metadata"].get("generation"):
                    pending.discard(item["metadata"]["name"])
            print(f"  {MANY_BOTS - len(pending)}/{MANY_BOTS} bots reconciled after "
                  f"{time.perf_counter() - started:.0f} s", flush=True)
            if operator.poll() is not None:
                raise RuntimeError(f"the operator exited; see {workdir / 'operator.log'}")
            await asyncio.sleep(2.0)
        many_s = time.perf_counter() - started
        children = await count_children(api, "many")
        rss = psutil.Process(operator.pid).memory_info().rss / 2**20
        return {
            "objects_per_bot": objects_per_bot,
            "emulator_raw_creates_per_s": round(raw, 1),
            "create_to_ready_p50_s": round(statistics.median(single), 3),
            "create_to_ready_p99_s": round(percentile_ms(single, 99) / 1000, 3),
            "bots_100_all_reconciled_s": round(many_s, 1),
            "bots_100_children": children,
            "operator_objects_per_s": round(children / many_s, 1),
            "operator_vs_emulator_ratio_pct": round(100 * (children / many_s) / raw, 1),
            "operator_rss_mb": round(rss, 1),
        }
    finally:
        if operator is not None:
            operator.terminate()
            try:
                operator.wait(15)
            except subprocess.TimeoutExpired:
                operator.kill()
        await client.close()
        emulator.stop()


def main() -> None:
    pure = render_rate()
    workdir = ROOT / "logs" / "bench-operator"
    workdir.mkdir(parents=True, exist_ok=True)
    result = asyncio.run(_run(workdir))
    result.update(pure)
    result["targets"] = {"create_to_ready_p50_s": "< 0.5", "bots_100_all_reconciled_s": "< 30 (KMock-capped)",
                         "operator_vs_emulator_ratio_pct": ">= 60", "render_objects_per_s": ">= 5000",
                         "operator_rss_mb": "< 150"}
    path = write_result("operator", result)
    width = max(len(k) for k in result)
    for key, value in result.items():
        print(f"  {key:<{width}}  {value}")
    print(f"written to {path}")
