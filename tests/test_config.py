"""Configuration: the seed's layout, env overrides, .env, secrets from the environment only, and
an invalid file → exit 2 naming the key path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.procs import REPO
from tradingbot_agents.config import ConfigError, Mode, Secrets, load_config
from tradingbot_agents.kinds import AgentKind

SEED_CONFIG = """
coordinator:
  max_concurrent_operations: 20
  health_check_interval: 30
data_agent:
  cache_size_mb: 100
  prefetch_enabled: true
  cleanup_interval: 300
sentiment_agent:
  sources:
    reddit: {enabled: true, weight: 0.6}
    news: {enabled: false, weight: 0.3}
risk_agent:
  check_interval_seconds: 30
  alert_cooldown_minutes: 15
  max_portfolio_var: 0.05
cache:
  max_size_mb: 100
  default_ttl: 300
  enable_prefetching: true
  enable_compression: true
"""


def test_seed_config_loads(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(SEED_CONFIG)
    config = load_config(path, env={})
    assert config.mode is Mode.SHADOW
    assert config.risk_agent.max_portfolio_var == 0.05
    assert config.sentiment_agent.sources["reddit"].weight == 0.6
    assert config.coordinator.health_check_interval == 30


def test_env_overrides_file(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(SEED_CONFIG)
    env = {"TRADINGBOT__RISK_AGENT__MAX_PORTFOLIO_VAR": "0.02", "TRADINGBOT__MODE": "debug",
           "NATS_URL": "nats://n:4222", "REDIS_URL": "redis://r:6379/1"}
    config = load_config(path, env=env)
    assert config.risk_agent.max_portfolio_var == 0.02
    assert config.mode is Mode.DEBUG
    assert config.nats.url == "nats://n:4222"
    assert config.redis.url == "redis://r:6379/1"


def test_every_problem_is_reported_with_its_key_path(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("risk_agent:\n  max_portfolio_var: 7\n  max_portfolio_vra: 0.1\n"
                    "data_agent:\n  cache_size_mb: -1\nmode: yolo\nbinance_api_key: abc\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    text = "\n".join(info.value.lines)
    assert "risk_agent.max_portfolio_var: Input should be less than or equal to 1" in text
    assert "risk_agent.max_portfolio_vra: unknown key" in text
    assert "data_agent.cache_size_mb: Input should be greater than 0" in text
    assert "mode: Input should be 'shadow', 'production' or 'debug'" in text
    assert "binance_api_key: unknown key" in text and "secrets belong in the environment" in text
    assert len(info.value.lines) == 5


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("cache:\n  max_size_mb: [1, 2\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert f"{path}:3" in info.value.lines[0] or f"{path}:2" in info.value.lines[0]


def test_dotenv_is_honoured_without_overriding_the_environment(tmp_path: Path, monkeypatch) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("TRADINGBOT__CACHE__DEFAULT_TTL=42\nTRADINGBOT__MODE=debug\n")
    monkeypatch.setenv("TRADINGBOT__MODE", "production")
    config = load_config(None, dotenv=dotenv)
    assert config.cache.default_ttl == 42
    assert config.mode is Mode.PRODUCTION  # the real environment wins over .env
    monkeypatch.delenv("TRADINGBOT__CACHE__DEFAULT_TTL")


def test_secrets_come_from_the_environment_and_never_show() -> None:
    secrets = Secrets.from_env({"BINANCE_API_KEY": "key-123", "BINANCE_API_SECRET": "s3cr3t"})
    assert secrets.binance_api_secret is not None
    assert secrets.binance_api_secret.get_secret_value() == "s3cr3t"
    assert "s3cr3t" not in repr(secrets) and "s3cr3t" not in str(secrets.model_dump())
    assert Secrets.from_env({}).telegram_bot_token is None


def test_invalid_config_exits_2_with_the_key_path(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("coordinator:\n  health_check_interval: -5\n")
    result = subprocess.run(
        [sys.executable, "-P", "-m", "tradingbot_agents", "agent", "run", "coordinator", "--config", str(path)],
        cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "coordinator.health_check_interval: Input should be greater than 0" in result.stderr


def test_unknown_agent_kind_exits_2() -> None:
    result = subprocess.run([sys.executable, "-P", "-m", "tradingbot_agents", "agent", "run", "trader"],
                            cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "unknown agent kind 'trader'" in result.stderr
    assert "pair-selector" in result.stderr


def test_names_table_is_complete() -> None:
    # decisions.md's table, spelled once.
    assert [k.crd_key for k in AgentKind] == ["coordinator", "data", "sentiment", "risk", "pairSelector",
                                              "tradingWorker", "rl"]
    assert AgentKind.PAIR_SELECTOR.config_section == "pair_selector"
    assert AgentKind.DATA.log_file == "data_agent.log"
    assert AgentKind.TRADING_WORKER.deployment_suffix == "trading-worker"
    assert AgentKind.from_cli("trading-worker") is AgentKind.TRADING_WORKER


def test_agent_commands_never_load_kopf() -> None:
    code = ("import sys\nfrom tradingbot_agents import cli\ncli.build_parser()\n"
            "cli.main(['agent', 'run', 'nope'])\nprint('kopf' in sys.modules)")
    result = subprocess.run([sys.executable, "-P", "-c", code], cwd=REPO, capture_output=True, text=True,
                            timeout=60)
    assert result.stdout.strip() == "False", result.stderr
