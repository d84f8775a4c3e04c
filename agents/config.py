"""The agents' configuration: the seed's ``config.yaml`` layout as pydantic models.

Why pydantic with ``extra="forbid"``: a misspelt key in a trading system is a silent wrong default
(``max_portfolio_vra: 0.01`` would leave the real limit at its default). Every problem is reported at
once, one line each, naming the key path, and the process exits with code 2 (see :func:`main_guard`).

Sources, lowest to highest priority: model defaults, the YAML file, a ``.env`` file (never
overriding the real environment), then environment variables:
``TRADINGBOT__<SECTION>__<KEY>=value`` for any key (values parsed as YAML scalars) and the
conventional ``NATS_URL`` / ``REDIS_URL``. Secrets are never read from the file: they come from the
environment only (:class:`Secrets`), so a config file can be shared and committed safely.
"""

from __future__ import annotations

import enum
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

ENV_PREFIX = "TRADINGBOT__"
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")

PositiveFloat = Annotated[float, Field(gt=0)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class Mode(enum.StrEnum):
    """Shadow trades on paper against real prices; production sends signed orders; debug is shadow
    with verbose logs. Shadow is the default so that nothing reaches an exchange by accident."""

    SHADOW = "shadow"
    PRODUCTION = "production"
    DEBUG = "debug"


class BotIdentity(_Section):
    """Who this bot is. Every subject, stream, KV bucket and Redis key carries it, so two bots on
    one NATS and one Redis never see each other's traffic."""

    namespace: str = "default"
    name: str = "local"

    @field_validator("namespace", "name")
    @classmethod
    def _dns_label(cls, value: str) -> str:
        if not _DNS_LABEL.match(value):
            raise ValueError("must be a DNS label: lowercase letters, digits and '-', at most 63")
        return value


class NatsSettings(_Section):
    url: str = "nats://127.0.0.1:4222"
    connect_timeout: PositiveFloat = 2.0
    # Reconnect with backoff forever: an agent that gives up on the bus is useless, and the
    # orchestrator (Kubernetes or the local supervisor) is the one that decides to restart it.
    reconnect_wait: PositiveFloat = 0.5
    max_reconnect_wait: PositiveFloat = 5.0
    request_timeout: PositiveFloat = 2.0


class RedisSettings(_Section):
    url: str = "redis://127.0.0.1:6379/0"
    socket_timeout: PositiveFloat = 1.0


class RuntimeSettings(_Section):
    heartbeat_interval: PositiveFloat = 5.0
    http_host: str = "0.0.0.0"
    # 0 picks a free port (local runs with several agents on one host); the Deployment sets 8080.
    http_port: int = Field(default=8080, ge=0, le=65535)
    shutdown_timeout: PositiveFloat = 8.0
    log_dir: str | None = None
    log_format: str = Field(default="auto", pattern="^(auto|json|text)$")
    debug: bool = False


class CoordinatorSettings(_Section):
    max_concurrent_operations: int = Field(default=20, ge=1)
    # How often the coordinator evaluates health (the seed's name). Status answers are computed
    # at read time as well, so a status request is never staler than one heartbeat.
    health_check_interval: PositiveFloat = 30.0
    # An agent silent for this many heartbeat intervals is marked failed.
    missed_heartbeats_failed: int = Field(default=3, ge=1)
    # How long a failed agent stays listed before it is forgotten (its replacement has a new id).
    forget_after: PositiveFloat = 600.0
    # Ask for a restart of an agent failed this long; repeated requests back off exponentially.
    restart_after: PositiveFloat = 15.0
    restart_backoff_max: PositiveFloat = 300.0


class ExchangeSettings(_Section):
    """The exchange the data agent (and, in production, the workers) talk to."""

    base_url: str = "https://fapi.binance.com"
    # Request weight is limited per egress IP; agents behind one egress share one budget in Redis.
    egress: str = "default"
    timeout_s: PositiveFloat = 10.0
    recv_window_ms: int = Field(default=5000, ge=1, le=60000)
    max_concurrency: int = Field(default=8, ge=1, le=64)


class DataAgentSettings(_Section):
    cache_size_mb: PositiveFloat = 100
    prefetch_enabled: bool = True
    cleanup_interval: PositiveFloat = 300
    # How often the data agent pushes tickers and klines to the consumers that asked for them.
    poll_interval: PositiveFloat = 1.0
    # Freshness: a ticker snapshot (all symbols, one request) is reused this long; klines longer,
    # since only the last, still-open candle changes.
    ticker_ttl: PositiveFloat = 1.0
    kline_ttl: PositiveFloat = 30.0
    # Bars pushed per (symbol, interval); under 100 a klines request weighs 1 instead of 2.
    kline_limit: int = Field(default=99, ge=1, le=1500)
    # Coarser intervals are folded from one cached request of base bars (exact on Binance:
    # a 4h bar is its four 1h bars). 499 bars weigh 2, the most below the next weight step.
    kline_base_interval: str = "1h"
    kline_base_limit: int = Field(default=499, ge=1, le=1500)
    # A consumer's interest lapses unless renewed within this time (a dead consumer costs nothing).
    interest_ttl: PositiveFloat = 30.0


class SourceSettings(_Section):
    enabled: bool = False
    weight: float = Field(default=0.0, ge=0.0, le=1.0)
    # Where the source is fetched from: the real API by default; tests and offline runs point it
    # at a local replay server, or (source "file") at a file of recorded payloads.
    url: str | None = None
    # Subreddits for reddit, feed URLs for news, the search query for x, a path for file.
    targets: list[str] = Field(default_factory=list)
    timeout_s: PositiveFloat = 10.0


def _default_sources() -> dict[str, SourceSettings]:
    return {
        "reddit": SourceSettings(enabled=True, weight=0.6),
        "news": SourceSettings(enabled=False, weight=0.3),
    }


class SentimentAgentSettings(_Section):
    sources: dict[str, SourceSettings] = Field(default_factory=_default_sources)
    fetch_interval: PositiveFloat = 300.0
    max_concurrency: int = Field(default=4, ge=1)
    # Smoothing over history: EMA factor and how many past scores are kept per symbol.
    smoothing_alpha: float = Field(default=0.3, gt=0, le=1)
    history_size: int = Field(default=48, ge=1)
    # Symbols whose sentiment is scored; empty = the active pairs.
    symbols: list[str] = Field(default_factory=list)


class RiskAgentSettings(_Section):
    check_interval_seconds: PositiveFloat = 30
    alert_cooldown_minutes: float = Field(default=15, ge=0)
    max_portfolio_var: float = Field(default=0.05, gt=0, le=1)
    # Pre-trade limits (notional in the quote asset, USDT).
    max_position_notional: PositiveFloat = 1_000.0
    max_total_exposure: PositiveFloat = 5_000.0
    max_leverage: PositiveFloat = 3.0
    var_window: int = Field(default=168, ge=10, description="returns (bars) in the VaR/Sharpe window")
    correlation_window: int = Field(default=168, ge=10)
    # Account equity before any PnL (USDT): leverage and VaR are fractions of equity.
    initial_equity: PositiveFloat = 10_000.0
    # Alert when equity falls this fraction below its peak.
    max_drawdown_alert: float = Field(default=0.10, gt=0, le=1)
    # Telegram Bot API base URL (tests point it at a local server); token and chat from Secrets.
    telegram_api_url: str = "https://api.telegram.org"


class PairsSettings(_Section):
    """Which symbols may be traded: a static list, or what the pair selector picks."""

    static: list[str] = Field(default_factory=list)
    max_pairs: int = Field(default=5, ge=1, le=100)
    min_quote_volume_24h: float = Field(default=0.0, ge=0)
    quote_asset: str = "USDT"
    refresh_interval: PositiveFloat = 300.0


class TradingSettings(_Section):
    # The kill switch: workers open nothing new within one heartbeat, keep managing what is open.
    halted: bool = False


class PairSelectorSettings(_Section):
    # Ranking weights of the selector's criteria (normalised ranks, higher is better).
    volume_weight: float = Field(default=0.5, ge=0)
    volatility_weight: float = Field(default=0.3, ge=0)
    spread_weight: float = Field(default=0.2, ge=0)
    # Drop a candidate whose return correlation with an already chosen pair exceeds this.
    max_correlation: float = Field(default=0.9, gt=0, le=1)
    lookback_bars: int = Field(default=168, ge=10, le=1500)


class TradingWorkerSettings(_Section):
    loop_interval: PositiveFloat = 5.0
    max_pairs_per_worker: int = Field(default=10, ge=1)
    order_notional: PositiveFloat = 100.0
    fast_ema: int = Field(default=12, ge=2)
    slow_ema: int = Field(default=26, ge=3)
    rsi_period: int = Field(default=14, ge=2)
    rsi_overbought: float = Field(default=70, gt=50, lt=100)
    rsi_oversold: float = Field(default=30, gt=0, lt=50)
    sentiment_weight: float = Field(default=0.2, ge=0, le=1)
    rl_weight: float = Field(default=0.3, ge=0, le=1)
    signal_threshold: float = Field(default=0.3, gt=0, le=1)
    # Production orders need this explicit flag as well as mode: production and API keys.
    allow_live_orders: bool = False
    # Bars the indicators are computed on (through the data agents).
    kline_interval: str = "1h"
    kline_limit: int = Field(default=99, ge=10, le=499)
    # MARKET orders, or LIMIT orders placed limit_offset_bps inside the last price that wait.
    order_type: str = Field(default="MARKET", pattern="^(MARKET|LIMIT)$")
    limit_offset_bps: float = Field(default=5.0, ge=0)
    # Paper broker (shadow/debug): modelled spread and slippage, fees, volume share per candle.
    paper_spread_bps: float = Field(default=2.0, ge=0)
    paper_slippage_bps: float = Field(default=1.0, ge=0)
    taker_fee: float = Field(default=0.0005, ge=0, lt=0.1)
    maker_fee: float = Field(default=0.0002, ge=0, lt=0.1)
    max_volume_fraction: float = Field(default=0.1, gt=0, le=1)
    # No risk answer within this time = no trade.
    risk_timeout: PositiveFloat = 1.0
    # Sentiment and RL inputs older than this do not vote.
    input_max_age: PositiveFloat = 900.0
    # A coordinator assignment older than this is ignored (workers share pairs fairly on their own).
    assignment_max_age: PositiveFloat = 60.0

    @model_validator(mode="after")
    def _emas_ordered(self) -> TradingWorkerSettings:
        if self.fast_ema >= self.slow_ema:
            raise ValueError(f"fast_ema ({self.fast_ema}) must be shorter than slow_ema ({self.slow_ema})")
        return self


class RLAgentSettings(_Section):
    algorithm: str = Field(default="dqn", pattern="^(dqn)$")
    seed: int = 7
    hidden_units: int = Field(default=32, ge=4, le=1024)
    window: int = Field(default=24, ge=2, description="past bars in the observation")
    train_episodes: int = Field(default=30, ge=1)
    retrain_interval: PositiveFloat = 3600.0
    advice_interval: PositiveFloat = 60.0
    # Symbols advised on (and trained on); empty = pairs.static plus the pair selector's active pairs.
    symbols: list[str] = Field(default_factory=list)
    # Training budget: episodes of this many bars, drawn from the last train_bars 1h klines per symbol.
    episode_bars: int = Field(default=256, ge=8)
    train_bars: int = Field(default=1000, ge=50, le=1500)
    # Transaction cost per unit of position changed; 5 bps = Binance USDⓈ-M standard taker fee.
    fee_bps: float = Field(default=5.0, ge=0)


class CacheSettings(_Section):
    max_size_mb: PositiveFloat = 100
    default_ttl: PositiveFloat = 300
    enable_prefetching: bool = True
    enable_compression: bool = True


class Config(_Section):
    """The whole file. Section names follow the seed's ``config.yaml``."""

    mode: Mode = Mode.SHADOW
    bot: BotIdentity = Field(default_factory=BotIdentity)
    nats: NatsSettings = Field(default_factory=NatsSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    runtime: RuntimeSettings = Field(default_factory=RuntimeSettings)
    coordinator: CoordinatorSettings = Field(default_factory=CoordinatorSettings)
    data_agent: DataAgentSettings = Field(default_factory=DataAgentSettings)
    sentiment_agent: SentimentAgentSettings = Field(default_factory=SentimentAgentSettings)
    risk_agent: RiskAgentSettings = Field(default_factory=RiskAgentSettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    exchange: ExchangeSettings = Field(default_factory=ExchangeSettings)
    pairs: PairsSettings = Field(default_factory=PairsSettings)
    trading: TradingSettings = Field(default_factory=TradingSettings)
    pair_selector: PairSelectorSettings = Field(default_factory=PairSelectorSettings)
    trading_worker: TradingWorkerSettings = Field(default_factory=TradingWorkerSettings)
    rl_agent: RLAgentSettings = Field(default_factory=RLAgentSettings)


class Secrets(BaseModel):
    """Credentials, from the environment only (a Kubernetes Secret mounted as env vars).

    ``SecretStr`` keeps them out of reprs, logs and exception messages."""

    model_config = ConfigDict(frozen=True)

    binance_api_key: SecretStr | None = None
    binance_api_secret: SecretStr | None = None
    telegram_bot_token: SecretStr | None = None
    telegram_chat_id: str | None = None
    reddit_client_id: SecretStr | None = None
    reddit_client_secret: SecretStr | None = None
    x_bearer_token: SecretStr | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Secrets:
        env = os.environ if env is None else env
        values = {name: env.get(name.upper()) for name in cls.model_fields}
        return cls(**{k: v for k, v in values.items() if v})


class ConfigError(Exception):
    """Invalid configuration. ``lines`` holds one human-readable problem per entry."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read config file: {exc.strerror}"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([f"{where}: invalid YAML: {problem}"]) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError([f"{path}: top level must be a mapping of sections, got {type(data).__name__}"])
    return data


def _set_path(target: dict[str, Any], path: list[str], value: Any) -> None:
    node = target
    for key in path[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = {}
            node[key] = child
        node = child
    node[path[-1]] = value


def _env_overrides(env: Mapping[str, str]) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for name, raw in env.items():
        if not name.startswith(ENV_PREFIX):
            continue
        path = [part.lower() for part in name[len(ENV_PREFIX):].split("__") if part]
        if path:
            _set_path(overrides, path, yaml.safe_load(raw) if raw != "" else None)
    if env.get("NATS_URL"):
        _set_path(overrides, ["nats", "url"], env["NATS_URL"])
    if env.get("REDIS_URL"):
        _set_path(overrides, ["redis", "url"], env["REDIS_URL"])
    return overrides


def deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """``extra`` laid over ``base``: mappings merged key by key, everything else replaced."""
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def format_validation_error(exc: ValidationError, source: str) -> list[str]:
    lines = []
    for err in exc.errors(include_url=False):
        path = ".".join(str(part) for part in err["loc"]) or "(top level)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; secrets belong in the environment)"
        lines.append(f"{source}: {path}: {msg}")
    return lines


def load_config(
    path: str | Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    dotenv: str | Path | None = ".env",
) -> Config:
    """Load, merge and validate. Raises :class:`ConfigError` listing every problem."""
    if env is None:
        if dotenv is not None and Path(dotenv).is_file():
            from dotenv import load_dotenv

            load_dotenv(dotenv, override=False)
        env = os.environ
    if path is None:
        path = env.get("TRADINGBOT_CONFIG") or None
    data: dict[str, Any] = _read_yaml(Path(path)) if path else {}
    data = deep_merge(data, _env_overrides(env))
    source = str(path) if path else "config"
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from None
