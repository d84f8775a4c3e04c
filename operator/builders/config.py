"""The agents' ``config.yaml`` built from the spec, and the per-agent config hash.

The ConfigMap holds one ``config.yaml`` for every agent of the bot; it is built as a
:class:`tradingbot_agents.config.Config`, so what the operator writes is exactly what the agents
accept (``extra="forbid"`` on their side: a key they do not know fails here, in the operator's
tests, not in a crash-looping pod).

The hash rule (why only some Deployments roll): each agent's pod template carries the hash of the
config sections *that agent reads*: the sections every agent reads (:data:`COMMON_SECTIONS`:
mode, bot identity, NATS, Redis, runtime), its own section (``AgentKind.config_section``) and the
shared sections listed for it in :data:`EXTRA_SECTIONS`. Changing the risk limits rolls only the
risk agent; changing NATS rolls everyone; replicas, resources, image and env are not config at
all (they are in the pod spec, which rolls by itself when it changes), so they never move any
hash. Over-listing a section costs a needless restart; under-listing leaves a pod running on stale
config, so when an agent starts reading a section, add it here.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from tradingbot_agents.config import Config
from tradingbot_agents.kinds import AgentKind
from tradingbot_operator.builders.common import COMPONENT_NATS, COMPONENT_REDIS, HTTP_PORT, object_name
from tradingbot_operator.spec import TradingBot

NATS_CLIENT_PORT = 4222
REDIS_PORT = 6379

COMMON_SECTIONS: tuple[str, ...] = ("mode", "bot", "nats", "redis", "runtime")

#: Shared sections each agent reads besides its own ``config_section``.
EXTRA_SECTIONS: dict[AgentKind, tuple[str, ...]] = {
    AgentKind.COORDINATOR: (),
    AgentKind.DATA: ("cache", "exchange", "pairs"),
    AgentKind.SENTIMENT: ("cache",),
    AgentKind.RISK: ("exchange",),
    AgentKind.PAIR_SELECTOR: ("cache", "exchange", "pairs"),
    AgentKind.TRADING_WORKER: ("cache", "exchange", "pairs", "trading"),
    AgentKind.RL: ("cache",),
}


def sections_read_by(kind: AgentKind) -> tuple[str, ...]:
    return (*COMMON_SECTIONS, kind.config_section, *EXTRA_SECTIONS[kind])


def nats_url(bot: TradingBot) -> str:
    """The spec's URL, or the operator-run NATS Service of this bot."""
    if bot.spec.nats.url:
        return bot.spec.nats.url
    host = f"{object_name(bot, COMPONENT_NATS)}.{bot.metadata.namespace}.svc"
    return f"nats://{host}:{NATS_CLIENT_PORT}"


def redis_url(bot: TradingBot) -> str:
    if bot.spec.redis.url:
        return bot.spec.redis.url
    host = f"{object_name(bot, COMPONENT_REDIS)}.{bot.metadata.namespace}.svc"
    return f"redis://{host}:{REDIS_PORT}/0"


def _forward_sections(bot: TradingBot) -> dict[str, Any]:
    """Spec settings for sections the agents' Config may not define yet (exchange endpoint,
    pairs, the kill switch). They are written only when ``Config`` has the section, so the
    ConfigMap always validates; the operator's tests validate it with ``Config`` and fail if the
    agents' field names differ from these."""
    spec = bot.spec
    return {
        "exchange": {"base_url": spec.exchange.base_url},
        "pairs": {
            "static": list(spec.pairs.static),
            "max_pairs": spec.pairs.selector.max_pairs,
            "min_quote_volume_24h": spec.pairs.selector.min_quote_volume_24h,
            "quote_asset": spec.pairs.selector.quote_asset,
            "refresh_interval": spec.pairs.selector.refresh_interval_seconds,
        },
        "trading": {"halted": spec.trading.halted},
    }


def config_data(bot: TradingBot) -> dict[str, Any]:
    """The config as plain data, before validation (what :func:`render_config` validates)."""
    spec = bot.spec
    sentiment = spec.sentiment
    data: dict[str, Any] = {
        "mode": spec.mode.value,
        "bot": {"namespace": bot.metadata.namespace, "name": bot.metadata.name},
        "nats": {"url": nats_url(bot)},
        "redis": {"url": redis_url(bot)},
        "runtime": {
            "heartbeat_interval": spec.health.heartbeat_interval_seconds,
            "http_host": "0.0.0.0",
            "http_port": HTTP_PORT,
            "log_format": "json",
            "log_dir": None,
            "debug": spec.mode.value == "debug",
        },
        "coordinator": {
            "health_check_interval": spec.health.health_check_interval_seconds,
            "missed_heartbeats_failed": spec.health.missed_heartbeats_failed,
        },
        "data_agent": {
            "cache_size_mb": spec.cache.max_size_mb,
            "prefetch_enabled": spec.cache.enable_prefetching,
            "cleanup_interval": spec.cache.cleanup_interval_seconds,
        },
        "sentiment_agent": {
            "sources": {
                "reddit": {"enabled": sentiment.reddit.enabled, "weight": sentiment.reddit.weight},
                "news": {"enabled": sentiment.news.enabled, "weight": sentiment.news.weight},
                "x": {"enabled": sentiment.x.enabled, "weight": sentiment.x.weight},
            }
        },
        "risk_agent": {
            "check_interval_seconds": spec.risk.check_interval_seconds,
            "alert_cooldown_minutes": spec.risk.alert_cooldown_minutes,
            "max_portfolio_var": spec.risk.max_portfolio_var,
        },
        "cache": {
            "max_size_mb": spec.cache.max_size_mb,
            "default_ttl": spec.cache.default_ttl_seconds,
            "enable_prefetching": spec.cache.enable_prefetching,
            "enable_compression": spec.cache.enable_compression,
        },
    }
    known = Config.model_fields
    data.update({k: v for k, v in _forward_sections(bot).items() if k in known})
    return data


def render_config(bot: TradingBot) -> Config:
    """The agents' Config for this bot (raises pydantic's ValidationError if they disagree)."""
    return Config.model_validate(config_data(bot))


def config_document(config: Config) -> dict[str, Any]:
    """JSON-ready dict of the config, as written to ``config.yaml`` and hashed."""
    return config.model_dump(mode="json")


def config_hashes(document: dict[str, Any]) -> dict[AgentKind, str]:
    """Per agent kind, the sha256 of the sections it reads (see the module docstring)."""
    hashes: dict[AgentKind, str] = {}
    for kind in AgentKind:
        part = {name: document[name] for name in sections_read_by(kind) if name in document}
        canonical = json.dumps(part, sort_keys=True, separators=(",", ":"))
        hashes[kind] = hashlib.sha256(canonical.encode()).hexdigest()
    return hashes
