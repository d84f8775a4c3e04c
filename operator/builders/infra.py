"""The bot's own NATS (JetStream on a PVC) and Redis, when the spec gives no URLs; and the
NetworkPolicy that fences the bot's pods.

Images are pinned by tag so a re-render never changes what runs. Both are single-replica
StatefulSets owned by the TradingBot: enough for one bot's traffic, and deleted with it (the NATS
PVC stays, as StatefulSet PVCs do, so JetStream state survives a re-create of the same bot).
"""

from __future__ import annotations

from typing import Any

from tradingbot_operator.builders.common import (
    COMPONENT_NATS,
    COMPONENT_NETWORK,
    COMPONENT_REDIS,
    HTTP_PORT,
    PART_OF,
    container_security_context,
    labels,
    metadata,
    object_name,
    pod_security_context,
    selector_labels,
)
from tradingbot_operator.builders.config import NATS_CLIENT_PORT, REDIS_PORT
from tradingbot_operator.spec import TradingBot

NATS_IMAGE = "nats:2.10.22-alpine"
REDIS_IMAGE = "redis:7.2.5-alpine"
NATS_MONITOR_PORT = 8222
_NATS_UID = 1000
_REDIS_UID = 999  # the `redis` user of the official alpine image


def _headless_service(bot: TradingBot, component: str, ports: list[dict[str, Any]]) -> dict[str, Any]:
    """Headless: the StatefulSet's governing Service; one pod, so its DNS name is the address."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(bot, name=object_name(bot, component), component=component),
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": False,
            "selector": selector_labels(bot, component),
            "ports": ports,
        },
    }


def nats_service(bot: TradingBot) -> dict[str, Any]:
    return _headless_service(
        bot,
        COMPONENT_NATS,
        [
            {"name": "client", "port": NATS_CLIENT_PORT, "targetPort": "client", "protocol": "TCP"},
            {"name": "monitor", "port": NATS_MONITOR_PORT, "targetPort": "monitor", "protocol": "TCP"},
        ],
    )


def nats_statefulset(bot: TradingBot) -> dict[str, Any]:
    nats = bot.spec.nats
    claim_spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": nats.storage_size}},
    }
    if nats.storage_class_name:
        claim_spec["storageClassName"] = nats.storage_class_name
    container = {
        "name": COMPONENT_NATS,
        "image": NATS_IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "args": ["-js", "-sd", "/data", "-m", str(NATS_MONITOR_PORT), "-p", str(NATS_CLIENT_PORT)],
        "ports": [
            {"name": "client", "containerPort": NATS_CLIENT_PORT, "protocol": "TCP"},
            {"name": "monitor", "containerPort": NATS_MONITOR_PORT, "protocol": "TCP"},
        ],
        "livenessProbe": {"httpGet": {"path": "/healthz?js-enabled-only=true", "port": "monitor"},
                          "periodSeconds": 10, "failureThreshold": 3},
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": "monitor"}, "periodSeconds": 5},
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "512Mi"}},
        "securityContext": container_security_context(),
        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
    }
    volume_claims = [{"metadata": {"name": "data", "labels": labels(bot, COMPONENT_NATS)}, "spec": claim_spec}]
    return _statefulset(bot, COMPONENT_NATS, container, uid=_NATS_UID, volume_claims=volume_claims)


def redis_service(bot: TradingBot) -> dict[str, Any]:
    return _headless_service(
        bot, COMPONENT_REDIS, [{"name": "redis", "port": REDIS_PORT, "targetPort": "redis", "protocol": "TCP"}]
    )


def redis_statefulset(bot: TradingBot) -> dict[str, Any]:
    """A cache, not a database: no persistence (``--save ""``), data on an emptyDir."""
    container = {
        "name": COMPONENT_REDIS,
        "image": REDIS_IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "args": ["--port", str(REDIS_PORT), "--save", "", "--appendonly", "no",
                 "--maxmemory", "200mb", "--maxmemory-policy", "allkeys-lru"],
        "ports": [{"name": "redis", "containerPort": REDIS_PORT, "protocol": "TCP"}],
        "livenessProbe": {"tcpSocket": {"port": "redis"}, "periodSeconds": 10},
        "readinessProbe": {"exec": {"command": ["redis-cli", "ping"]}, "periodSeconds": 5},
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
        "securityContext": container_security_context(),
        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
    }
    return _statefulset(bot, COMPONENT_REDIS, container, uid=_REDIS_UID,
                        volumes=[{"name": "data", "emptyDir": {"sizeLimit": "256Mi"}}])


def _statefulset(bot: TradingBot, component: str, container: dict[str, Any], *, uid: int,
                 volumes: list[dict[str, Any]] | None = None,
                 volume_claims: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The one-replica StatefulSet both bundled servers run in; they differ in container and storage."""
    name = object_name(bot, component)
    pod_spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "securityContext": pod_security_context(uid=uid),
        "containers": [container],
    }
    if volumes:
        pod_spec["volumes"] = volumes
    spec: dict[str, Any] = {
        "serviceName": name,
        "replicas": 1,
        "selector": {"matchLabels": selector_labels(bot, component)},
        "template": {"metadata": {"labels": labels(bot, component)}, "spec": pod_spec},
    }
    if volume_claims:
        spec["volumeClaimTemplates"] = volume_claims
    return {"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": metadata(bot, name=name, component=component), "spec": spec}


def network_policy(bot: TradingBot, *, operator_namespace: str | None) -> dict[str, Any]:
    """Ingress to the bot's pods only from the bot's own pods, plus the HTTP port (metrics,
    ``/status``) from the operator's namespace, or from any namespace when that is not known
    (so Prometheus keeps scraping). Egress stays open: the exchange and DNS are outside."""
    instance = {"app.kubernetes.io/instance": bot.metadata.name, "app.kubernetes.io/name": PART_OF}
    http_peer: dict[str, Any] = {"namespaceSelector": {}}
    if operator_namespace:
        http_peer = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": operator_namespace}}}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(bot, name=object_name(bot), component=COMPONENT_NETWORK),
        "spec": {
            "podSelector": {"matchLabels": instance},
            "policyTypes": ["Ingress"],
            "ingress": [
                {"from": [{"podSelector": {"matchLabels": instance}}]},
                {"from": [http_peer], "ports": [{"port": HTTP_PORT, "protocol": "TCP"}]},
            ],
        },
    }
