"""Fixtures: one emulator process and one operator per session; a namespace per test.

Tests isolate by namespace (the operator watches all of them), the way two teams share a cluster.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.operator_kmock.harness import Api, Emulator, FakeCoordinator, OperatorThread, free_port
from tradingbot_operator.apply import NotFound
from tradingbot_operator.crd import render_crd
from tradingbot_operator.settings import ControlSettings, OperatorConfig

PEERING = "tradingbot-operator"
#: Every watch ends after this long (the emulator honours timeoutSeconds), so the whole session
#: also proves that kopf re-establishes its watches (field note 3).
WATCH_TIMEOUT_S = 5.0

#: Sub-second control timings so "stays failed", backoff and stabilisation cost well under a second.
CONTROL = ControlSettings(
    interval_s=0.2,
    resync_s=2.0,
    failed_for_s=0.3,
    restart_backoff_s=0.3,
    restart_backoff_max_s=1.0,
    degraded_after_restarts=2,
    scale_up_window_s=0.0,
    scale_down_window_s=1.0,
    status_timeout_s=1.0,
)


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    emu = Emulator(Path(tmp_path_factory.mktemp("kmock")))
    yield emu
    emu.stop()


@pytest.fixture(scope="session")
async def api(emulator: Emulator) -> AsyncIterator[Api]:
    client = emulator.client()
    api = Api(client)
    await client.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", body=render_crd())
    await client.request("POST", "/apis/kopf.dev/v1/clusterkopfpeerings", body={
        "apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": PEERING},
    })
    yield api
    await client.close()


@pytest.fixture(scope="session")
async def coordinator() -> AsyncIterator[FakeCoordinator]:
    fake = FakeCoordinator()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture(scope="session")
async def operator(emulator: Emulator, api: Api, coordinator: FakeCoordinator) -> AsyncIterator[OperatorThread]:
    config = OperatorConfig(
        clusterwide=True, peering_name=PEERING, priority=10, metrics_port=free_port(),
        watch_timeout_s=WATCH_TIMEOUT_S,
        control=ControlSettings(**{**CONTROL.__dict__, "coordinator_url": coordinator.url_template}),
    )
    thread = OperatorThread(config, emulator.kubeconfig).start()
    yield thread
    thread.stop()
    assert thread.error is None, f"operator crashed: {thread.error!r}\n{thread.traceback}"


@pytest.fixture
async def namespace(api: Api) -> AsyncIterator[str]:
    """A fresh namespace name; its TradingBots are deleted afterwards, so finished tests do not
    keep control loops busy. No Namespace object: KMock 0.8 cannot route ``/api/v1/namespaces``
    (its path parser reads ``namespaces`` as the namespaced-path prefix), and nothing here needs it."""
    name = f"ns-{uuid.uuid4().hex[:8]}"
    yield name
    for bot in await api.list("tradingbot.io/v1alpha1", "TradingBot", name):
        with contextlib.suppress(NotFound):
            await api.delete("tradingbot.io/v1alpha1", "TradingBot", name, bot["metadata"]["name"])
