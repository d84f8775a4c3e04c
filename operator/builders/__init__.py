"""Desired state, pure: TradingBot → list of manifests. No I/O, no kopf.

Why pure (KubeRay's lesson): what the operator wants to exist is a function of the spec alone, so
it is tested without a cluster, rendered offline (``tradingbot render``), and benchmarked as plain
computation. The reconcile only diffs and applies what :func:`desired_state` returns.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tradingbot_agents.kinds import AgentKind
from tradingbot_operator.builders import agents, common, core, infra
from tradingbot_operator.builders.checks import (
    InvalidSpecError,
    UnsafeSpecError,
    check_spec,
    parse_or_problems,
    spec_warnings,
)
from tradingbot_operator.builders.common import CONFIG_HASH_ANNOTATION
from tradingbot_operator.builders.config import (
    config_document,
    config_hashes,
    render_config,
    sections_read_by,
)
from tradingbot_operator.spec import AutoscalingMode, TradingBot

__all__ = [
    "CONFIG_HASH_ANNOTATION",
    "MANAGED_KINDS",
    "InvalidSpecError",
    "UnsafeSpecError",
    "agent_config_hashes",
    "agent_name",
    "agent_selector",
    "check_spec",
    "desired_state",
    "parse_or_problems",
    "render_config",
    "sections_read_by",
    "spec_warnings",
]


#: Every (apiVersion, kind) :func:`desired_state` can produce: what the reconcile lists (by the
#: ``app.kubernetes.io/instance`` label) to prune children no longer desired (an agent disabled,
#: hpa mode switched off), and what a KMock emulator must declare.
MANAGED_KINDS: tuple[tuple[str, str], ...] = (
    ("v1", "ServiceAccount"),
    ("v1", "ConfigMap"),
    ("v1", "Service"),
    ("apps/v1", "StatefulSet"),
    ("apps/v1", "Deployment"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("policy/v1", "PodDisruptionBudget"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
)


def _model(bot: TradingBot | Mapping[str, Any]) -> TradingBot:
    model, problems = parse_or_problems(bot)
    if model is None:
        raise InvalidSpecError(problems)
    return model


def agent_config_hashes(bot: TradingBot | Mapping[str, Any]) -> dict[AgentKind, str]:
    """Per agent kind, the config hash its pod template carries (see ``builders.config``)."""
    return config_hashes(config_document(render_config(_model(bot))))


def agent_name(bot: TradingBot | Mapping[str, Any], kind: AgentKind) -> str:
    """Name of one agent kind's Deployment, Service, HPA and PDB (``<bot>-<deployment suffix>``)."""
    return common.agent_name(_model(bot), kind)


def agent_selector(bot: TradingBot | Mapping[str, Any], kind: AgentKind) -> str:
    """Label selector string of one agent kind's pods: the reconcile writes the trading workers'
    into ``status.tradingWorkerSelector`` for the scale subresource (and HPA-style tooling)."""
    return common.selector_string(_model(bot), kind.deployment_suffix)


def desired_state(
    bot: TradingBot | Mapping[str, Any], *, operator_namespace: str | None = None
) -> list[dict[str, Any]]:
    """Every object the TradingBot should own, in apply order (config before the pods that mount
    it, NATS/Redis before the agents that connect to them).

    Raises :class:`InvalidSpecError` for a spec that does not parse and :class:`UnsafeSpecError`
    (with :func:`check_spec`'s messages) for one that must not run: nothing is built for either,
    so a production bot without credentials never yields a Deployment that could trade.
    ``operator_namespace`` narrows the NetworkPolicy's HTTP ingress to the operator's namespace."""
    model = _model(bot)
    problems = check_spec(model)
    if problems:
        raise UnsafeSpecError(problems)
    document = config_document(render_config(model))
    hashes = config_hashes(document)
    out: list[dict[str, Any]] = [core.service_account(model), core.config_map(model, document=document)]
    if not model.spec.nats.url:
        out += [infra.nats_service(model), infra.nats_statefulset(model)]
    if not model.spec.redis.url:
        out += [infra.redis_service(model), infra.redis_statefulset(model)]
    for kind in AgentKind:
        agent = model.spec.agents.for_kind(kind)
        if not agent.enabled:
            continue
        out.append(agents.deployment(model, kind, config_hash=hashes[kind]))
        out.append(agents.service(model, kind))
        if agent.autoscaling.mode is AutoscalingMode.HPA:
            out.append(agents.horizontal_pod_autoscaler(model, kind))
        pdb = agents.pod_disruption_budget(model, kind)
        if pdb is not None:
            out.append(pdb)
    out.append(infra.network_policy(model, operator_namespace=operator_namespace))
    return out
