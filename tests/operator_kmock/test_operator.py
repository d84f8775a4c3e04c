"""The operator for real (kopf's runner, our handlers) against the KMock emulator.

Each test gets its own namespace; the operator, the emulator and the stand-in coordinator are
shared by the session.
"""

from __future__ import annotations

import asyncio
import copy
import time
from typing import Any

import aiohttp
import pytest

from tests.operator.helpers import validate_builtin
from tests.operator_kmock.harness import TB, Api, FakeCoordinator, OperatorThread, eventually, example_bot
from tradingbot_agents.kinds import AgentKind
from tradingbot_agents.messages import AgentState, Health, HealthStatus, Load, SystemStats, SystemStatus
from tradingbot_operator.apply import APPLIED_HASH_ANNOTATION
from tradingbot_operator.builders import CONFIG_HASH_ANNOTATION, desired_state
from tradingbot_operator.control import RESTARTED_AT_ANNOTATION

pytestmark = pytest.mark.timeout(60)
DEPLOY = ("apps/v1", "Deployment")
SERVER_FIELDS = ("uid", "resourceVersion", "generation", "creationTimestamp")


# --- helpers ---------------------------------------------------------------------------------


def cond(bot: dict[str, Any], type_: str) -> dict[str, Any]:
    for c in (bot.get("status") or {}).get("conditions") or []:
        if c["type"] == type_:
            return c
    return {}


async def create(api: Api, ns: str, name: str, edit: Any = None) -> dict[str, Any]:
    return await api.create(example_bot(ns, name, edit))


async def edit_spec(api: Api, ns: str, name: str, patch: dict[str, Any]) -> int:
    bot = await api.patch(*TB, ns, name, {"spec": patch})
    return int(bot["metadata"]["generation"])


async def settled(api: Api, ns: str, name: str, generation: int = 1) -> dict[str, Any]:
    """Wait until the status describes ``generation``."""

    async def check() -> dict[str, Any] | None:
        bot = await api.bot(ns, name)
        return bot if (bot.get("status") or {}).get("observedGeneration") == generation else None

    return await eventually(check, what=f"{ns}/{name} observedGeneration {generation}")


async def deployments(api: Api, ns: str, name: str) -> dict[str, dict[str, Any]]:
    items = await api.list(*DEPLOY, ns, f"app.kubernetes.io/instance={name}")
    return {d["metadata"]["name"]: d for d in items}


async def replicas_of(api: Api, ns: str, deployment: str) -> int | None:
    return (await api.get(*DEPLOY, ns, deployment))["spec"].get("replicas")


async def mark_ready(api: Api, ns: str, name: str) -> None:
    """Stand in for the Deployment controller and kubelet: every pod wanted is ready."""
    for d in (await deployments(api, ns, name)).values():
        wanted = d["spec"].get("replicas", 1)
        await api.patch(*DEPLOY, ns, d["metadata"]["name"], {"status": {"readyReplicas": wanted}}, "status")


def agent_state(kind: AgentKind, i: int, *, status: HealthStatus = HealthStatus.OK, cpu: float = 10.0,
                reason: str = "") -> AgentState:
    return AgentState(agent_id=f"{kind.value}-{i}", kind=kind, instance=f"{kind.value}-{i}",
                      health=Health(status=status, reason=reason), load=Load(cpu_percent=cpu),
                      score=100.0 if status is HealthStatus.OK else 0.0, last_seen_s=0.5, uptime_s=60)


def system_status(name: str, agents: list[AgentState]) -> SystemStatus:
    return SystemStatus(bot=name, system_stats=SystemStats(system_health=100), agents={a.agent_id: a for a in agents})


def healthy_agents(**overrides: AgentState) -> list[AgentState]:
    return [overrides.get(kind.name, agent_state(kind, 0)) for kind in AgentKind]


# --- apply, update, pause, delete ---------------------------------------------------------------


async def test_apply_creates_every_child_with_owner_references(operator: OperatorThread, api: Api, namespace: str):
    created = await create(api, namespace, "alpha")
    bot = await settled(api, namespace, "alpha")
    expected = {(m["kind"], m["metadata"]["name"]) for m in desired_state(created)}
    children = await api.children(namespace, "alpha")
    assert set(children) == expected
    assert len(expected) >= 20  # every agent on: 7 Deployments, Services, PDBs, HPA, NATS, Redis, …
    for (kind, _name), child in children.items():
        refs = child["metadata"]["ownerReferences"]
        assert refs == [{"apiVersion": "tradingbot.io/v1alpha1", "kind": "TradingBot", "name": "alpha",
                         "uid": created["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}], kind
        assert APPLIED_HASH_ANNOTATION in child["metadata"]["annotations"]
        clean = copy.deepcopy(child)
        for field in SERVER_FIELDS:
            clean["metadata"].pop(field, None)
        clean.pop("status", None)
        validate_builtin(clean)
    # Status: honest about readiness (nothing runs in an emulator), owned generation, no finalizer.
    assert bot["status"]["phase"] == "Pending"
    assert cond(bot, "Ready")["status"] == "False" and cond(bot, "Ready")["reason"] == "AgentsNotReady"
    assert cond(bot, "Degraded")["status"] == "False"
    assert all(c["observedGeneration"] == 1 for c in bot["status"]["conditions"])
    assert not bot["metadata"].get("finalizers")
    events = await api.events(namespace)
    applied = [e for e in events if e.get("reason") == "Applied"]
    assert applied and "created Deployment/alpha-coordinator" in applied[0]["message"]
    # The hpa-mode replica warning is not expected here, but operator-mode bounds are enforced.
    assert await eventually(lambda: replicas_of(api, namespace, "alpha-trading-worker")) == 2


async def test_ready_only_when_every_agent_is_ready(operator: OperatorThread, api: Api, namespace: str):
    await create(api, namespace, "ready")
    await settled(api, namespace, "ready")
    await eventually(lambda: replicas_of(api, namespace, "ready-trading-worker"))  # the owner set it
    await mark_ready(api, namespace, "ready")

    async def running() -> dict[str, Any] | None:
        bot = await api.bot(namespace, "ready")
        return bot if bot["status"].get("phase") == "Running" else None

    bot = await eventually(running, what="phase Running")
    assert cond(bot, "Ready")["status"] == "True"
    assert cond(bot, "Progressing")["reason"] == "ReconcileComplete"
    assert bot["status"]["ready"] == "7/7"
    assert bot["status"]["agents"]["tradingWorker"] == {**bot["status"]["agents"]["tradingWorker"],
                                                       "desiredReplicas": 2, "readyReplicas": 2}
    assert bot["status"]["tradingWorkerReplicas"] == 2
    assert "app.kubernetes.io/component=trading-worker" in bot["status"]["tradingWorkerSelector"]
    # One pod of one agent goes unready → not Ready any more, and the message says which.
    await api.patch(*DEPLOY, namespace, "ready-risk", {"status": {"readyReplicas": 0}}, "status")

    async def not_ready() -> dict[str, Any] | None:
        bot = await api.bot(namespace, "ready")
        return bot if cond(bot, "Ready").get("status") == "False" else None

    bot = await eventually(not_ready, what="Ready False")
    assert "risk 0/1 ready" in cond(bot, "Ready")["message"]


async def test_config_change_rolls_only_the_affected_agents(operator: OperatorThread, api: Api, namespace: str):
    await create(api, namespace, "beta")
    await settled(api, namespace, "beta")
    await eventually(lambda: replicas_of(api, namespace, "beta-trading-worker"))
    before = await deployments(api, namespace, "beta")
    generation = await edit_spec(api, namespace, "beta", {"risk": {"maxPortfolioVar": 0.02}})
    await settled(api, namespace, "beta", generation)
    after = await deployments(api, namespace, "beta")
    changed = {n for n in after if after[n]["metadata"]["resourceVersion"] != before[n]["metadata"]["resourceVersion"]}
    assert changed == {"beta-risk"}
    hashes = {n: d["spec"]["template"]["metadata"]["annotations"][CONFIG_HASH_ANNOTATION] for n, d in after.items()}
    old = {n: d["spec"]["template"]["metadata"]["annotations"][CONFIG_HASH_ANNOTATION] for n, d in before.items()}
    assert hashes["beta-risk"] != old["beta-risk"]
    assert {n for n in hashes if hashes[n] != old[n]} == {"beta-risk"}
    config = await api.get("v1", "ConfigMap", namespace, "beta-config")
    assert "0.02" in str(config["data"])
    events = [e["message"] for e in await api.events(namespace) if e.get("reason") == "Applied"]
    assert any("updated Deployment/beta-risk" in m and "beta-data" not in m for m in events)


async def test_disabling_an_agent_prunes_its_children(operator: OperatorThread, api: Api, namespace: str):
    await create(api, namespace, "gamma")
    await settled(api, namespace, "gamma")
    generation = await edit_spec(api, namespace, "gamma", {"agents": {"data": {"enabled": False}}})
    await settled(api, namespace, "gamma", generation)
    children = await api.children(namespace, "gamma")
    assert not [key for key in children if key[1] == "gamma-data"]  # Deployment, Service, HPA, PDB
    assert ("Deployment", "gamma-risk") in children
    bot = await api.bot(namespace, "gamma")
    assert "data" not in (bot["status"].get("agents") or {})
    assert bot["status"]["ready"].endswith("/6")


async def test_pause_changes_nothing_until_resumed(operator: OperatorThread, api: Api, namespace: str):
    await create(api, namespace, "delta")
    await settled(api, namespace, "delta")
    await eventually(lambda: replicas_of(api, namespace, "delta-trading-worker"))
    generation = await edit_spec(api, namespace, "delta", {"paused": True})
    bot = await settled(api, namespace, "delta", generation)
    assert cond(bot, "Progressing")["reason"] == "ReconciliationPaused"
    assert bot["status"]["phase"] == "Paused"
    before = {k: v["metadata"]["resourceVersion"] for k, v in (await api.children(namespace, "delta")).items()}
    generation = await edit_spec(api, namespace, "delta", {"risk": {"maxPortfolioVar": 0.01},
                                                           "agents": {"rl": {"enabled": False}}})
    await settled(api, namespace, "delta", generation)
    await asyncio.sleep(1.0)  # five control ticks
    after = {k: v["metadata"]["resourceVersion"] for k, v in (await api.children(namespace, "delta")).items()}
    assert after == before
    assert any(e.get("reason") == "ReconciliationPaused" for e in await api.events(namespace))
    # Resume: the pending changes are applied.
    generation = await edit_spec(api, namespace, "delta", {"paused": False})
    await settled(api, namespace, "delta", generation)
    children = await api.children(namespace, "delta")
    assert ("Deployment", "delta-rl") not in children
    assert children[("Deployment", "delta-risk")]["metadata"]["resourceVersion"] != before[("Deployment", "delta-risk")]


async def test_drift_is_corrected_by_the_periodic_resync(operator: OperatorThread, api: Api, namespace: str):
    await create(api, namespace, "drift")
    await settled(api, namespace, "drift")
    original = await api.get(*DEPLOY, namespace, "drift-risk")
    await api.delete(*DEPLOY, namespace, "drift-risk")
    await api.patch("v1", "Service", namespace, "drift-data", {"spec": {"ports": [{"port": 1, "name": "x"}]}})

    async def restored() -> bool:
        service = await api.get("v1", "Service", namespace, "drift-data")
        deployment = await api.get(*DEPLOY, namespace, "drift-risk")
        return service["spec"]["ports"][0]["port"] == 8080 and deployment["metadata"]["uid"] != original[
            "metadata"]["uid"]

    await eventually(restored, what="deleted and edited children restored", timeout=10)


async def test_delete_removes_children_through_garbage_collection(
    operator: OperatorThread, api: Api, namespace: str
):
    await create(api, namespace, "eps")
    await settled(api, namespace, "eps")
    assert await api.children(namespace, "eps")
    await api.delete(*TB, namespace, "eps")

    async def gone() -> bool:
        return not await api.children(namespace, "eps")

    await eventually(gone, what="children garbage-collected")


# --- the control loop ---------------------------------------------------------------------------


async def test_failed_agent_is_restarted_then_degraded_then_recovers(
    operator: OperatorThread, api: Api, coordinator: FakeCoordinator, namespace: str
):
    await create(api, namespace, "zeta")
    await settled(api, namespace, "zeta")
    failed = agent_state(AgentKind.DATA, 0, status=HealthStatus.FAILED, reason="no market data for 90s")
    coordinator.statuses[(namespace, "zeta")] = system_status("zeta", healthy_agents(DATA=failed))

    async def restarted() -> str | None:
        d = await api.get(*DEPLOY, namespace, "zeta-data")
        return d["spec"]["template"]["metadata"].get("annotations", {}).get(RESTARTED_AT_ANNOTATION)

    first = await eventually(restarted, what="restartedAt annotation")
    others = await deployments(api, namespace, "zeta")
    assert all(RESTARTED_AT_ANNOTATION not in d["spec"]["template"]["metadata"]["annotations"]
               for n, d in others.items() if n != "zeta-data")

    async def degraded() -> dict[str, Any] | None:
        bot = await api.bot(namespace, "zeta")
        return bot if cond(bot, "Degraded").get("status") == "True" else None

    bot = await eventually(degraded, what="Degraded after repeated restarts")
    assert cond(bot, "Degraded")["reason"] == "AgentRestartsExhausted"
    assert "data still failing" in cond(bot, "Degraded")["message"]
    assert bot["status"]["phase"] == "Degraded"
    data = bot["status"]["agents"]["data"]
    assert data["restarts"] >= 2 and data["health"] == "failed"
    assert "no market data" in data["lastRestartReason"]
    assert await restarted() != first  # restarted again after the backoff
    reasons = [e.get("reason") for e in await api.events(namespace)]
    assert "AgentRestarted" in reasons and "AgentRestartsExhausted" in reasons
    assert operator.ctx.metrics.registry.get_sample_value("tradingbot_operator_restarts_total", {"agent": "data"}) >= 2
    # A config reconcile keeps the control loop's Degraded and its restart annotation.
    generation = await edit_spec(api, namespace, "zeta", {"cache": {"defaultTtlSeconds": 120}})
    bot = await settled(api, namespace, "zeta", generation)
    assert await restarted() is not None
    # Recovery clears Degraded.
    coordinator.statuses[(namespace, "zeta")] = system_status("zeta", healthy_agents())

    async def recovered() -> dict[str, Any] | None:
        bot = await api.bot(namespace, "zeta")
        return bot if cond(bot, "Degraded").get("status") == "False" else None

    bot = await eventually(recovered, what="Degraded cleared")
    assert bot["status"]["agents"]["data"]["health"] == "healthy"


async def test_operator_mode_scales_within_bounds_and_settles(
    operator: OperatorThread, api: Api, coordinator: FakeCoordinator, namespace: str
):
    await create(api, namespace, "eta")  # tradingWorker: operator mode, min 2, max 6, targetLoad 0.7
    await settled(api, namespace, "eta")
    deployment = "eta-trading-worker"
    assert await eventually(lambda: replicas_of(api, namespace, deployment)) == 2
    seen: list[int] = []

    def load(cpu: float) -> None:
        workers = [agent_state(AgentKind.TRADING_WORKER, i, cpu=cpu) for i in range(2)]
        coordinator.statuses[(namespace, "eta")] = system_status("eta", [*healthy_agents()[:5], *workers])

    async def reaches(target: int) -> bool:
        value = await replicas_of(api, namespace, deployment)
        seen.append(value)
        return value == target

    load(100.0)
    await eventually(lambda: reaches(6), what="scaled up to max")
    await asyncio.sleep(0.6)
    assert await replicas_of(api, namespace, deployment) == 6  # settled at max, not beyond
    load(5.0)
    await eventually(lambda: reaches(2), what="scaled down to min")
    assert all(2 <= r <= 6 for r in seen)
    assert seen.index(6) < len(seen) - 1 and 6 in seen
    # Missing load data: hold, never scale to max.
    load(100.0)
    del coordinator.statuses[(namespace, "eta")]
    await asyncio.sleep(1.0)
    assert await replicas_of(api, namespace, deployment) == 2
    bot = await api.bot(namespace, "eta")
    assert bot["status"]["agents"]["tradingWorker"]["desiredReplicas"] == 2
    metrics = operator.ctx.metrics.registry
    assert metrics.get_sample_value("tradingbot_operator_scale_changes_total",
                                    {"agent": "trading-worker", "direction": "up"}) >= 1
    assert metrics.get_sample_value("tradingbot_operator_scale_changes_total",
                                    {"agent": "trading-worker", "direction": "down"}) >= 1
    scaled = [e["message"] for e in await api.events(namespace) if e.get("reason") == "AgentScaled"]
    assert any("-> 6" in m for m in scaled)


async def test_hpa_mode_replicas_are_never_touched(
    operator: OperatorThread, api: Api, coordinator: FakeCoordinator, namespace: str
):
    def hpa_worker(spec: dict[str, Any]) -> None:
        spec["agents"]["tradingWorker"]["autoscaling"] = {"mode": "hpa", "min": 1, "max": 4}
        spec["agents"]["tradingWorker"]["replicas"] = 3  # has no effect: the HPA owns it

    await create(api, namespace, "theta", hpa_worker)
    await settled(api, namespace, "theta")
    deployment = "theta-trading-worker"
    hpa = await api.get("autoscaling/v2", "HorizontalPodAutoscaler", namespace, deployment)
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 4)
    workers = [agent_state(AgentKind.TRADING_WORKER, i, cpu=100.0) for i in range(2)]
    coordinator.statuses[(namespace, "theta")] = system_status("theta", [*healthy_agents()[:5], *workers])
    warnings = [e for e in await api.events(namespace) if e.get("reason") == "SpecIgnored"]
    assert any("tradingWorker.replicas=3 has no effect" in e["message"] for e in warnings)
    await asyncio.sleep(1.0)  # five control ticks under full load
    assert await replicas_of(api, namespace, deployment) is None
    # The HPA writes replicas; a reconcile (server-side apply, another field manager) keeps them.
    await api.client.merge_patch(f"/apis/apps/v1/namespaces/{namespace}/deployments/{deployment}",
                                 {"spec": {"replicas": 3}}, field_manager="horizontal-pod-autoscaler")
    generation = await edit_spec(api, namespace, "theta", {"risk": {"maxPortfolioVar": 0.03}})
    await settled(api, namespace, "theta", generation)
    await asyncio.sleep(0.6)
    assert await replicas_of(api, namespace, deployment) == 3


# --- specs that cannot work ---------------------------------------------------------------------


async def test_production_without_credentials_is_degraded_and_creates_nothing(
    operator: OperatorThread, api: Api, namespace: str
):
    def production(spec: dict[str, Any]) -> None:
        spec["mode"] = "production"
        spec["exchange"].pop("credentials")

    await create(api, namespace, "iota", production)
    bot = await settled(api, namespace, "iota")
    degraded = cond(bot, "Degraded")
    assert degraded["status"] == "True" and degraded["reason"] == "UnsafeSpec"
    assert "spec.exchange.credentials.secretRef is required in production mode" in degraded["message"]
    assert bot["status"]["phase"] == "Degraded" and cond(bot, "Ready")["status"] == "False"
    assert await api.children(namespace, "iota") == {}
    warnings = [e for e in await api.events(namespace) if e.get("type") == "Warning"]
    assert any("credentials" in e["message"] for e in warnings)


async def test_production_with_a_missing_secret_waits_for_it(operator: OperatorThread, api: Api, namespace: str):
    def production(spec: dict[str, Any]) -> None:
        spec["mode"] = "production"

    await create(api, namespace, "kappa", production)  # secretRef: binance, which does not exist
    bot = await settled(api, namespace, "kappa")
    assert cond(bot, "Degraded")["reason"] == "MissingSecret"
    assert "Secret 'binance'" in cond(bot, "Degraded")["message"]
    assert await api.children(namespace, "kappa") == {}
    await api.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "binance", "namespace": namespace},
                      "data": {"api-key": "a2V5", "api-secret": "c2VjcmV0"}})
    generation = await edit_spec(api, namespace, "kappa", {"risk": {"maxPortfolioVar": 0.04}})
    bot = await settled(api, namespace, "kappa", generation)
    assert cond(bot, "Degraded")["status"] == "False"
    worker = await api.get(*DEPLOY, namespace, "kappa-trading-worker")
    env = {e["name"]: e for e in worker["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["BINANCE_API_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "binance", "key": "api-key"}


# --- operations ---------------------------------------------------------------------------------


async def test_metrics_endpoint(operator: OperatorThread, api: Api, namespace: str):
    await create(api, namespace, "lam")
    await settled(api, namespace, "lam")
    port = operator.ctx.metrics_port
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/metrics") as response:
        text = await response.text()
    assert response.status == 200
    for name in ("tradingbot_operator_reconciles_total", "tradingbot_operator_reconcile_duration_seconds_bucket",
                 "tradingbot_operator_errors_total", "tradingbot_operator_restarts_total",
                 "tradingbot_operator_scale_changes_total"):
        assert name in text or name.replace("_total", "") in text, name
    assert operator.ctx.metrics.registry.get_sample_value(
        "tradingbot_operator_reconciles_total", {"result": "applied"}) >= 1


async def test_watches_are_re_established_after_the_server_ends_them(
    operator: OperatorThread, api: Api, emulator: Any, namespace: str
):
    from tests.operator_kmock.conftest import WATCH_TIMEOUT_S

    # Every watch opened at the operator's start has been ended by now.
    await asyncio.sleep(max(0.0, operator.started_at + WATCH_TIMEOUT_S + 1.0 - time.monotonic()))
    ended = emulator.log_path.read_text().count("watch ended after timeoutSeconds")
    assert ended >= 1
    await create(api, namespace, "late")  # seen only through a re-established watch
    await settled(api, namespace, "late")
