"""The apply path without a server: create fallback, skip-if-unchanged, drift detection, pruning."""

from __future__ import annotations

from typing import Any

from tradingbot_operator.apply import (
    APPLIED_HASH_ANNOTATION,
    KubeClient,
    NotFound,
    apply,
    apply_desired,
    up_to_date,
    with_applied_hash,
)

UID = "u-1"


def cm(name: str, data: dict[str, str], *, owner: str | None = UID) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "ns", "labels": {
        "app.kubernetes.io/instance": "bot", "app.kubernetes.io/managed-by": "tradingbot-operator"}}
    if owner:
        meta["ownerReferences"] = [{"uid": owner, "controller": True}]
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}


class StubClient(KubeClient):
    """Answers like an API server that does not create on apply (404), as KMock 0.8 does."""

    def __init__(self, existing: list[dict[str, Any]]) -> None:
        self.objects = {o["metadata"]["name"]: o for o in existing}
        self.calls: list[tuple[str, str]] = []

    async def request(self, method: str, path: str, *, body: Any = None, query: Any = None,
                      content_type: str = "application/json", timeout: float = 30.0) -> dict[str, Any]:
        self.calls.append((method, path))
        name = path.rsplit("/", 1)[1]
        if method == "GET":
            return {"items": list(self.objects.values())}
        if method == "PATCH":
            if name not in self.objects:
                raise NotFound(name)
            self.objects[name] = {**body, "metadata": {**body["metadata"], "resourceVersion": "2"}}
            return self.objects[name]
        if method == "POST":
            self.objects[body["metadata"]["name"]] = {**body, "metadata": {**body["metadata"], "resourceVersion": "1"}}
            return self.objects[body["metadata"]["name"]]
        if method == "DELETE":
            self.objects.pop(name)
            return {}
        raise AssertionError(method)


async def test_apply_falls_back_to_create_on_404() -> None:
    client = StubClient([])
    result = await apply(client, cm("a", {"k": "v"}))
    assert result["metadata"]["resourceVersion"] == "1"
    assert [m for m, _ in client.calls] == ["PATCH", "POST"]


def test_up_to_date_needs_the_same_hash_and_no_drift() -> None:
    desired = with_applied_hash(cm("a", {"k": "v"}))
    assert up_to_date(desired, {**desired, "metadata": {**desired["metadata"], "uid": "x"}})
    assert not up_to_date(desired, {**desired, "data": {"k": "edited by hand"}})
    stale = with_applied_hash(cm("a", {"k": "v", "dropped": "1"}))
    assert stale["metadata"]["annotations"][APPLIED_HASH_ANNOTATION] != desired["metadata"]["annotations"][
        APPLIED_HASH_ANNOTATION]
    assert not up_to_date(desired, stale)  # a dropped field is re-applied (the server removes it)
    assert not up_to_date(desired, None)


async def test_apply_desired_skips_unchanged_and_prunes_only_owned_children() -> None:
    same = with_applied_hash(cm("same", {"k": "v"}))
    client = StubClient([same, cm("gone", {}), cm("foreign", {}, owner="someone-else")])
    report = await apply_desired(client, [cm("same", {"k": "v"}), cm("new", {"k": "v"})], namespace="ns",
                                 bot_name="bot", bot_uid=UID, kinds=[("v1", "ConfigMap")])
    assert [(c.action, c.name) for c in report.changes] == [("created", "new"), ("deleted", "gone")]
    assert "foreign" in client.objects  # labelled like ours, but not ours: never touched
    assert ("PATCH", "/api/v1/namespaces/ns/configmaps/same") not in client.calls
