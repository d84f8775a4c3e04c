"""The harness's additions to KMock behave as the Kubernetes documentation says (README.md).

If one of these fails, the operator tests above it prove nothing, so each piece is checked
on its own, without the operator."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.operator_kmock.harness import Api, eventually
from tradingbot_operator.apply import NotFound, apply

DEPLOY = ("apps/v1", "Deployment")


def deployment(ns: str, name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": ns, "labels": {"app": name, "tier": "x"}},
            "spec": {"replicas": 1, **spec}}


@pytest.fixture
def ns() -> str:
    return f"emu-{uuid.uuid4().hex[:6]}"


async def test_metadata_is_assigned_and_generation_moves_on_spec_only(api: Api, ns: str):
    created = await api.create(deployment(ns, "a"))
    meta = created["metadata"]
    assert meta["generation"] == 1 and meta["uid"] and meta["creationTimestamp"] and meta["resourceVersion"]
    labelled = await api.patch(*DEPLOY, ns, "a", {"metadata": {"labels": {"extra": "1"}}})
    assert labelled["metadata"]["generation"] == 1
    assert int(labelled["metadata"]["resourceVersion"]) > int(meta["resourceVersion"])
    changed = await api.patch(*DEPLOY, ns, "a", {"spec": {"replicas": 2}})
    assert changed["metadata"]["generation"] == 2
    hijack = await api.patch(*DEPLOY, ns, "a", {"metadata": {"uid": "x", "generation": 99}})
    assert hijack["metadata"]["uid"] == meta["uid"] and hijack["metadata"]["generation"] == 2


async def test_a_no_op_write_keeps_the_resource_version(api: Api, ns: str):
    created = await api.create(deployment(ns, "a"))
    same = await api.patch(*DEPLOY, ns, "a", {"spec": {"replicas": 1}})
    assert same["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


async def test_status_subresource_split(api: Api, ns: str):
    await api.create({**deployment(ns, "a"), "status": {"readyReplicas": 5}})
    assert "status" not in await api.get(*DEPLOY, ns, "a")  # status is ignored on create
    main = await api.patch(*DEPLOY, ns, "a", {"spec": {"paused": True}, "status": {"readyReplicas": 3}})
    assert "status" not in main and main["spec"]["paused"] is True
    status = await api.patch(*DEPLOY, ns, "a", {"spec": {"paused": False}, "status": {"readyReplicas": 1}}, "status")
    assert status["status"] == {"readyReplicas": 1} and status["spec"]["paused"] is True
    assert status["metadata"]["generation"] == 2  # status writes never bump it


async def test_owner_reference_cascade_on_delete(api: Api, ns: str):
    owner = await api.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owner", "namespace": ns}})
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["metadata"]["uid"],
           "controller": True}
    child = deployment(ns, "child")
    child["metadata"]["ownerReferences"] = [ref]
    await api.create(child)
    await api.create(deployment(ns, "bystander"))
    await api.delete("v1", "ConfigMap", ns, "owner")
    with pytest.raises(NotFound):
        await api.get(*DEPLOY, ns, "child")
    assert (await api.get(*DEPLOY, ns, "bystander"))["metadata"]["name"] == "bystander"
    # A dependent created after its owner was deleted (an apply racing the deletion) is collected.
    late = deployment(ns, "late")
    late["metadata"]["ownerReferences"] = [ref]
    assert (await api.create(late))["metadata"]["name"] == "late"  # answered like any create, then

    async def collected() -> bool:
        try:
            await api.get(*DEPLOY, ns, "late")
        except NotFound:
            return True
        return False

    await eventually(collected, timeout=2.0, what="the dangling dependent collected")


async def test_label_selectors_on_list(api: Api, ns: str):
    await api.create(deployment(ns, "a"))
    await api.create(deployment(ns, "b"))
    assert [d["metadata"]["name"] for d in await api.list(*DEPLOY, ns, "app=a")] == ["a"]
    assert sorted(d["metadata"]["name"] for d in await api.list(*DEPLOY, ns, "tier=x,app!=a")) == ["b"]
    assert await api.list(*DEPLOY, ns, "!tier") == []


async def test_server_side_apply_removes_what_the_manager_stopped_applying(api: Api, ns: str):
    manifest = deployment(ns, "a", paused=True)
    created = await api.client.request(  # an apply creates a missing object, as a real server does
        "PATCH", f"/apis/apps/v1/namespaces/{ns}/deployments/a", body=manifest,
        content_type="application/apply-patch+yaml", query={"fieldManager": "m"})
    assert created["metadata"]["generation"] == 1 and created["spec"]["paused"] is True
    await api.client.merge_patch(f"/apis/apps/v1/namespaces/{ns}/deployments/a",
                                 {"spec": {"minReadySeconds": 5}}, field_manager="other")
    dropped = deployment(ns, "a")  # no more `paused`
    result = await apply(api.client, dropped, field_manager="m")
    assert "paused" not in result["spec"]
    assert result["spec"]["minReadySeconds"] == 5  # another manager's field stays
