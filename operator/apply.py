"""Talking to the API server: apply the desired manifests, list and prune children.

Client: ``kubernetes_asyncio``'s ``ApiClient`` used as a thin REST transport (``call_api`` with
plain dicts, no generated models). Why: it is async, so no request ever blocks kopf's event loop
(the ``kubernetes`` package would need a thread per call, and kopf's own client is private API);
it reads the same kubeconfig / in-cluster service account as kopf's login, including exec
plugins and token refresh; and generic paths keep one code path for every kind we own.

Apply is server-side apply: ``PATCH`` with ``application/apply-patch+yaml`` (the body is JSON,
which is YAML), one field manager (``tradingbot-operator``), ``force=true`` (the operator is the
authority over the fields it sets). A real API server creates the object when absent; an emulator
may answer 404 instead, so a 404 falls back to ``POST`` — both paths end in the same object. Fields
dropped from the desired state are removed by the API server because this manager no longer
applies them. The control loop writes ``replicas`` and the restart annotation under a different
field manager, so the reconcile's apply never removes them.

To keep write traffic proportional to change, each child carries ``tradingbot.io/applied-hash``
(a hash of what was applied); an object whose hash matches and whose live fields still contain
every desired value is not re-applied. Anything else (drift, a dropped field) is applied again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from typing import Any

import kopf
from kubernetes_asyncio import client as k8s_client
from kubernetes_asyncio import config as k8s_config
from kubernetes_asyncio.client.exceptions import ApiException

from tradingbot_operator.settings import ANNOTATION_PREFIX, FIELD_MANAGER

APPLIED_HASH_ANNOTATION = f"{ANNOTATION_PREFIX}/applied-hash"
INSTANCE_LABEL = "app.kubernetes.io/instance"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "tradingbot-operator"

#: (apiVersion, kind) → plural, for every kind the operator writes or reads.
PLURALS: dict[tuple[str, str], str] = {
    ("v1", "ServiceAccount"): "serviceaccounts",
    ("v1", "ConfigMap"): "configmaps",
    ("v1", "Service"): "services",
    ("v1", "Secret"): "secrets",
    ("apps/v1", "StatefulSet"): "statefulsets",
    ("apps/v1", "Deployment"): "deployments",
    ("autoscaling/v2", "HorizontalPodAutoscaler"): "horizontalpodautoscalers",
    ("policy/v1", "PodDisruptionBudget"): "poddisruptionbudgets",
    ("networking.k8s.io/v1", "NetworkPolicy"): "networkpolicies",
    ("tradingbot.io/v1alpha1", "TradingBot"): "tradingbots",
}


class NotFound(Exception):
    pass


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


def resource_path(
    api_version: str, kind: str, namespace: str | None, name: str | None = None, subresource: str | None = None
) -> str:
    plural = PLURALS[(api_version, kind)]
    base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    path = f"{base}/namespaces/{namespace}/{plural}" if namespace else f"{base}/{plural}"
    if name:
        path += f"/{name}"
    if subresource:
        path += f"/{subresource}"
    return path


async def load_configuration(kubeconfig: str | None = None) -> k8s_client.Configuration:
    """``kubeconfig`` if given, else the in-cluster service account if present, else
    ``KUBECONFIG`` / ``~/.kube/config``."""
    configuration = k8s_client.Configuration()
    if kubeconfig is None:
        try:
            k8s_config.load_incluster_config(client_configuration=configuration)
            return configuration
        except k8s_config.ConfigException:
            kubeconfig = os.environ.get("KUBECONFIG") or None  # read now: the library reads it at import
    await k8s_config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    return configuration


def connection_info(configuration: k8s_client.Configuration) -> kopf.ConnectionInfo:
    """The same credentials for kopf's own watches (its login handler) as for our requests."""
    token = (configuration.api_key or {}).get("authorization") or (configuration.api_key or {}).get("BearerToken")
    if token and token.lower().startswith("bearer "):
        token = token[len("bearer "):]
    return kopf.ConnectionInfo(
        server=configuration.host,
        ca_path=configuration.ssl_ca_cert,
        insecure=not configuration.verify_ssl,
        token=token or None,
        certificate_path=configuration.cert_file,
        private_key_path=configuration.key_file,
    )


class KubeClient:
    """A JSON-in, JSON-out async client. ``request`` raises :class:`NotFound` on 404 and
    :class:`ApiError` on any other failure, with the API server's message."""

    def __init__(self, api: k8s_client.ApiClient) -> None:
        self._api = api

    @classmethod
    async def from_environment(cls, kubeconfig: str | None = None) -> KubeClient:
        return cls(k8s_client.ApiClient(await load_configuration(kubeconfig)))

    async def close(self) -> None:
        await self._api.close()

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: Mapping[str, str] | None = None,
        content_type: str = "application/json",
        timeout: float = 30.0,
    ) -> dict[str, Any]:
        headers = {"Accept": "application/json", "Content-Type": content_type}
        try:
            response = await self._api.call_api(
                path, method, query_params=list((query or {}).items()), header_params=headers,
                body=body, auth_settings=["BearerToken"], _preload_content=False,
                _return_http_data_only=True, _request_timeout=timeout,
            )
            status, data = response.status, await response.read()
        except ApiException as exc:
            status, data = int(exc.status or 0), exc.body or b""
        if status >= 400:
            message = data.decode(errors="replace") if isinstance(data, bytes) else str(data)
            with contextlib.suppress(ValueError, AttributeError):
                message = json.loads(data).get("message") or message
            if status == 404:
                raise NotFound(message)
            raise ApiError(status, message)
        return json.loads(data) if data else {}

    async def get(self, path: str) -> dict[str, Any]:
        return await self.request("GET", path)

    async def merge_patch(self, path: str, patch: Mapping[str, Any], *, field_manager: str) -> dict[str, Any]:
        return await self.request(
            "PATCH", path, body=patch, content_type="application/merge-patch+json",
            query={"fieldManager": field_manager},
        )

    async def delete(self, path: str) -> None:
        await self.request("DELETE", path, body={"propagationPolicy": "Background"})


def manifest_hash(manifest: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def contains(live: Any, desired: Any) -> bool:
    """Every value in ``desired`` is present and equal in ``live`` (lists compared element-wise)."""
    if isinstance(desired, Mapping):
        return isinstance(live, Mapping) and all(k in live and contains(live[k], v) for k, v in desired.items())
    if isinstance(desired, list):
        return isinstance(live, list) and len(live) == len(desired) and all(
            contains(a, b) for a, b in zip(live, desired, strict=True)
        )
    return bool(live == desired)


def with_applied_hash(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest with its own hash as an annotation (the hash excludes the annotation)."""
    out = json.loads(json.dumps(manifest))
    out["metadata"].setdefault("annotations", {})[APPLIED_HASH_ANNOTATION] = manifest_hash(manifest)
    return out


@dataclasses.dataclass(frozen=True)
class Change:
    action: str  # created | updated | deleted
    kind: str
    name: str


def object_key(obj: Mapping[str, Any]) -> tuple[str, str, str]:
    return obj["apiVersion"], obj["kind"], obj["metadata"]["name"]


def up_to_date(desired: Mapping[str, Any], live: Mapping[str, Any] | None) -> bool:
    if live is None:
        return False
    annotations = live.get("metadata", {}).get("annotations") or {}
    wanted = desired["metadata"]["annotations"][APPLIED_HASH_ANNOTATION]
    return bool(annotations.get(APPLIED_HASH_ANNOTATION) == wanted and contains(live, desired))


async def apply(
    client: KubeClient, manifest: Mapping[str, Any], *, field_manager: str = FIELD_MANAGER
) -> dict[str, Any]:
    """Server-side apply one object; create it if the server answers 404 (see module docstring)."""
    meta = manifest["metadata"]
    namespace = meta.get("namespace")
    path = resource_path(manifest["apiVersion"], manifest["kind"], namespace, meta["name"])
    try:
        return await client.request(
            "PATCH", path, body=manifest, content_type="application/apply-patch+yaml",
            query={"fieldManager": field_manager, "force": "true"},
        )
    except NotFound:
        collection = resource_path(manifest["apiVersion"], manifest["kind"], namespace)
        return await client.request("POST", collection, body=manifest, query={"fieldManager": field_manager})


def children_selector(bot_name: str) -> str:
    return f"{INSTANCE_LABEL}={bot_name},{MANAGED_BY_LABEL}={MANAGED_BY}"


def owned_by(obj: Mapping[str, Any], uid: str) -> bool:
    refs = obj.get("metadata", {}).get("ownerReferences") or []
    return any(ref.get("uid") == uid and ref.get("controller") for ref in refs)


async def list_children(
    client: KubeClient, *, namespace: str, bot_name: str, bot_uid: str, kinds: Iterable[tuple[str, str]]
) -> dict[tuple[str, str, str], dict[str, Any]]:
    """The bot's children of the given kinds: selected by label, and kept only when the bot is
    their controller (an object that merely carries the labels is never touched)."""
    out: dict[tuple[str, str, str], dict[str, Any]] = {}
    selector = children_selector(bot_name)
    for api_version, kind in kinds:
        listing = await client.request(
            "GET", resource_path(api_version, kind, namespace), query={"labelSelector": selector}
        )
        for item in listing.get("items") or []:
            item.setdefault("apiVersion", api_version)
            item.setdefault("kind", kind)
            if owned_by(item, bot_uid):
                out[(api_version, kind, item["metadata"]["name"])] = item
    return out


@dataclasses.dataclass
class ApplyReport:
    changes: list[Change]
    objects: dict[tuple[str, str, str], dict[str, Any]]  # live state after the apply, by key


async def apply_desired(
    client: KubeClient,
    desired: list[dict[str, Any]],
    *,
    namespace: str,
    bot_name: str,
    bot_uid: str,
    kinds: Iterable[tuple[str, str]],
) -> ApplyReport:
    """Make the children equal to ``desired``: apply what differs, in order, then delete the
    children the desired state no longer contains (an agent disabled, hpa switched off)."""
    live = await list_children(client, namespace=namespace, bot_name=bot_name, bot_uid=bot_uid, kinds=kinds)
    changes: list[Change] = []
    objects: dict[tuple[str, str, str], dict[str, Any]] = {}
    for plain in desired:
        manifest = with_applied_hash(plain)
        key = object_key(manifest)
        current = live.get(key)
        if up_to_date(manifest, current):
            assert current is not None
            objects[key] = current
            continue
        result = await apply(client, manifest)
        objects[key] = result
        before = (current or {}).get("metadata", {}).get("resourceVersion")
        after = result.get("metadata", {}).get("resourceVersion")
        if current is None:
            changes.append(Change("created", key[1], key[2]))
        elif before != after:
            changes.append(Change("updated", key[1], key[2]))
    wanted = {object_key(m) for m in desired}
    for key, obj in live.items():
        if key in wanted:
            continue
        try:
            await client.delete(resource_path(key[0], key[1], namespace, obj["metadata"]["name"]))
        except NotFound:
            continue
        changes.append(Change("deleted", key[1], key[2]))
    return ApplyReport(changes=changes, objects=objects)
