"""The TradingBot custom resource as pydantic models: the single source of truth of the CRD.

Why models first: the CRD's OpenAPI schema (:mod:`tradingbot_operator.crd`), the builders and the
reconcile all read the same definitions, so a field added here is validated by the API server,
explained by ``kubectl explain`` and rendered into manifests without a second spelling anywhere.
Field names are snake_case in Python and camelCase on the Kubernetes side (aliases). Agent keys
under ``spec.agents`` and ``status.agents`` come from :class:`~tradingbot_agents.kinds.AgentKind`
(``crd_key``), never re-spelt here.

Constraints the OpenAPI schema cannot carry (``autoscaling.min <= autoscaling.max``) are model
validators here and CEL rules (``x-kubernetes-validations``) in the CRD, so both the API server and
an offline ``tradingbot render`` reject them with the same message.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator
from pydantic.alias_generators import to_camel

from tradingbot_agents.config import Mode
from tradingbot_agents.kinds import AgentKind

GROUP = "tradingbot.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "TradingBot"
PLURAL = "tradingbots"
SINGULAR = "tradingbot"
SHORT_NAMES = ("tb",)

#: The image every agent runs unless ``spec.image`` or ``spec.agents.<kind>.image`` says otherwise.
DEFAULT_IMAGE = "ghcr.io/tradingbot/tradingbot:0.1.0"

#: A DNS-1123 label: Kubernetes object names built from the bot's name must stay within it.
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
#: A Kubernetes resource quantity ("500m", "256Mi", "1"), as the API server's own pattern.
QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)"
    r"|(\.[0-9]+))))?$"
)


def _default_obj(factory: Any, description: str) -> Any:
    """A nested section that is always present: ``default: {}`` in the CRD so the API server
    fills its own nested defaults in, the same as pydantic's ``default_factory`` does here."""
    return Field(default_factory=factory, description=description, json_schema_extra={"default": {}})


class _Model(BaseModel):
    """Spec models: camelCase on the wire, unknown keys rejected (a misspelt limit in a trading
    system is a silent wrong default)."""

    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, populate_by_name=True, use_enum_values=False
    )


class _Lenient(BaseModel):
    """Models the API server or other controllers also write into (metadata, status): unknown
    keys are ignored instead of rejected."""

    model_config = ConfigDict(extra="ignore", alias_generator=to_camel, populate_by_name=True)


# --- references to Secrets -------------------------------------------------------------------


class ExchangeSecretRef(_Model):
    """A Secret in the bot's namespace holding the exchange API key pair. Only the name and keys
    are stored in the TradingBot; the values reach the pods as ``secretKeyRef`` env vars."""

    name: Annotated[str, Field(min_length=1, max_length=253, description="Name of the Secret.")]
    api_key_key: str = Field(default="api-key", min_length=1, description="Key holding the API key.")
    api_secret_key: str = Field(
        default="api-secret", min_length=1, description="Key holding the API secret."
    )


class ExchangeCredentials(_Model):
    secret_ref: ExchangeSecretRef = Field(description="Secret with the exchange API key and secret.")


class ExchangeSpec(_Model):
    """Where orders and market data go. Production mode requires credentials."""

    base_url: str = Field(
        default="https://fapi.binance.com",
        pattern=r"^https?://",
        description="Exchange REST base URL (the simulator's URL in tests and demos).",
    )
    credentials: ExchangeCredentials | None = Field(
        default=None,
        description="API credentials by Secret reference. Required when mode is production.",
    )


class PairSelectorSettings(_Model):
    """How the pair selector picks pairs when no static list is given."""

    max_pairs: int = Field(default=10, ge=1, le=500, description="Most pairs traded at once.")
    min_quote_volume_24h: float = Field(
        default=10_000_000.0,
        ge=0,
        alias="minQuoteVolume24h",
        description="Minimum 24 h quote volume of a pair, in quote currency.",
    )
    quote_asset: str = Field(default="USDT", min_length=1, description="Quote asset of eligible pairs.")
    refresh_interval_seconds: float = Field(
        default=3600.0, gt=0, description="How often the selection is recomputed."
    )


class PairsSpec(_Model):
    """Which symbols are traded: a static list, or the pair selector's choice when the list is empty."""

    static: list[Annotated[str, Field(pattern=r"^[A-Z0-9]{2,30}$")]] = Field(
        default_factory=list,
        max_length=500,
        description="Fixed symbols (e.g. BTCUSDT). When non-empty the pair selector's choice is ignored.",
    )
    selector: PairSelectorSettings = _default_obj(
        PairSelectorSettings, "Pair selector settings, used when `static` is empty."
    )


class NatsSpec(_Model):
    """The message bus. Without a URL the operator runs a one-node NATS with JetStream for this bot."""

    url: str | None = Field(
        default=None,
        pattern=r"^(nats|tls)://",
        description="External NATS URL. Omit to have the operator run NATS (JetStream, on a PVC) for the bot.",
    )
    storage_size: str = Field(
        default="1Gi", pattern=QUANTITY_PATTERN, description="PVC size of the operator-run NATS."
    )
    storage_class_name: str | None = Field(
        default=None, description="StorageClass of the operator-run NATS PVC (cluster default if omitted)."
    )


class RedisSpec(_Model):
    """The shared cache tier. Without a URL the operator runs a small Redis for this bot."""

    url: str | None = Field(
        default=None,
        pattern=r"^rediss?://",
        description="External Redis URL. Omit to have the operator run Redis for the bot.",
    )


class CacheSpec(_Model):
    """The two-tier cache (in-process L1, then Redis) used by the agents that read market data."""

    max_size_mb: float = Field(default=100, gt=0, le=65536, description="L1 cache size per pod, in MB.")
    default_ttl_seconds: float = Field(default=300, gt=0, description="TTL of cached entries.")
    enable_prefetching: bool = Field(default=True, description="Prefetch hot keys before they expire.")
    enable_compression: bool = Field(default=True, description="Compress values stored in Redis.")
    cleanup_interval_seconds: float = Field(default=300, gt=0, description="L1 cleanup period.")


class RiskSpec(_Model):
    """Risk limits enforced by the risk agent."""

    check_interval_seconds: float = Field(default=30, gt=0, description="Portfolio check period.")
    alert_cooldown_minutes: float = Field(
        default=15, ge=0, description="Minimum time between two alerts of the same kind and subject."
    )
    max_portfolio_var: float = Field(
        default=0.05, gt=0, le=1, description="Maximum portfolio value-at-risk, as a fraction of equity."
    )


class RedditSecretRef(_Model):
    name: str = Field(min_length=1, max_length=253, description="Name of the Secret.")
    client_id_key: str = Field(default="client-id", min_length=1, description="Key holding the client id.")
    client_secret_key: str = Field(
        default="client-secret", min_length=1, description="Key holding the client secret."
    )


class XSecretRef(_Model):
    name: str = Field(min_length=1, max_length=253, description="Name of the Secret.")
    bearer_token_key: str = Field(
        default="bearer-token", min_length=1, description="Key holding the bearer token."
    )


class SentimentSourceSpec(_Model):
    enabled: bool = Field(default=False, description="Read this source.")
    weight: float = Field(default=0.0, ge=0, le=1, description="Weight of this source in the score.")


class RedditSourceSpec(SentimentSourceSpec):
    secret_ref: RedditSecretRef | None = Field(default=None, description="Reddit API credentials.")


class XSourceSpec(SentimentSourceSpec):
    secret_ref: XSecretRef | None = Field(default=None, description="X (Twitter) API credentials.")


class SentimentSpec(_Model):
    """Sentiment sources. Credentials by Secret reference only."""

    reddit: RedditSourceSpec = Field(
        default_factory=lambda: RedditSourceSpec(enabled=True, weight=0.6),
        description="Reddit posts and comments.",
        json_schema_extra={"default": {"enabled": True, "weight": 0.6}},
    )
    news: SentimentSourceSpec = Field(
        default_factory=lambda: SentimentSourceSpec(enabled=False, weight=0.3),
        description="News RSS/Atom feeds (no credentials).",
        json_schema_extra={"default": {"enabled": False, "weight": 0.3}},
    )
    x: XSourceSpec = _default_obj(XSourceSpec, "X (Twitter) posts.")


class TelegramSecretRef(_Model):
    name: str = Field(min_length=1, max_length=253, description="Name of the Secret.")
    token_key: str = Field(default="bot-token", min_length=1, description="Key holding the bot token.")
    chat_id_key: str = Field(default="chat-id", min_length=1, description="Key holding the chat id.")


class AlertsSpec(_Model):
    telegram: TelegramSecretRef | None = Field(
        default=None, description="Telegram alerts; the token and chat id come from this Secret."
    )


class TradingSpec(_Model):
    halted: bool = Field(
        default=False,
        description=(
            "Kill switch: workers open nothing new within one heartbeat and keep managing what is open. "
            "Not the same as `paused`, which only stops the operator from reconciling."
        ),
    )


class HealthSpec(_Model):
    """How agents report and how the coordinator judges them."""

    heartbeat_interval_seconds: float = Field(default=5.0, gt=0, le=300, description="Agent heartbeat period.")
    health_check_interval_seconds: float = Field(
        default=30.0, gt=0, description="How often the coordinator evaluates health."
    )
    missed_heartbeats_failed: int = Field(
        default=3, ge=1, le=100, description="Silent heartbeats after which an agent is failed."
    )


# --- per-agent workload settings -----------------------------------------------------------------


class AutoscalingMode(enum.StrEnum):
    """Who owns the replica count: ``off`` the spec, ``hpa`` a HorizontalPodAutoscaler on CPU,
    ``operator`` the operator's control loop from the agents' reported load. Exactly one owner."""

    OFF = "off"
    HPA = "hpa"
    OPERATOR = "operator"


class AutoscalingSpec(_Model):
    """Autoscaling of one agent kind. ``min``/``max`` bound hpa and operator modes alike."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.min <= self.max",
                    "message": "autoscaling.min must be less than or equal to autoscaling.max",
                }
            ]
        }
    )

    mode: AutoscalingMode = Field(default=AutoscalingMode.OFF, description="Owner of the replica count.")
    min: int = Field(default=1, ge=1, le=1000, description="Fewest replicas when autoscaling.")
    max: int = Field(default=3, ge=1, le=1000, description="Most replicas when autoscaling.")
    target_cpu: int = Field(
        default=70, ge=1, le=100, alias="targetCPU",
        description="hpa mode: target average CPU utilisation, percent of requests.",
    )
    target_load: float = Field(
        default=0.7, gt=0, le=1, description="operator mode: target average reported load (0..1)."
    )

    #: Mirrored into the CRD as a CEL rule, so the API server rejects it with the same words.
    MIN_LE_MAX_MESSAGE: ClassVar[str] = "autoscaling.min must be less than or equal to autoscaling.max"

    @model_validator(mode="after")
    def _min_le_max(self) -> AutoscalingSpec:
        if self.min > self.max:
            raise ValueError(self.MIN_LE_MAX_MESSAGE)
        return self


Quantity = Annotated[str, Field(pattern=QUANTITY_PATTERN)] | int


class ResourcesSpec(_Model):
    requests: dict[str, Quantity] = Field(
        default_factory=dict, description="Minimum resources, e.g. {cpu: 100m, memory: 128Mi}."
    )
    limits: dict[str, Quantity] = Field(default_factory=dict, description="Maximum resources.")


class SecretKeySelector(_Model):
    name: str = Field(min_length=1, description="Name of the Secret.")
    key: str = Field(min_length=1, description="Key in the Secret.")
    optional: bool | None = Field(default=None, description="Allow the Secret or key to be missing.")


class ConfigMapKeySelector(_Model):
    name: str = Field(min_length=1, description="Name of the ConfigMap.")
    key: str = Field(min_length=1, description="Key in the ConfigMap.")
    optional: bool | None = Field(default=None, description="Allow the ConfigMap or key to be missing.")


class EnvVarSource(_Model):
    """Values from Secrets or ConfigMaps by reference; secrets never sit in the TradingBot."""

    secret_key_ref: SecretKeySelector | None = Field(default=None, description="A key of a Secret.")
    config_map_key_ref: ConfigMapKeySelector | None = Field(default=None, description="A key of a ConfigMap.")


class EnvVar(_Model):
    name: str = Field(pattern=ENV_NAME_PATTERN, description="Environment variable name.")
    value: str | None = Field(default=None, description="Literal value (never a secret).")
    value_from: EnvVarSource | None = Field(default=None, description="Value from a Secret or ConfigMap key.")


class AgentSpec(_Model):
    """One agent kind's workload: the Deployment, its Service, PDB and autoscaler."""

    enabled: bool = Field(default=True, description="Run this agent.")
    replicas: int | None = Field(
        default=None, ge=0, le=1000,
        description=(
            "Replica count when autoscaling.mode is off (1 if omitted). Ignored, with a warning Event, "
            "when an autoscaler owns the count."
        ),
    )
    image: str | None = Field(default=None, min_length=1, description="Image override (default: spec.image).")
    resources: ResourcesSpec = _default_obj(ResourcesSpec, "Container resource requests and limits.")
    env: list[EnvVar] = Field(
        default_factory=list,
        description="Extra environment variables.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    autoscaling: AutoscalingSpec = _default_obj(AutoscalingSpec, "Autoscaling of this agent.")


class _AgentsBase(_Model):
    """Per-kind accessors, so callers name an :class:`AgentKind`, never a key string."""

    def for_kind(self, kind: AgentKind) -> AgentSpec:
        return getattr(self, kind.crd_key)


# Built from the AgentKind table so the CRD keys are spelt in exactly one place.
AgentsSpec: type[_AgentsBase] = create_model(  # type: ignore[call-overload]
    "AgentsSpec",
    __base__=_AgentsBase,
    __doc__="Per agent kind settings, keyed by the agent's CRD key.",
    **{
        kind.crd_key: (
            AgentSpec,
            Field(
                default_factory=AgentSpec,
                alias=kind.crd_key,
                description=f"The {kind.value} agent.",
                json_schema_extra={"default": {}},
            ),
        )
        for kind in AgentKind
    },
)


class TradingBotSpec(_Model):
    """Desired state of one trading bot: its mode, exchange, pairs, infrastructure and agents."""

    mode: Mode = Field(
        default=Mode.SHADOW,
        description="shadow: paper trades on real prices (default); production: real orders; debug: shadow, verbose.",
    )
    paused: bool = Field(
        default=False,
        description=(
            "Stop reconciling: the operator changes nothing while true. "
            "Trading continues (see trading.halted)."
        ),
    )
    image: str = Field(default=DEFAULT_IMAGE, min_length=1, description="Default agent image.")
    exchange: ExchangeSpec = _default_obj(ExchangeSpec, "Exchange endpoint and credentials.")
    pairs: PairsSpec = _default_obj(PairsSpec, "Traded pairs.")
    nats: NatsSpec = _default_obj(NatsSpec, "Message bus.")
    redis: RedisSpec = _default_obj(RedisSpec, "Cache server.")
    cache: CacheSpec = _default_obj(CacheSpec, "Cache settings.")
    risk: RiskSpec = _default_obj(RiskSpec, "Risk limits.")
    sentiment: SentimentSpec = _default_obj(SentimentSpec, "Sentiment sources.")
    alerts: AlertsSpec = _default_obj(AlertsSpec, "Alert channels.")
    trading: TradingSpec = _default_obj(TradingSpec, "Trading switches.")
    health: HealthSpec = _default_obj(HealthSpec, "Heartbeats and health evaluation.")
    agents: AgentsSpec = _default_obj(AgentsSpec, "Per agent kind workloads.")  # type: ignore[valid-type]


# --- status -----------------------------------------------------------------------------------


class ConditionType(enum.StrEnum):
    READY = "Ready"
    PROGRESSING = "Progressing"
    DEGRADED = "Degraded"


class ConditionStatus(enum.StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Phase(enum.StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    DEGRADED = "Degraded"
    PAUSED = "Paused"


class AgentHealth(enum.StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    FAILED = "failed"
    UNKNOWN = "unknown"


class Condition(_Lenient):
    type: ConditionType = Field(description="Ready, Progressing or Degraded.")
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(default="", max_length=1024, description="CamelCase reason, for machines.")
    message: str = Field(default="", max_length=32768, description="What happened, for people.")
    last_transition_time: str | None = Field(
        default=None, description="When status last changed (RFC 3339).", json_schema_extra={"format": "date-time"}
    )
    observed_generation: int | None = Field(
        default=None, ge=0, description="The spec generation this condition was computed from."
    )


class AgentStatus(_Lenient):
    desired_replicas: int = Field(default=0, ge=0, description="Replicas the owner of the count wants.")
    ready_replicas: int = Field(default=0, ge=0, description="Replicas passing their readiness probe.")
    health: AgentHealth = Field(default=AgentHealth.UNKNOWN, description="As reported by the coordinator.")
    load: float | None = Field(default=None, ge=0, description="Average reported load (0..1, may exceed 1).")
    restarts: int = Field(default=0, ge=0, description="Rollout restarts the operator issued.")
    last_restart_reason: str | None = Field(default=None, description="Why the last restart was issued.")


class _AgentsStatusBase(_Lenient):
    def for_kind(self, kind: AgentKind) -> AgentStatus | None:
        return getattr(self, kind.crd_key)


AgentsStatus: type[_AgentsStatusBase] = create_model(  # type: ignore[call-overload]
    "AgentsStatus",
    __base__=_AgentsStatusBase,
    __doc__="Per agent kind status, keyed by the agent's CRD key.",
    **{
        kind.crd_key: (
            AgentStatus | None,
            Field(default=None, alias=kind.crd_key, description=f"The {kind.value} agent."),
        )
        for kind in AgentKind
    },
)


class TradingBotStatus(_Lenient):
    observed_generation: int | None = Field(
        default=None, ge=0, description="The spec generation the status describes."
    )
    phase: Phase | None = Field(default=None, description="Pending, Running, Degraded or Paused.")
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Ready, Progressing and Degraded.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    ready: str | None = Field(default=None, description="Ready agent kinds over enabled agent kinds, e.g. 7/7.")
    health: AgentHealth | None = Field(default=None, description="Worst health over the enabled agents.")
    trading_worker_replicas: int | None = Field(
        default=None, ge=0, description="Ready trading worker replicas (the scale subresource's status)."
    )
    trading_worker_selector: str | None = Field(
        default=None, description="Label selector of the trading worker pods (for the scale subresource)."
    )
    agents: AgentsStatus | None = Field(default=None, description="Per agent kind status.")  # type: ignore[valid-type]


# --- the whole object -----------------------------------------------------------------------


class ObjectMeta(_Lenient):
    """The parts of ``metadata`` the builders read; everything else is ignored."""

    name: str = Field(pattern=DNS_LABEL_PATTERN)
    namespace: str = Field(default="default", pattern=DNS_LABEL_PATTERN)
    uid: str | None = None
    generation: int | None = None
    labels: dict[str, str] = Field(default_factory=dict)


class TradingBot(_Lenient):
    """A whole TradingBot object (as kopf's body or a YAML file holds it)."""

    api_version: str = Field(default=API_VERSION, alias="apiVersion")
    kind: str = Field(default=KIND)
    metadata: ObjectMeta
    spec: TradingBotSpec = Field(default_factory=TradingBotSpec)
    status: TradingBotStatus | None = None

    @model_validator(mode="after")
    def _is_a_tradingbot(self) -> TradingBot:
        if self.api_version != API_VERSION or self.kind != KIND:
            raise ValueError(
                f"expected apiVersion {API_VERSION} and kind {KIND}, got {self.api_version} {self.kind}"
            )
        return self


def parse_bot(bot: TradingBot | Mapping[str, Any]) -> TradingBot:
    """Accept a kopf body or a plain dict as well as a model: handlers and the CLI pass dicts."""
    if isinstance(bot, TradingBot):
        return bot
    return TradingBot.model_validate(dict(bot))
