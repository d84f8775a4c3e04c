"""kopf handlers: apply the desired state of each TradingBot, keep its status true, record Events,
and run its health and load loop.

What happens on create / update / resume (one handler, :func:`reconcile_bot`):
1. ``spec.paused`` → nothing is changed; status says ``ReconciliationPaused`` (Progressing).
2. The spec is checked (:func:`~tradingbot_operator.builders.check_spec`) and, in production,
   the credentials Secret must exist. Any problem → ``Degraded`` with the message, a Warning
   Event, and nothing is applied: a spec that cannot work creates nothing unsafe.
3. :func:`~tradingbot_operator.apply.apply_desired` applies the children (server-side apply) and
   prunes the ones no longer desired; each change is an Event; replica-owner warnings from the
   builders are Warning Events.
4. Status (conditions, observedGeneration, phase, per-agent replicas) is written through the
   status subresource.

Deletion: no handler and no finalizer. Every child carries an owner reference to its TradingBot,
so the garbage collector removes them, even while the operator is down (field note 8). kopf
daemons normally add a finalizer; :func:`build_registry` turns that off for the control loop,
which instead ends itself when its TradingBot is gone (404 or a new uid on its next tick).

Handlers and the daemon are ``async`` (field note 5); all API calls go through
:class:`~tradingbot_operator.apply.KubeClient`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import aiohttp
import kopf
from pydantic import ValidationError

from tradingbot_agents.config import Mode
from tradingbot_agents.kinds import AgentKind
from tradingbot_agents.messages import SystemStatus
from tradingbot_operator.apply import (
    ApiError,
    KubeClient,
    NotFound,
    apply_desired,
    connection_info,
    contains,
    list_children,
    load_configuration,
    resource_path,
)
from tradingbot_operator.builders import (
    MANAGED_KINDS,
    InvalidSpecError,
    UnsafeSpecError,
    agent_name,
    agent_selector,
    check_spec,
    desired_state,
    spec_warnings,
)
from tradingbot_operator.builders.checks import parse_or_problems
from tradingbot_operator.control import (
    RESTARTED_AT_ANNOTATION,
    ControlState,
    KindObservation,
    Restart,
    Scale,
    decide,
    failing_kinds,
    mean_load,
    observe_status,
)
from tradingbot_operator.metrics import OperatorMetrics
from tradingbot_operator.settings import CONTROL_FIELD_MANAGER, FIELD_MANAGER, OperatorConfig
from tradingbot_operator.spec import GROUP, PLURAL, VERSION, AgentHealth, TradingBot
from tradingbot_operator.status import (
    SPEC_REASONS,
    AgentObservation,
    Problem,
    build_status,
    condition,
    desired_replicas,
    ready_replicas,
)

log = logging.getLogger("tradingbot_operator")

StatusFetcher = Callable[[TradingBot], Awaitable[SystemStatus | None]]


@dataclasses.dataclass
class OperatorContext:
    """Everything the handlers need, injected (no module globals): tests build their own."""

    config: OperatorConfig
    metrics: OperatorMetrics = dataclasses.field(default_factory=OperatorMetrics)
    client: KubeClient | None = None
    #: Reads the coordinator's ``/status``; replaceable in tests.
    fetch_status: StatusFetcher | None = None
    http: aiohttp.ClientSession | None = None
    metrics_port: int | None = None

    @property
    def api(self) -> KubeClient:
        if self.client is None:
            raise RuntimeError("the operator has not started: no API client")
        return self.client


# --- the coordinator's status ---------------------------------------------------------------


async def fetch_coordinator_status(ctx: OperatorContext, bot: TradingBot) -> SystemStatus | None:
    """GET the coordinator's ``/status``; ``None`` on any failure (the control loop then holds)."""
    if ctx.fetch_status is not None:
        return await ctx.fetch_status(bot)
    url = ctx.config.control.coordinator_url.format(name=bot.metadata.name, namespace=bot.metadata.namespace)
    if ctx.http is None:
        ctx.http = aiohttp.ClientSession()
    try:
        timeout = aiohttp.ClientTimeout(total=ctx.config.control.status_timeout_s)
        async with ctx.http.get(url, timeout=timeout) as response:
            if response.status != 200:
                return None
            return SystemStatus.model_validate(await response.json())
    except (aiohttp.ClientError, TimeoutError, ValueError, ValidationError) as exc:
        log.debug("no status from %s: %s", url, exc)
        return None


# --- status writing --------------------------------------------------------------------------


def _deployments(objects: Mapping[tuple[str, str, str], Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    return {key[2]: obj for key, obj in objects.items() if key[1] == "Deployment"}


def observe_agents(
    bot: TradingBot,
    deployments: Mapping[str, Mapping[str, Any]],
    previous: Mapping[str, Any] | None,
    *,
    control: ControlState | None = None,
    observed: Mapping[AgentKind, KindObservation] | None = None,
    ctx: OperatorContext | None = None,
) -> dict[AgentKind, AgentObservation]:
    """Per enabled agent: replicas from its Deployment; health, load and restarts from the control
    loop (or, in the reconcile, as the last status said)."""
    out: dict[AgentKind, AgentObservation] = {}
    prev_agents = (previous or {}).get("agents") or {}
    for kind in AgentKind:
        agent = bot.spec.agents.for_kind(kind)
        if not agent.enabled:
            continue
        deployment = deployments.get(agent_name(bot, kind))
        before = prev_agents.get(kind.crd_key) or {}
        obs = AgentObservation(
            desired=desired_replicas(agent, deployment),
            ready=ready_replicas(deployment),
        )
        if observed is not None and ctx is not None:
            seen = observed.get(kind, KindObservation())
            st = (control or ControlState()).of(kind)
            load = mean_load(seen.loads, ctx.config.control)
            obs = dataclasses.replace(
                obs, health=seen.health, load=None if load is None else round(load, 4),
                restarts=max(st.total_restarts, int(before.get("restarts") or 0)),
                last_restart_reason=st.last_restart_reason or before.get("lastRestartReason"),
            )
        elif before:
            obs = dataclasses.replace(
                obs, health=AgentHealth(before.get("health") or obs.health), load=before.get("load"),
                restarts=int(before.get("restarts") or 0), last_restart_reason=before.get("lastRestartReason"),
            )
        out[kind] = obs
    return out


async def write_status(
    ctx: OperatorContext, bot: TradingBot, status: dict[str, Any], previous: Mapping[str, Any] | None = None
) -> None:
    """Merge-patch the status subresource; agents no longer enabled are removed (``null``).
    Nothing is written when ``previous`` already says the same (the control loop runs often)."""
    if previous is not None and contains(previous, _without_none(status)) and set(
        previous.get("agents") or {}
    ) <= set(status.get("agents") or {}):
        return
    agents = dict(status.get("agents") or {})
    for kind in AgentKind:
        agents.setdefault(kind.crd_key, None)
    body = {"status": {**status, "agents": agents}}
    path = resource_path(bot.api_version, bot.kind, bot.metadata.namespace, bot.metadata.name, "status")
    await ctx.api.merge_patch(path, body, field_manager=FIELD_MANAGER)


def _without_none(value: Any) -> Any:
    """A merge patch's ``null`` removes the key, so the live status simply lacks it."""
    if isinstance(value, Mapping):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    return value


# --- reconcile --------------------------------------------------------------------------------


async def _missing_secret(ctx: OperatorContext, bot: TradingBot) -> Problem | None:
    creds = bot.spec.exchange.credentials
    if bot.spec.mode is not Mode.PRODUCTION or creds is None:
        return None
    name = creds.secret_ref.name
    try:
        secret = await ctx.api.get(resource_path("v1", "Secret", bot.metadata.namespace, name))
    except NotFound:
        return Problem(
            "MissingSecret",
            f"Secret {name!r} (spec.exchange.credentials.secretRef.name) does not exist in namespace "
            f"{bot.metadata.namespace!r}: create it with keys {creds.secret_ref.api_key_key!r} and "
            f"{creds.secret_ref.api_secret_key!r}",
        )
    data = {**(secret.get("data") or {}), **(secret.get("stringData") or {})}
    missing = [k for k in (creds.secret_ref.api_key_key, creds.secret_ref.api_secret_key) if k not in data]
    if missing:
        return Problem("MissingSecret", f"Secret {name!r} has no key(s) {', '.join(missing)}")
    return None


async def reconcile_bot(
    ctx: OperatorContext, body: Mapping[str, Any], *, reason: str, logger: logging.Logger | Any
) -> None:
    started = time.perf_counter()
    result = "error"
    try:
        result = await _reconcile(ctx, body, reason=reason, logger=logger)
    except Exception:
        ctx.metrics.errors.labels(stage="reconcile").inc()
        raise
    finally:
        ctx.metrics.reconciles.labels(result=result).inc()
        ctx.metrics.reconcile_duration.observe(time.perf_counter() - started)


async def _reconcile(ctx: OperatorContext, body: Mapping[str, Any], *, reason: str, logger: Any) -> str:
    raw = dict(body)
    model, problems = parse_or_problems(raw)
    previous = raw.get("status") or {}
    if model is None:
        # The CRD schema should have rejected it; report instead of failing forever.
        meta = body["metadata"]
        message = "; ".join(problems)
        kopf.warn(body, reason="InvalidSpec", message=message)
        path = resource_path(f"{GROUP}/{VERSION}", "TradingBot", meta.get("namespace"), meta["name"], "status")
        await ctx.api.merge_patch(path, {"status": {
            "observedGeneration": meta.get("generation"), "phase": "Degraded",
            "conditions": [{"type": "Degraded", "status": "True", "reason": "InvalidSpec", "message": message,
                            "lastTransitionTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}],
        }}, field_manager=FIELD_MANAGER)
        return "invalid"
    bot = model
    ns, name = bot.metadata.namespace, bot.metadata.name
    uid = bot.metadata.uid or ""

    if bot.spec.paused:
        was_paused = (condition(previous, "Progressing") or {}).get("reason") == "ReconciliationPaused"
        if not was_paused:
            kopf.info(body, reason="ReconciliationPaused", message="spec.paused is true: changing nothing")
        children = await list_children(
            ctx.api, namespace=ns, bot_name=name, bot_uid=uid, kinds=[("apps/v1", "Deployment")]
        )
        agents = observe_agents(bot, _deployments(children), previous)
        await write_status(ctx, bot, build_status(bot, agents=agents, previous=previous))
        return "paused"

    problem: Problem | None = None
    spec_problems = check_spec(bot)
    if spec_problems:
        problem = Problem("UnsafeSpec", "; ".join(spec_problems))
    else:
        problem = await _missing_secret(ctx, bot)
    announce = reason != "resync"  # Warning Events once per spec change, not every resync
    if problem is not None:
        if announce:
            kopf.warn(body, reason=problem.reason, message=problem.message)
        await write_status(ctx, bot, build_status(bot, agents={}, problem=problem, previous=previous))
        return "degraded"

    if announce:
        for warning in spec_warnings(bot):
            kopf.warn(body, reason="SpecIgnored", message=warning)

    try:
        desired = desired_state(bot, operator_namespace=ctx.config.operator_namespace)
    except (UnsafeSpecError, InvalidSpecError) as exc:  # check_spec said fine; belt and braces
        problem = Problem("UnsafeSpec", "; ".join(exc.problems))
        await write_status(ctx, bot, build_status(bot, agents={}, problem=problem, previous=previous))
        return "degraded"

    try:
        report = await apply_desired(
            ctx.api, desired, namespace=ns, bot_name=name, bot_uid=uid, kinds=MANAGED_KINDS
        )
    except ApiError as exc:
        # Say why in the status and an Event (e.g. a quota or an admission webhook refused a
        # child), then let kopf retry with backoff.
        problem = Problem("ApplyFailed", f"applying the children failed: {exc}")
        kopf.warn(body, reason=problem.reason, message=problem.message)
        await write_status(ctx, bot, build_status(bot, agents={}, problem=problem, previous=previous), previous)
        raise kopf.TemporaryError(problem.message, delay=30) from exc
    for change in report.changes:
        ctx.metrics.objects_changed.labels(action=change.action, kind=change.kind).inc()
    if report.changes:
        summary = ", ".join(f"{c.action} {c.kind}/{c.name}" for c in report.changes)
        kopf.info(body, reason="Applied", message=summary[:1000])
        logger.info("%s: %s", reason, summary)
    agents = observe_agents(bot, _deployments(report.objects), previous)
    failing = _kept_failing(previous, bot)
    status = build_status(
        bot, agents=agents, failing=failing, previous=previous,
        worker_selector=agent_selector(bot, AgentKind.TRADING_WORKER),
    )
    await write_status(ctx, bot, status)
    return "applied"


def _kept_failing(previous: Mapping[str, Any], bot: TradingBot) -> Problem | None:
    """A Degraded set by the control loop (agents failing) survives a reconcile; spec reasons do not."""
    degraded = condition(previous, "Degraded")
    if degraded and degraded.get("status") == "True" and degraded.get("reason") not in SPEC_REASONS:
        return Problem(str(degraded.get("reason")), str(degraded.get("message") or ""))
    return None


# --- the control loop (a kopf daemon per TradingBot) -----------------------------------------------


async def control_tick(
    ctx: OperatorContext, bot_body: Mapping[str, Any], state: ControlState, *, now: float
) -> tuple[ControlState, bool]:
    """One observe → decide → act → report round. Returns the new state and whether the bot
    still exists (False ends the daemon)."""
    meta = bot_body["metadata"]
    ns, name, uid = meta.get("namespace", "default"), meta["name"], meta.get("uid")
    try:
        live = await ctx.api.get(resource_path(f"{GROUP}/{VERSION}", "TradingBot", ns, name))
    except NotFound:
        return state, False
    if live["metadata"].get("uid") != uid:
        return state, False
    model, _ = parse_or_problems(live)
    if model is None or model.spec.paused:
        return state, True
    previous = live.get("status") or {}
    degraded = condition(previous, "Degraded")
    if degraded and degraded.get("status") == "True" and degraded.get("reason") in SPEC_REASONS:
        return state, True  # the reconcile owns this state; nothing runs to control
    if previous.get("observedGeneration") != model.metadata.generation:
        return state, True  # the reconcile has not caught up with this spec yet
    bot = model

    children = await list_children(ctx.api, namespace=ns, bot_name=name, bot_uid=uid or "",
                                   kinds=[("apps/v1", "Deployment")])
    deployments = _deployments(children)
    coordinator = await fetch_coordinator_status(ctx, bot)
    observed = observe_status(coordinator)
    observed = {
        kind: dataclasses.replace(
            observed.get(kind, KindObservation()),
            replicas=((deployments.get(agent_name(bot, kind)) or {}).get("spec") or {}).get("replicas"),
        )
        for kind in AgentKind
        if bot.spec.agents.for_kind(kind).enabled
    }
    actions, state = decide(bot, observed, state, now, ctx.config.control)
    for action in actions:
        deployment = agent_name(bot, action.kind)
        path = resource_path("apps/v1", "Deployment", ns, deployment)
        try:
            if isinstance(action, Restart):
                stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
                patch = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT_ANNOTATION: stamp}}}}}
                await ctx.api.merge_patch(path, patch, field_manager=CONTROL_FIELD_MANAGER)
                ctx.metrics.restarts.labels(agent=action.kind.value).inc()
                kopf.warn(live, reason="AgentRestarted", message=f"{deployment}: rollout restart ({action.reason})")
            elif isinstance(action, Scale):
                await ctx.api.merge_patch(path, {"spec": {"replicas": action.to_replicas}},
                                          field_manager=CONTROL_FIELD_MANAGER)
                direction = "up" if (action.from_replicas or 0) < action.to_replicas else "down"
                ctx.metrics.scale_changes.labels(agent=action.kind.value, direction=direction).inc()
                kopf.info(live, reason="AgentScaled", message=(
                    f"{deployment}: replicas {action.from_replicas} -> {action.to_replicas} ({action.reason})"))
                deployments[deployment] = {**deployments.get(deployment, {}),
                                           "spec": {**(deployments.get(deployment, {}).get("spec") or {}),
                                                    "replicas": action.to_replicas}}
        except NotFound:
            continue  # the reconcile will create it; the next tick acts

    failing = failing_kinds(state, ctx.config.control)
    problem = None
    if failing:
        names = ", ".join(k.deployment_suffix for k in failing)
        problem = Problem(
            "AgentRestartsExhausted",
            f"{names} still failing after {ctx.config.control.degraded_after_restarts} restarts; "
            "check the agents' logs (kubectl logs) and the coordinator's /status",
        )
        if not (degraded and degraded.get("reason") == problem.reason and degraded.get("status") == "True"):
            kopf.warn(live, reason=problem.reason, message=problem.message)
    agents = observe_agents(bot, deployments, previous, control=state, observed=observed, ctx=ctx)
    status = build_status(bot, agents=agents, failing=problem, previous=previous,
                          worker_selector=agent_selector(bot, AgentKind.TRADING_WORKER))
    await write_status(ctx, bot, status, previous)
    return state, True


async def _still_exists(ctx: OperatorContext, body: Mapping[str, Any]) -> bool:
    meta = body["metadata"]
    try:
        live = await ctx.api.get(resource_path(f"{GROUP}/{VERSION}", "TradingBot", meta.get("namespace"), meta["name"]))
    except NotFound:
        return False
    return bool(live["metadata"].get("uid") == meta.get("uid"))


async def control_loop(ctx: OperatorContext, body: Mapping[str, Any], stopped: Any, logger: Any) -> None:
    state = ControlState()
    interval = ctx.config.control.interval_s
    resync = ctx.config.control.resync_s
    last_resync = time.monotonic()
    ctx.metrics.bots.inc()
    try:
        while not stopped:
            try:
                if resync and time.monotonic() - last_resync >= resync:
                    last_resync = time.monotonic()
                    await reconcile_bot(ctx, body, reason="resync", logger=logger)
                state, alive = await control_tick(ctx, body, state, now=time.monotonic())
            except NotFound as exc:  # the bot itself, or something it needs, is missing
                alive = await _still_exists(ctx, body)
                if alive:
                    logger.warning("control tick: not found: %s", exc)
            except (ApiError, aiohttp.ClientError, TimeoutError, kopf.TemporaryError) as exc:
                ctx.metrics.errors.labels(stage="control").inc()
                logger.warning("control tick failed: %s", exc)
                alive = True
            if not alive:
                logger.info("TradingBot is gone: control loop ends")
                return
            await stopped.wait(interval)
    finally:
        ctx.metrics.bots.dec()


# --- registry -----------------------------------------------------------------------------------


def build_registry(ctx: OperatorContext) -> kopf.OperatorRegistry:
    """A fresh registry with every handler bound to ``ctx`` (no global state)."""
    registry = kopf.OperatorRegistry()
    resource = dict(group=GROUP, version=VERSION, plural=PLURAL, registry=registry)

    @kopf.on.login(registry=registry)
    async def _login(**_: Any) -> kopf.ConnectionInfo:
        return connection_info(await load_configuration(ctx.config.kubeconfig))

    @kopf.on.startup(registry=registry)
    async def _startup(logger: Any, **_: Any) -> None:
        if ctx.client is None:
            ctx.client = await KubeClient.from_environment(ctx.config.kubeconfig)
        if ctx.config.metrics_port and ctx.metrics_port is None:
            ctx.metrics_port = ctx.metrics.serve(ctx.config.metrics_port)
            logger.info("metrics at :%s/metrics", ctx.metrics_port)

    @kopf.on.cleanup(registry=registry)
    async def _cleanup(**_: Any) -> None:
        if ctx.http is not None:
            await ctx.http.close()
            ctx.http = None

    async def _on_change(body: Any, reason: Any, logger: Any, **_: Any) -> None:
        await reconcile_bot(ctx, body, reason=str(reason), logger=logger)

    kopf.on.create(**resource, id="reconcile-create")(_on_change)
    kopf.on.update(**resource, id="reconcile-update")(_on_change)
    kopf.on.resume(**resource, id="reconcile-resume")(_on_change)

    async def _daemon(body: Any, stopped: Any, logger: Any, **_: Any) -> None:
        await control_loop(ctx, body, stopped, logger)

    kopf.daemon(**resource, id="control", cancellation_timeout=5.0)(_daemon)
    _no_finalizer_for_daemons(registry)
    return registry


def _no_finalizer_for_daemons(registry: kopf.OperatorRegistry) -> None:
    """kopf marks every daemon as needing a finalizer; ours ends itself when its TradingBot is
    gone, so deletion must not wait for the operator (field note 8)."""
    spawning = registry._spawning  # no public switch for this in kopf 1.45
    spawning._handlers[:] = [dataclasses.replace(h, requires_finalizer=False) for h in spawning._handlers]


def peering_kwargs(config: OperatorConfig) -> dict[str, Any]:
    """What :func:`kopf.operator` is told about scope and peering. kopf marks peering mandatory
    whenever a peering name is passed, even with ``standalone=True``, and then pauses every watch
    until a peering CRD shows up: the name is passed only when peering is wanted."""
    return {
        "clusterwide": config.clusterwide,
        "namespaces": list(config.namespaces),
        "priority": config.priority,
        "peering_name": None if config.standalone else config.peering_name,
        "standalone": config.standalone,
        "liveness_endpoint": config.liveness_endpoint,
    }


async def run(
    config: OperatorConfig,
    *,
    ctx: OperatorContext | None = None,
    stop_flag: Any = None,
    ready_flag: Any = None,
) -> None:
    """Run the operator until ``stop_flag`` (or a signal): the one entry point for the CLI and tests."""
    from tradingbot_operator.settings import kopf_settings

    ctx = ctx or OperatorContext(config=config)
    registry = build_registry(ctx)
    settings = kopf_settings(config)
    try:
        await kopf.operator(
            registry=registry,
            settings=settings,
            **peering_kwargs(config),
            stop_flag=stop_flag,
            ready_flag=ready_flag,
        )
    finally:
        with contextlib.suppress(Exception):
            if ctx.client is not None:
                await ctx.client.close()
                ctx.client = None
        ctx.metrics.shutdown()
        await asyncio.sleep(0)
