"""Per agent kind: Deployment, metrics Service, HorizontalPodAutoscaler, PodDisruptionBudget.

Replica ownership (one owner per agent): with ``autoscaling.mode: off`` the Deployment carries
``replicas`` from the spec (1 if omitted); with ``hpa`` or ``operator`` the Deployment omits it, so
applying the desired state never fights the HPA or the operator's control loop.

PodDisruptionBudget rule: ``maxUnavailable: 1`` for agents that can run more than one replica
(``replicas > 1`` in off mode, ``max > 1`` when autoscaled); none for single-replica agents, where
a PDB either blocks node drains (``minAvailable: 1``) or protects nothing (``maxUnavailable: 1``).
"""

from __future__ import annotations

from typing import Any

from tradingbot_agents.config import Secrets
from tradingbot_agents.kinds import AgentKind
from tradingbot_operator.builders.common import (
    CONFIG_DIR,
    CONFIG_HASH_ANNOTATION,
    CONFIG_KEY,
    HTTP_PORT,
    HTTP_PORT_NAME,
    agent_name,
    container_security_context,
    labels,
    metadata,
    object_name,
    pod_security_context,
    selector_labels,
)
from tradingbot_operator.builders.core import config_map_name
from tradingbot_operator.spec import AgentSpec, AutoscalingMode, TradingBot

CONFIG_PATH = f"{CONFIG_DIR}/{CONFIG_KEY}"


def _env_name(field: str) -> str:
    """The env var the agents' :class:`Secrets` reads for ``field`` (checked at import)."""
    if field not in Secrets.model_fields:
        raise KeyError(f"tradingbot_agents.config.Secrets has no field {field!r}")
    return field.upper()


def _secret_env(field: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": _env_name(field), "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def secret_env(bot: TradingBot, kind: AgentKind) -> list[dict[str, Any]]:
    """Credentials by ``secretKeyRef`` only, and only to the agent that uses them: exchange keys
    to the trading workers (they place orders), Reddit/X to the sentiment agent, Telegram to the
    agents that alert (coordinator, risk)."""
    spec = bot.spec
    env: list[dict[str, Any]] = []
    if kind is AgentKind.TRADING_WORKER and spec.exchange.credentials is not None:
        ref = spec.exchange.credentials.secret_ref
        env.append(_secret_env("binance_api_key", ref.name, ref.api_key_key))
        env.append(_secret_env("binance_api_secret", ref.name, ref.api_secret_key))
    if kind is AgentKind.SENTIMENT:
        reddit = spec.sentiment.reddit.secret_ref
        if spec.sentiment.reddit.enabled and reddit is not None:
            env.append(_secret_env("reddit_client_id", reddit.name, reddit.client_id_key))
            env.append(_secret_env("reddit_client_secret", reddit.name, reddit.client_secret_key))
        x = spec.sentiment.x.secret_ref
        if spec.sentiment.x.enabled and x is not None:
            env.append(_secret_env("x_bearer_token", x.name, x.bearer_token_key))
    telegram = spec.alerts.telegram
    if kind in (AgentKind.COORDINATOR, AgentKind.RISK) and telegram is not None:
        env.append(_secret_env("telegram_bot_token", telegram.name, telegram.token_key))
        env.append(_secret_env("telegram_chat_id", telegram.name, telegram.chat_id_key))
    return env


def _resources(agent: AgentSpec) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if agent.resources.requests:
        out["requests"] = dict(agent.resources.requests)
    if agent.resources.limits:
        out["limits"] = dict(agent.resources.limits)
    return out


def deployment(bot: TradingBot, kind: AgentKind, *, config_hash: str) -> dict[str, Any]:
    """One agent kind's Deployment. Rollouts surge before they remove (``maxUnavailable: 0``), so
    an agent kind is never absent during a config roll; agents that must be single (a pair's
    holder) rely on leases, not on the Deployment, for that."""
    agent = bot.spec.agents.for_kind(kind)
    component = kind.deployment_suffix
    selector = selector_labels(bot, component)
    container: dict[str, Any] = {
        "name": component,
        "image": agent.image or bot.spec.image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["tradingbot", "agent", "run", kind.cli, "--config", CONFIG_PATH],
        "ports": [{"name": HTTP_PORT_NAME, "containerPort": HTTP_PORT, "protocol": "TCP"}],
        "env": [
            *secret_env(bot, kind),
            *(e.model_dump(by_alias=True, exclude_none=True) for e in agent.env),
        ],
        "resources": _resources(agent),
        "livenessProbe": {
            "httpGet": {"path": "/healthz", "port": HTTP_PORT_NAME},
            "initialDelaySeconds": 10,
            "periodSeconds": 10,
            "timeoutSeconds": 2,
            "failureThreshold": 3,
        },
        "readinessProbe": {
            "httpGet": {"path": "/readyz", "port": HTTP_PORT_NAME},
            "periodSeconds": 5,
            "timeoutSeconds": 2,
            "failureThreshold": 2,
        },
        "securityContext": container_security_context(),
        "volumeMounts": [
            {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    spec: dict[str, Any] = {
        "selector": {"matchLabels": selector},
        "revisionHistoryLimit": 3,
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
        "template": {
            "metadata": {
                "labels": labels(bot, component),
                "annotations": {CONFIG_HASH_ANNOTATION: config_hash},
            },
            "spec": {
                "serviceAccountName": object_name(bot),
                "automountServiceAccountToken": False,
                "securityContext": pod_security_context(),
                "terminationGracePeriodSeconds": 30,
                "containers": [container],
                "volumes": [
                    {
                        "name": "config",
                        "configMap": {
                            "name": config_map_name(bot),
                            "items": [{"key": CONFIG_KEY, "path": CONFIG_KEY}],
                        },
                    },
                    {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
                ],
            },
        },
    }
    if agent.autoscaling.mode is AutoscalingMode.OFF:
        spec = {"replicas": 1 if agent.replicas is None else agent.replicas, **spec}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(bot, name=agent_name(bot, kind), component=component),
        "spec": spec,
    }


def service(bot: TradingBot, kind: AgentKind) -> dict[str, Any]:
    """Metrics and status endpoint (``/metrics``, ``/status`` on the coordinator)."""
    component = kind.deployment_suffix
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(bot, name=agent_name(bot, kind), component=component),
        "spec": {
            "selector": selector_labels(bot, component),
            "ports": [
                {"name": HTTP_PORT_NAME, "port": HTTP_PORT, "targetPort": HTTP_PORT_NAME, "protocol": "TCP"}
            ],
        },
    }


def horizontal_pod_autoscaler(bot: TradingBot, kind: AgentKind) -> dict[str, Any]:
    """CPU-based HPA for ``mode: hpa``. ``targetLoad`` needs the agents' own load metric, which
    only the operator's control loop reads (``mode: operator``)."""
    autoscaling = bot.spec.agents.for_kind(kind).autoscaling
    name = agent_name(bot, kind)
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata(bot, name=name, component=kind.deployment_suffix),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": autoscaling.min,
            "maxReplicas": autoscaling.max,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": autoscaling.target_cpu},
                    },
                }
            ],
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 300}},
        },
    }


def max_replicas(agent: AgentSpec) -> int:
    """The most replicas this agent can have under its replica owner."""
    if agent.autoscaling.mode is AutoscalingMode.OFF:
        return 1 if agent.replicas is None else agent.replicas
    return agent.autoscaling.max


def pod_disruption_budget(bot: TradingBot, kind: AgentKind) -> dict[str, Any] | None:
    if max_replicas(bot.spec.agents.for_kind(kind)) <= 1:
        return None
    component = kind.deployment_suffix
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(bot, name=agent_name(bot, kind), component=component),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector_labels(bot, component)}},
    }
