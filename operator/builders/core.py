"""ServiceAccount and ConfigMap: the objects every agent pod of a bot shares."""

from __future__ import annotations

from typing import Any

from tradingbot_operator.builders.common import COMPONENT_BOT, COMPONENT_CONFIG, CONFIG_KEY, metadata, object_name
from tradingbot_operator.spec import TradingBot

try:  # libyaml's emitter is ~10x faster; the pure-Python one gives the same text
    from yaml import CSafeDumper as _Dumper
except ImportError:  # pragma: no cover - libyaml missing
    from yaml import SafeDumper as _Dumper  # type: ignore[assignment]

import yaml


def service_account(bot: TradingBot) -> dict[str, Any]:
    """One identity per bot. Agents never call the API server, so no token is mounted."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": metadata(bot, name=object_name(bot), component=COMPONENT_BOT),
        "automountServiceAccountToken": False,
    }


def config_map_name(bot: TradingBot) -> str:
    return object_name(bot, COMPONENT_CONFIG)


def config_map(bot: TradingBot, *, document: dict[str, Any]) -> dict[str, Any]:
    """The agents' ``config.yaml``: the validated Config dumped with sorted keys, so the same spec
    always renders the same bytes."""
    text = yaml.dump(document, Dumper=_Dumper, sort_keys=True, default_flow_style=False)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(bot, name=config_map_name(bot), component=COMPONENT_CONFIG),
        "data": {CONFIG_KEY: text},
    }
