"""Operator settings: one typed object, read from the environment or the command line, and the
kopf settings derived from it.

Why one place: the knobs that keep a kopf operator alive in production are easy to forget and
each one is somebody's outage (field notes 3, 4, 8):

- **Watch timeouts.** A watch that stops receiving events after a network blip looks healthy and
  does nothing. ``server_timeout`` makes the API server close each watch, ``client_timeout`` and
  ``connect_timeout`` make the client give up on a dead connection, so watches are re-established.
- **Peering.** Two replicas of the operator must never both act. Peering is namespaced (a
  ``KopfPeering`` object in each watched namespace, or ``ClusterKopfPeering`` when clusterwide),
  mandatory, and every replica has a distinct priority (``TRADINGBOT_OPERATOR_PRIORITY``, or one
  derived from the pod name), because equal priorities freeze every instance.
- **No finalizer.** Deletion relies on owner-reference garbage collection, so a TradingBot can be
  deleted while the operator is down. kopf's progress and diff-base go into annotations under
  ``tradingbot.io/`` (the status subresource is ours, for people and ``kubectl``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
from collections.abc import Mapping

import kopf

ENV_PREFIX = "TRADINGBOT_OPERATOR_"
FIELD_MANAGER = "tradingbot-operator"
#: The control loop writes ``replicas`` and the restart annotation under its own field manager, so
#: the reconcile's server-side apply (which never sets them) does not remove them.
CONTROL_FIELD_MANAGER = "tradingbot-operator-control"
ANNOTATION_PREFIX = "tradingbot.io"
DEFAULT_COORDINATOR_URL = "http://{name}-coordinator.{namespace}.svc:8080/status"


@dataclasses.dataclass(frozen=True)
class ControlSettings:
    """The health and load loop (see :mod:`tradingbot_operator.control`)."""

    interval_s: float = 10.0
    #: Re-apply the desired state this often even without a spec change, so a child edited or
    #: deleted by hand is put back (drift). 0 disables. Unchanged children cost no write.
    resync_s: float = 300.0
    #: ``str.format`` template with ``name`` and ``namespace``: the coordinator's ``/status``.
    coordinator_url: str = DEFAULT_COORDINATOR_URL
    status_timeout_s: float = 2.0
    #: An agent must stay failed this long before it is restarted (one blip is not a failure).
    failed_for_s: float = 30.0
    restart_backoff_s: float = 30.0
    restart_backoff_max_s: float = 600.0
    #: Consecutive restarts without recovery after which the bot is ``Degraded``.
    degraded_after_restarts: int = 3
    #: Scale up on the first recommendation above, scale down only when every recommendation in
    #: this window was lower (the HPA's stabilisation rule).
    scale_up_window_s: float = 0.0
    scale_down_window_s: float = 300.0
    #: Normalisation of the agents' reported load to a 0..1 fraction (see ``control.load_fraction``).
    loop_lag_budget_ms: float = 100.0
    queue_depth_budget: float = 100.0


@dataclasses.dataclass(frozen=True)
class OperatorConfig:
    namespaces: tuple[str, ...] = ()
    clusterwide: bool = False
    peering_name: str = "tradingbot-operator"
    priority: int = 0
    standalone: bool = False
    metrics_port: int = 8000  # 0 disables the /metrics server
    liveness_endpoint: str | None = None
    operator_namespace: str | None = None
    #: The API server ends each watch after this long and kopf opens a new one (field note 3).
    watch_timeout_s: float = 300.0
    #: Explicit kubeconfig; ``None``: in-cluster account, else ``KUBECONFIG`` / ``~/.kube/config``.
    kubeconfig: str | None = None
    control: ControlSettings = dataclasses.field(default_factory=ControlSettings)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> OperatorConfig:
        """``TRADINGBOT_OPERATOR_*`` variables; the Deployment of the operator sets them."""
        env = os.environ if env is None else env

        def get(name: str, default: str = "") -> str:
            return env.get(ENV_PREFIX + name, default)

        namespaces = tuple(ns for ns in get("NAMESPACES").split(",") if ns.strip())
        control = ControlSettings(
            interval_s=float(get("CONTROL_INTERVAL_S", "10")),
            resync_s=float(get("RESYNC_S", "300")),
            coordinator_url=get("COORDINATOR_URL", DEFAULT_COORDINATOR_URL),
            failed_for_s=float(get("FAILED_FOR_S", "30")),
            restart_backoff_s=float(get("RESTART_BACKOFF_S", "30")),
            restart_backoff_max_s=float(get("RESTART_BACKOFF_MAX_S", "600")),
            degraded_after_restarts=int(get("DEGRADED_AFTER_RESTARTS", "3")),
            scale_down_window_s=float(get("SCALE_DOWN_WINDOW_S", "300")),
        )
        return cls(
            namespaces=namespaces,
            clusterwide=not namespaces,
            peering_name=get("PEERING", "tradingbot-operator"),
            priority=int(get("PRIORITY") or default_priority(env.get("POD_NAME") or env.get("HOSTNAME", ""))),
            standalone=get("STANDALONE") in {"1", "true", "yes"},
            metrics_port=int(get("METRICS_PORT", "8000")),
            liveness_endpoint=get("LIVENESS") or None,
            operator_namespace=env.get("POD_NAMESPACE") or None,
            control=control,
        )


def default_priority(pod_name: str) -> int:
    """A priority that differs between replicas of one Deployment (their pod names differ) and
    is stable for one pod. kopf freezes every instance when two share the highest priority."""
    if not pod_name:
        return 0
    return 100 + int(hashlib.sha256(pod_name.encode()).hexdigest()[:6], 16) % 10_000


def kopf_settings(config: OperatorConfig, settings: kopf.OperatorSettings | None = None) -> kopf.OperatorSettings:
    """Apply the production choices (module docstring) to kopf's settings object."""
    settings = settings or kopf.OperatorSettings()
    settings.watching.server_timeout = config.watch_timeout_s
    # The client gives up a little after the server should have ended the watch: a connection
    # that went silent (a network blip, a dead proxy) is dropped and re-established.
    settings.watching.client_timeout = config.watch_timeout_s + 30
    settings.watching.connect_timeout = 10
    settings.networking.request_timeout = 60
    settings.networking.connect_timeout = 10
    settings.peering.name = config.peering_name
    settings.peering.priority = config.priority
    settings.peering.mandatory = not config.standalone
    settings.peering.standalone = config.standalone
    settings.peering.clusterwide = config.clusterwide
    settings.posting.level = logging.INFO
    settings.posting.reporting_component = FIELD_MANAGER
    settings.persistence.finalizer = f"{ANNOTATION_PREFIX}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=ANNOTATION_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=ANNOTATION_PREFIX, key="last-handled-configuration"
    )
    # Our handlers are async; the thread pool only serves kopf's own sync bits (field note 5).
    settings.execution.max_workers = 4
    return settings
