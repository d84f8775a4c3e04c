"""Problems and warnings about a spec that the CRD schema lets through.

Why separate from the schema: some specs are well-formed but cannot work or are unsafe (production
without exchange credentials would run workers that cannot trade, or trade with keys nobody meant
to give). :func:`check_spec` lists them in words a user can act on; the reconcile sets
``Degraded`` with these messages and :func:`~tradingbot_operator.builders.desired_state` refuses
to build anything. :func:`spec_warnings` lists what works but not as the user probably meant
(becomes Warning Events).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from tradingbot_agents.config import Mode, Secrets
from tradingbot_agents.kinds import AgentKind
from tradingbot_operator.spec import AutoscalingMode, TradingBot, parse_bot

#: Longest suffix appended to the bot's name (``<bot>-trading-worker``); Services need DNS labels.
_MAX_NAME = 63 - 1 - max(len(kind.deployment_suffix) for kind in AgentKind)


class InvalidSpecError(ValueError):
    """The TradingBot cannot be turned into manifests. ``problems`` holds one message each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class UnsafeSpecError(InvalidSpecError):
    """Well-formed, but running it would be unsafe or could not work (see :func:`check_spec`)."""


def _path(kind: AgentKind, rest: str) -> str:
    return f"spec.agents.{kind.crd_key}.{rest}"


def format_validation_error(exc: ValidationError) -> list[str]:
    """One line per problem, named by its path in the object (camelCase, as the user wrote it)."""
    lines = []
    for err in exc.errors(include_url=False):
        path = ".".join(str(part) for part in err["loc"]) or "(top level)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown field (check the spelling)"
        lines.append(f"{path}: {msg}")
    return lines


def parse_or_problems(bot: TradingBot | Mapping[str, Any]) -> tuple[TradingBot | None, list[str]]:
    try:
        return parse_bot(bot), []
    except ValidationError as exc:
        return None, format_validation_error(exc)


def _problems(bot: TradingBot) -> list[str]:
    spec = bot.spec
    problems: list[str] = []
    if len(bot.metadata.name) > _MAX_NAME:
        problems.append(
            f"metadata.name: at most {_MAX_NAME} characters, so that child names like "
            f"'<name>-{AgentKind.TRADING_WORKER.deployment_suffix}' stay valid DNS labels"
        )
    if spec.mode is Mode.PRODUCTION and spec.exchange.credentials is None:
        problems.append(
            "spec.exchange.credentials.secretRef is required in production mode: create a Secret with "
            "keys 'api-key' and 'api-secret' in this namespace and set "
            "spec.exchange.credentials.secretRef.name (or set spec.mode: shadow to paper-trade)"
        )
    worker = spec.agents.for_kind(AgentKind.TRADING_WORKER)
    selector = spec.agents.for_kind(AgentKind.PAIR_SELECTOR)
    if worker.enabled and not spec.pairs.static and not selector.enabled:
        problems.append(
            "no pairs to trade: spec.pairs.static is empty and the pair selector is disabled; list "
            f"symbols in spec.pairs.static or enable {_path(AgentKind.PAIR_SELECTOR, 'enabled')}"
        )
    problems += _env_problems(bot)
    for kind in AgentKind:
        agent = spec.agents.for_kind(kind)
        if not agent.enabled:
            continue
        if agent.autoscaling.mode is AutoscalingMode.HPA and "cpu" not in agent.resources.requests:
            problems.append(
                f"{_path(kind, 'autoscaling.mode')} is hpa but {_path(kind, 'resources.requests.cpu')} "
                "is not set: the HPA scales on CPU utilisation, a percentage of the request"
            )
    return problems


_SECRET_ENV = frozenset(field.upper() for field in Secrets.model_fields)


def _env_problems(bot: TradingBot) -> list[str]:
    """Extra env must not carry a credential as a literal, nor clash with the env the operator
    sets (the container's env is a list keyed by name: a duplicate fails server-side apply)."""
    from tradingbot_operator.builders.agents import secret_env  # builders import checks: no cycle at load

    problems: list[str] = []
    for kind in AgentKind:
        agent = bot.spec.agents.for_kind(kind)
        if not agent.enabled:
            continue
        set_by_operator = {e["name"] for e in secret_env(bot, kind)}
        seen: set[str] = set()
        for index, env in enumerate(agent.env):
            where = _path(kind, f"env[{index}]")
            if env.name in seen:
                problems.append(f"{where}: {env.name} is listed twice")
            seen.add(env.name)
            if env.name in set_by_operator:
                problems.append(
                    f"{where}: {env.name} is set by the operator from the Secret referenced in the spec; "
                    "remove it from env"
                )
            elif env.name in _SECRET_ENV and (env.value_from is None or env.value_from.secret_key_ref is None):
                problems.append(
                    f"{where}: {env.name} is a credential: use valueFrom.secretKeyRef, never a literal value"
                )
    return problems


def check_spec(bot: TradingBot | Mapping[str, Any]) -> list[str]:
    """Every reason this TradingBot must not be deployed, one message each; empty when it is fine.

    Accepts a dict (kopf's body) as well: schema errors the API server would have caught (or an
    offline file) are returned as problems too, named by their path."""
    model, problems = parse_or_problems(bot)
    return problems if model is None else _problems(model)


def spec_warnings(bot: TradingBot | Mapping[str, Any]) -> list[str]:
    """Settings that are accepted but do not take effect as written (Warning Events)."""
    model, _ = parse_or_problems(bot)
    if model is None:
        return []
    spec = model.spec
    warnings: list[str] = []
    for kind in AgentKind:
        agent = spec.agents.for_kind(kind)
        if agent.enabled and agent.replicas is not None and agent.autoscaling.mode is not AutoscalingMode.OFF:
            owner = "the HorizontalPodAutoscaler" if agent.autoscaling.mode is AutoscalingMode.HPA else (
                "the operator's load control loop"
            )
            warnings.append(
                f"{_path(kind, 'replicas')}={agent.replicas} has no effect: autoscaling.mode is "
                f"{agent.autoscaling.mode.value}, so {owner} owns the replica count (between "
                f"{agent.autoscaling.min} and {agent.autoscaling.max}); remove replicas or set mode off"
            )
    if spec.pairs.static and spec.agents.for_kind(AgentKind.PAIR_SELECTOR).enabled:
        warnings.append(
            "spec.pairs.static is set, so the pair selector's choice is ignored; disable "
            f"{_path(AgentKind.PAIR_SELECTOR, 'enabled')} or empty the list"
        )
    sentiment_on = spec.agents.for_kind(AgentKind.SENTIMENT).enabled
    for source, ref in (("reddit", spec.sentiment.reddit), ("x", spec.sentiment.x)):
        if sentiment_on and ref.enabled and ref.secret_ref is None:
            warnings.append(
                f"spec.sentiment.{source} is enabled without a secretRef: the sentiment agent cannot "
                "authenticate to it and will skip it"
            )
    return warnings
