"""The apply → update → delete scenario against a real cluster (``make e2e``).

What only a real API server proves, and KMock cannot: server-side apply field ownership (a field
dropped from the desired state is removed; another manager's ``replicas`` stays), real garbage
collection, the CRD's OpenAPI validation and defaults, and the status subresource.

Skips with a clear message when no cluster is reachable. The operator runs in-process
(standalone peering: the ``KopfPeering`` CRD need not be installed) against the current context.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.operator_kmock.harness import Api, OperatorThread, eventually, example_bot
from tradingbot_operator.apply import ApiError, KubeClient, NotFound
from tradingbot_operator.crd import render_crd
from tradingbot_operator.settings import ControlSettings, OperatorConfig

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]
TB = ("tradingbot.io/v1alpha1", "TradingBot")
DEPLOY = ("apps/v1", "Deployment")


async def _client_or_skip() -> KubeClient:
    kubeconfig = Path(os.environ.get("KUBECONFIG") or Path.home() / ".kube" / "config")
    if not os.environ.get("KUBERNETES_SERVICE_HOST") and not kubeconfig.is_file():
        pytest.skip(f"e2e: no Kubernetes cluster: {kubeconfig} does not exist and this is not a pod "
                    "(create one with `kind create cluster` or `k3d cluster create`, then `make e2e`)")
    try:
        client = await KubeClient.from_environment()
    except Exception as exc:  # no kubeconfig, no context, no in-cluster account
        pytest.skip(f"e2e: no Kubernetes cluster configured (KUBECONFIG / ~/.kube/config): {exc}")
    try:
        version = await client.request("GET", "/version", timeout=5)
    except Exception as exc:
        await client.close()
        pytest.skip(f"e2e: the cluster in KUBECONFIG is not reachable: {exc}")
    if "gitVersion" not in version:
        await client.close()
        pytest.skip("e2e: KUBECONFIG does not point at a Kubernetes API server")
    return client


@pytest.fixture
async def cluster() -> AsyncIterator[Api]:
    client = await _client_or_skip()
    crd = render_crd()
    crd["metadata"].pop("uid", None)
    await client.request(
        "PATCH", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd['metadata']['name']}",
        body=crd, content_type="application/apply-patch+yaml",
        query={"fieldManager": "tradingbot-e2e", "force": "true"},
    )
    await asyncio.sleep(2)  # the CRD becomes Established
    yield Api(client)
    await client.close()


@pytest.fixture
async def namespace(cluster: Api) -> AsyncIterator[str]:
    name = f"tb-e2e-{uuid.uuid4().hex[:6]}"
    await cluster.client.request("POST", "/api/v1/namespaces", body={
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name
    with contextlib.suppress(NotFound, ApiError):
        await cluster.client.request("DELETE", f"/api/v1/namespaces/{name}")


@pytest.fixture
def operator(cluster: Api, namespace: str) -> Any:
    config = OperatorConfig(namespaces=(namespace,), standalone=True, metrics_port=0,
                            control=ControlSettings(interval_s=1.0, resync_s=0))
    thread = OperatorThread(config, None).start(timeout=60)
    yield thread
    thread.stop()
    assert thread.error is None, thread.traceback


async def test_apply_update_delete(cluster: Api, namespace: str, operator: OperatorThread):
    api = cluster
    bot = example_bot(namespace, "e2e")
    created = await api.create(bot)

    async def settled(generation: int) -> dict[str, Any] | None:
        live = await api.bot(namespace, "e2e")
        return live if (live.get("status") or {}).get("observedGeneration") == generation else None

    await eventually(lambda: settled(1), timeout=60, what="first reconcile")
    children = await api.children(namespace, "e2e")
    assert ("Deployment", "e2e-risk") in children and ("ConfigMap", "e2e-config") in children
    for child in children.values():
        assert child["metadata"]["ownerReferences"][0]["uid"] == created["metadata"]["uid"]

    async def worker_scaled() -> bool:  # the control loop owns its replicas (operator mode)
        return (await api.get(*DEPLOY, namespace, "e2e-trading-worker"))["spec"].get("replicas") == 2

    await eventually(worker_scaled, timeout=60, what="trading workers at autoscaling.min")
    children = await api.children(namespace, "e2e")
    before = {n: d["metadata"]["generation"] for (k, n), d in children.items() if k == "Deployment"}
    updated = await api.patch(*TB, namespace, "e2e", {"spec": {"risk": {"maxPortfolioVar": 0.02},
                                                             "agents": {"tradingWorker": {"env": []}}}})
    await eventually(lambda: settled(updated["metadata"]["generation"]), timeout=60, what="update")
    after = {n: d["metadata"]["generation"] for n, d in
             {n: d for (k, n), d in (await api.children(namespace, "e2e")).items() if k == "Deployment"}.items()}
    assert {n for n in after if after[n] != before[n]} == {"e2e-risk", "e2e-trading-worker"}
    worker = await api.get(*DEPLOY, namespace, "e2e-trading-worker")
    env = [e["name"] for e in worker["spec"]["template"]["spec"]["containers"][0].get("env", [])]
    assert "TRADINGBOT_EXTRA_EXAMPLE" not in env  # dropped from the desired state → removed by SSA

    await api.delete(*TB, namespace, "e2e")

    async def gone() -> bool:
        return not await api.children(namespace, "e2e")

    await eventually(gone, timeout=120, what="garbage collection of the children")


async def test_unsafe_spec_is_degraded_on_a_cluster(cluster: Api, namespace: str, operator: OperatorThread):
    bot = example_bot(namespace, "unsafe")
    bot["spec"]["mode"] = "production"
    bot["spec"]["exchange"].pop("credentials")
    await cluster.create(bot)

    async def degraded() -> dict[str, Any] | None:
        live = await cluster.bot(namespace, "unsafe")
        conditions = {c["type"]: c for c in (live.get("status") or {}).get("conditions") or []}
        return conditions.get("Degraded") if conditions.get("Degraded", {}).get("status") == "True" else None

    condition = await eventually(degraded, timeout=60, what="Degraded")
    assert "credentials" in condition["message"]
    assert await cluster.list(*DEPLOY, namespace) == []


def test_example_is_a_tradingbot() -> None:
    """Runs everywhere: the scenario's input is the shipped example."""
    doc = yaml.safe_load(Path(__file__).resolve().parents[2].joinpath("examples", "tradingbot.yaml").read_text())
    assert doc["kind"] == "TradingBot"

