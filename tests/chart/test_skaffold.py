"""skaffold.yaml: every path it names exists, both images are built, the chart is deployed with
the profiles the issue asks for, and the coordinator's status page is port-forwarded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.chart.helpers import CHART, ROOT, helm_template, one, run, tool

SKAFFOLD = ROOT / "skaffold.yaml"


def config() -> dict[str, Any]:
    return yaml.safe_load(SKAFFOLD.read_text(encoding="utf-8"))


def named_paths(cfg: dict[str, Any]) -> list[str]:
    """Dockerfiles, build contexts, chart paths and values files, in the base and every profile."""
    out: list[str] = []
    for artifact in cfg["build"]["artifacts"]:
        context = artifact.get("context", ".")
        out.append(context)
        out.append(str(Path(context) / artifact["docker"]["dockerfile"]))
    for release in cfg["deploy"]["helm"]["releases"]:
        out.append(release["chartPath"])
        out += release.get("valuesFiles", [])
    for profile in cfg.get("profiles", []):
        for patch in profile.get("patches", []):
            if "valuesFiles" in patch["path"]:
                out.append(patch["value"])
    return out


def test_every_path_named_exists() -> None:
    paths = named_paths(config())
    assert len(paths) >= 7
    missing = [p for p in paths if not (ROOT / p).exists()]
    assert missing == []


def test_path_check_can_fail() -> None:
    cfg = config()
    cfg["build"]["artifacts"][0]["docker"]["dockerfile"] = "images/nope.Dockerfile"
    assert [p for p in named_paths(cfg) if not (ROOT / p).exists()] == ["images/nope.Dockerfile"]


def test_builds_both_images_and_deploys_the_chart() -> None:
    cfg = config()
    dockerfiles = {a["image"]: a["docker"]["dockerfile"] for a in cfg["build"]["artifacts"]}
    assert dockerfiles == {
        "ghcr.io/tradingbot/tradingbot-operator": "images/operator.Dockerfile",
        "ghcr.io/tradingbot/tradingbot": "images/agents.Dockerfile",
    }
    (release,) = cfg["deploy"]["helm"]["releases"]
    assert (ROOT / release["chartPath"]).resolve() == CHART
    templates = release["setValueTemplates"]
    assert "IMAGE_REPO_ghcr_io_tradingbot_tradingbot_operator" in templates["image.repository"]
    # The example bot runs the agents image skaffold just built.
    assert "IMAGE_FULLY_QUALIFIED_ghcr_io_tradingbot_tradingbot" in templates["example.spec.image"]


def _values_args(cfg: dict[str, Any], profile: str | None) -> list[str]:
    files = list(cfg["deploy"]["helm"]["releases"][0]["valuesFiles"])
    if profile:
        (prof,) = [p for p in cfg["profiles"] if p["name"] == profile]
        files += [p["value"] for p in prof["patches"] if "valuesFiles" in p["path"]]
    return [arg for f in files for arg in ("-f", str(ROOT / f))]


def test_default_is_shadow_and_dev_is_one_replica_debug() -> None:
    cfg = config()
    default = helm_template(*_values_args(cfg, None))
    assert one(default, "Deployment")["spec"]["replicas"] == 2
    assert one(default, "TradingBot")["spec"]["mode"] == "shadow"
    dev = helm_template(*_values_args(cfg, "dev"))
    deployment = one(dev, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert "--verbose" in deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    bot = one(dev, "TradingBot")
    assert bot["spec"]["mode"] == "debug"
    (dev_profile,) = [p for p in cfg["profiles"] if p["name"] == "dev"]
    assert {"command": "dev"} in dev_profile["activation"]
    for profile in (None, "dev"):
        run([tool("helm"), "lint", "--strict", str(CHART), *_values_args(cfg, profile)])


def test_port_forwards_the_coordinator_status_page() -> None:
    cfg = config()
    (forward,) = cfg["portForward"]
    bot = one(helm_template(*_values_args(cfg, None)), "TradingBot")
    from tradingbot_agents.kinds import AgentKind
    from tradingbot_operator.builders import agent_name
    from tradingbot_operator.builders.common import HTTP_PORT

    assert forward["resourceType"] == "service"
    assert forward["resourceName"] == agent_name(bot, AgentKind.COORDINATOR)
    assert forward["namespace"] == bot["metadata"]["namespace"]
    assert forward["port"] == HTTP_PORT == 8080
    release = cfg["deploy"]["helm"]["releases"][0]
    assert release["namespace"] == bot["metadata"]["namespace"]
