"""Names, labels and owner references shared by every builder.

Why one module: selectors are immutable on Deployments and StatefulSets, so the label set that
selects a bot's pods must be spelt once; owner references are what makes deletion work without a
finalizer (garbage collection removes the children when the TradingBot goes).
"""

from __future__ import annotations

from typing import Any

from tradingbot_agents.kinds import AgentKind
from tradingbot_operator.spec import API_VERSION, KIND, TradingBot

PART_OF = "tradingbot"
MANAGED_BY = "tradingbot-operator"
#: Pod-template annotation holding the hash of the config an agent reads; a change rolls its pods.
CONFIG_HASH_ANNOTATION = "tradingbot.io/config-hash"
CONFIG_KEY = "config.yaml"
CONFIG_DIR = "/etc/tradingbot"
HTTP_PORT = 8080
HTTP_PORT_NAME = "http"

#: Components that are not agents (agents use ``AgentKind.deployment_suffix``).
COMPONENT_CONFIG = "config"
COMPONENT_BOT = "bot"
COMPONENT_NETWORK = "network"
COMPONENT_NATS = "nats"
COMPONENT_REDIS = "redis"


def object_name(bot: TradingBot, suffix: str | None = None) -> str:
    """``<bot>`` or ``<bot>-<suffix>``; :func:`~tradingbot_operator.builders.checks.check_spec`
    guarantees the longest one is still a DNS label."""
    return bot.metadata.name if suffix is None else f"{bot.metadata.name}-{suffix}"


def agent_name(bot: TradingBot, kind: AgentKind) -> str:
    return object_name(bot, kind.deployment_suffix)


def selector_labels(bot: TradingBot, component: str) -> dict[str, str]:
    """The immutable subset used in selectors: never add to it, or existing Deployments break."""
    return {
        "app.kubernetes.io/name": PART_OF,
        "app.kubernetes.io/instance": bot.metadata.name,
        "app.kubernetes.io/component": component,
    }


def selector_string(bot: TradingBot, component: str) -> str:
    """The selector as the scale subresource wants it (``status.tradingWorkerSelector``)."""
    return ",".join(f"{k}={v}" for k, v in selector_labels(bot, component).items())


def labels(bot: TradingBot, component: str) -> dict[str, str]:
    return {
        **selector_labels(bot, component),
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": MANAGED_BY,
    }


def owner_references(bot: TradingBot) -> list[dict[str, Any]]:
    """The TradingBot as controller of the child. Without a uid (offline ``tradingbot render`` of
    a file never applied) there is nothing to point at, so the list is empty."""
    if not bot.metadata.uid:
        return []
    return [
        {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "name": bot.metadata.name,
            "uid": bot.metadata.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]


def metadata(
    bot: TradingBot, *, name: str, component: str, annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": bot.metadata.namespace,
        "labels": labels(bot, component),
    }
    if annotations:
        meta["annotations"] = annotations
    refs = owner_references(bot)
    if refs:
        meta["ownerReferences"] = refs
    return meta


def pod_security_context(*, uid: int = 10001) -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "fsGroup": uid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
