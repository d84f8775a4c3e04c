"""The PrometheusRule's alerts: `promtool check rules` and `promtool test rules`, every alert
unit-tested both firing and not firing (tests/chart/rules/alerts.test.yaml)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.helpers import HERE, VALUES_SETS, helm_template, one, run, tool

RULES_NAME = "tradingbot-alerts.rules.yaml"
UNIT_TESTS = HERE / "rules" / "alerts.test.yaml"


def rule_groups(*values: str) -> list[dict[str, Any]]:
    return one(helm_template(*values), "PrometheusRule")["spec"]["groups"]


def alert_names(groups: list[dict[str, Any]]) -> list[str]:
    return [r["alert"] for g in groups for r in g["rules"] if "alert" in r]


def write_rules(folder: Path, groups: list[dict[str, Any]], *, annotations: bool) -> Path:
    """The rules file Prometheus would load. Without annotations for the unit tests: promtool
    compares annotations too, and their wording is checked by `check rules` and the README test."""
    groups = yaml.safe_load(yaml.safe_dump(groups))
    if not annotations:
        for group in groups:
            for rule in group["rules"]:
                rule.pop("annotations", None)
    path = folder / RULES_NAME
    path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False), encoding="utf-8")
    return path


@pytest.mark.parametrize("name", ["all-on-namespaced", "all-on-clusterwide"])
def test_promtool_check_rules(tmp_path: Path, name: str) -> None:
    path = write_rules(tmp_path, rule_groups(*VALUES_SETS[name]), annotations=True)
    proc = run([tool("promtool"), "check", "rules", str(path)])
    assert f"SUCCESS: {len(alert_names(rule_groups(*VALUES_SETS[name])))} rules found" in proc.stdout


def test_promtool_check_rules_can_fail(tmp_path: Path) -> None:
    groups = rule_groups(*VALUES_SETS["all-on-namespaced"])
    groups[0]["rules"][0]["expr"] = "sum by (namespace (up"
    path = write_rules(tmp_path, groups, annotations=True)
    proc = run([tool("promtool"), "check", "rules", str(path)], check=False)
    assert proc.returncode != 0


def _unit_test_coverage() -> dict[str, set[bool]]:
    """alert name -> {True if some case expects it firing, False if some case expects none}."""
    spec = yaml.safe_load(UNIT_TESTS.read_text(encoding="utf-8"))
    covered: dict[str, set[bool]] = {}
    for case in spec["tests"]:
        for check in case.get("alert_rule_test", []):
            covered.setdefault(check["alertname"], set()).add(bool(check.get("exp_alerts")))
    return covered


def test_every_alert_is_unit_tested_firing_and_not_firing() -> None:
    covered = _unit_test_coverage()
    alerts = alert_names(rule_groups(*VALUES_SETS["all-on-namespaced"]))
    missing = {a: sorted({True, False} - covered.get(a, set())) for a in alerts}
    assert {a: m for a, m in missing.items() if m} == {}, "True: no firing case, False: no silent case"
    assert set(covered) <= set(alerts), f"tests for alerts that do not exist: {set(covered) - set(alerts)}"


def test_promtool_test_rules(tmp_path: Path) -> None:
    write_rules(tmp_path, rule_groups(*VALUES_SETS["all-on-namespaced"]), annotations=False)
    shutil.copy(UNIT_TESTS, tmp_path / UNIT_TESTS.name)
    proc = run([tool("promtool"), "test", "rules", UNIT_TESTS.name], cwd=tmp_path)
    assert "SUCCESS" in proc.stdout


def test_promtool_test_rules_fails_on_a_wrong_threshold(tmp_path: Path) -> None:
    """The unit tests pin the thresholds: a cache threshold of 10 % makes the firing case fail."""
    groups = rule_groups(*VALUES_SETS["all-on-namespaced"],
                         "--set-json", "monitoring.prometheusRule.cacheHitRateMin=0.1")
    write_rules(tmp_path, groups, annotations=False)
    shutil.copy(UNIT_TESTS, tmp_path / UNIT_TESTS.name)
    proc = run([tool("promtool"), "test", "rules", UNIT_TESTS.name], cwd=tmp_path, check=False)
    assert proc.returncode != 0
    assert "TradingBotCacheHitRateLow" in proc.stdout + proc.stderr


def test_alert_metric_names_exist_in_the_code() -> None:
    """Every metric an alert reads is one the operator or an agent exports (or kube-state-metrics')."""
    from tests.chart.helpers import ROOT

    sources = "".join(p.read_text(encoding="utf-8") for folder in ("agents", "operator")
                      for p in (ROOT / folder).rglob("*.py"))
    exported_by_us = {
        "tradingbot_coordinator_agents": "tradingbot_coordinator_agents",
        "tradingbot_operator_restarts_total": "tradingbot_operator_restarts",
        "tradingbot_cache_hits_total": '_hits", "Cache hits per tier"',
        "tradingbot_cache_misses_total": '_misses", "Cache misses per tier"',
        "exchange_circuit_state": '"exchange_circuit_state"',
        "tradingbot_risk_var_95": '"var_95"',
        "tradingbot_risk_var_limit": '"var_limit"',
        "tradingbot_operator_errors_total": '"tradingbot_operator_errors"',
    }
    exprs = " ".join(r["expr"] for g in rule_groups(*VALUES_SETS["all-on-namespaced"]) for r in g["rules"])
    for metric, needle in exported_by_us.items():
        assert metric in exprs, f"{metric} no longer used by an alert: update this test"
        assert needle in sources, f"{metric}: nothing in agents/ or operator/ exports it ({needle!r})"
