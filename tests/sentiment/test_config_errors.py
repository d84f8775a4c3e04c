"""Unknown or unusable source settings stop the agent at start, naming the key path (exit 2)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tradingbot_agents.config import Config, ConfigError, Secrets, SentimentAgentSettings
from tradingbot_agents.sentiment.agent import SentimentAgent
from tradingbot_agents.sentiment.sources import SOURCE_TYPES, build_sources


def test_unknown_source_name_is_a_config_error(make_config: Callable[..., Config]) -> None:
    config = make_config(sentiment_agent={"sources": {"reddit": {"enabled": True, "weight": 0.5},
                                                      "foo": {"enabled": True, "weight": 0.5},
                                                      "telegram": {"enabled": False}}})
    with pytest.raises(ConfigError) as err:
        SentimentAgent(config, secrets=Secrets())
    assert err.value.lines == [
        "sentiment_agent.sources.foo: unknown source (known: file, news, reddit, x)",
        "sentiment_agent.sources.telegram: unknown source (known: file, news, reddit, x)",
    ]


def test_file_source_without_paths_is_a_config_error() -> None:
    settings = SentimentAgentSettings.model_validate({"sources": {"file": {"enabled": True, "weight": 1.0}}})
    with pytest.raises(ConfigError, match=r"sentiment_agent\.sources\.file\.targets: the file source needs"):
        build_sources(settings, Secrets())


def test_disabled_sources_are_not_built_and_defaults_are_valid() -> None:
    built = build_sources(SentimentAgentSettings(), Secrets())
    assert [s.name for s in built] == ["reddit"]  # the seed's default: reddit on, news off
    assert set(SOURCE_TYPES) == {"reddit", "news", "x", "file"}


def test_cli_exits_2_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"sentiment_agent": {"sources": {"foo": {"enabled": True}}}}))
    done = subprocess.run(
        [sys.executable, "-P", "-m", "tradingbot_agents", "agent", "run", "sentiment", "--config", str(config),
         "--http-port", "0"],
        capture_output=True, text=True, timeout=30, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "config error: sentiment_agent.sources.foo: unknown source" in done.stderr
