"""The Helm chart: lint, template, strict validation of every object it renders, the values schema,
the CRD copy, peering and replicas, monitoring objects and their runbooks."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import pytest
import yaml

from tests.chart.helpers import (
    CHART,
    CUSTOM_KINDS,
    ROOT,
    VALUES_SETS,
    helm_template,
    helm_template_text,
    one,
    run,
    schema_errors,
    select,
    tool,
    validate_builtin,
    validate_custom,
)
from tradingbot_agents.kinds import AgentKind

ALL_ON = VALUES_SETS["all-on-namespaced"]
CLUSTER = VALUES_SETS["all-on-clusterwide"]


def chart_crds(objs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {o["spec"]["names"]["kind"]: o for o in select(objs, "CustomResourceDefinition")}


@pytest.mark.parametrize("name", sorted(VALUES_SETS))
def test_helm_lint(name: str) -> None:
    proc = run([tool("helm"), "lint", str(CHART), "--strict", *VALUES_SETS[name]])
    assert "1 chart(s) linted, 0 chart(s) failed" in proc.stdout


@pytest.mark.parametrize("name", sorted(VALUES_SETS))
def test_template_output_validates_strictly(name: str) -> None:
    objs = helm_template(*VALUES_SETS[name])
    assert objs, "helm template rendered nothing"
    crds = chart_crds(objs)
    kinds = Counter(o["kind"] for o in objs)
    for obj in objs:
        if (obj["apiVersion"], obj["kind"]) in CUSTOM_KINDS:
            validate_custom(obj, crds)
        else:
            validate_builtin(obj)
    assert kinds["Deployment"] == 1
    # Names are unique per (kind, namespace).
    keys = Counter((o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in objs)
    assert [k for k, n in keys.items() if n > 1] == []


def test_validation_can_fail() -> None:
    """The validators used above reject a broken object (a test that cannot fail is a defect)."""
    objs = helm_template(*ALL_ON)
    deployment = yaml.safe_load(yaml.safe_dump(one(objs, "Deployment")))
    deployment["spec"]["replicas"] = "two"
    with pytest.raises(pytest.fail.Exception):
        validate_builtin(deployment)
    unknown = {"apiVersion": "example.com/v1", "kind": "Nothing", "metadata": {"name": "x"}}
    with pytest.raises(pytest.fail.Exception, match="no schema"):
        validate_builtin(unknown)
    monitor = yaml.safe_load(yaml.safe_dump(select(objs, "ServiceMonitor")[0]))
    monitor["spec"]["endpoints"][0]["interval"] = "thirty seconds"
    with pytest.raises(AssertionError, match="interval"):
        validate_custom(monitor, {})


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "replicaCount=0"], "/replicaCount"),
        (["--set", "watch.clusterWide=yes"], "/watch/clusterWide"),
        (["--set", "replicaCont=2"], "replicaCont"),
        (["--set", "image.pullPolicy=Sometimes"], "/image/pullPolicy"),
        (["--set", "monitoring.prometheusRule.cacheHitRateMin=50"], "/monitoring/prometheusRule/cacheHitRateMin"),
        (["--set", "monitoring.serviceMonitor.interval=often"], "/monitoring/serviceMonitor/interval"),
        (["--set", "watch.namespaces[0]=Not_A_Namespace"], "/watch/namespaces/0"),
    ],
)
def test_wrong_values_fail_with_a_message(args: list[str], message: str) -> None:
    for command in ("template", "install"):
        extra = ["--dry-run=client"] if command == "install" else []
        proc = run([tool("helm"), command, "tb", str(CHART), *extra, *args], check=False)
        assert proc.returncode != 0, f"helm {command} accepted {args}"
        assert message in proc.stderr, proc.stderr


def test_crd_is_identical_to_the_repository_copy() -> None:
    source = ROOT / "crds" / "tradingbot.io_tradingbots.yaml"
    copy = CHART / "files" / "crds" / "tradingbot.io_tradingbots.yaml"
    assert copy.read_bytes() == source.read_bytes(), (
        "charts/tradingbot-operator/files/crds/ differs from crds/: "
        "cp crds/tradingbot.io_tradingbots.yaml charts/tradingbot-operator/files/crds/"
    )
    rendered = chart_crds(helm_template())["TradingBot"]
    expected = yaml.safe_load(source.read_text(encoding="utf-8"))
    assert rendered["spec"] == expected["spec"]
    assert rendered["metadata"]["name"] == expected["metadata"]["name"]
    assert rendered["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    for key, value in expected["metadata"]["labels"].items():
        assert rendered["metadata"]["labels"][key] == value


def test_crds_behind_crds_install() -> None:
    kinds = set(chart_crds(helm_template()))
    assert kinds == {"TradingBot", "KopfPeering", "ClusterKopfPeering"}
    assert chart_crds(helm_template("--set", "crds.install=false")) == {}
    kept = chart_crds(helm_template("--set", "crds.keep=false"))["TradingBot"]
    assert "helm.sh/resource-policy" not in (kept["metadata"].get("annotations") or {})
    # In templates/, not crds/: `helm upgrade` updates them.
    assert not (CHART / "crds").exists()


def test_operator_deployment_two_replicas_with_peering() -> None:
    objs = helm_template()
    deployment = one(objs, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["command"] == ["tradingbot", "operator", "run"]
    args = container["args"]
    assert "--namespace=trading" in args
    assert "--peering=tradingbot-operator" in args
    assert "--standalone" not in args
    # Distinct priorities: settings.default_priority derives one from POD_NAME (the pod's name).
    env = {e["name"]: e for e in container["env"]}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert "TRADINGBOT_OPERATOR_PRIORITY" not in env
    from tradingbot_operator.settings import OperatorConfig, default_priority

    a, b = (OperatorConfig.from_env({"POD_NAME": f"tb-tradingbot-operator-5d9c7-{s}"}).priority for s in "ab")
    assert a != b
    assert a == default_priority("tb-tradingbot-operator-5d9c7-a")
    # The peering object exists in the watched namespace (kopf never creates it).
    peering = one(objs, "KopfPeering")
    assert peering["metadata"]["name"] == "tradingbot-operator"
    assert peering["metadata"]["namespace"] == "trading"
    # Created once: a hook re-created on upgrade would come back empty and unfreeze the standby.
    assert peering["metadata"]["annotations"]["helm.sh/hook"] == "post-install"
    # Security: non-root, read-only root, /tmp writable.
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert {m["mountPath"] for m in container["volumeMounts"]} == {"/tmp"}
    # The metrics port the operator serves (settings default) is the one the Service targets.
    from tradingbot_operator.settings import OperatorConfig as Config

    assert f"--metrics-port={Config().metrics_port}" in args
    service = one(objs, "Service")
    assert service["spec"]["ports"][0]["port"] == Config().metrics_port
    assert one(objs, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1


def test_operator_cli_accepts_the_charts_flags() -> None:
    """Every flag the Deployment passes is one `tradingbot operator run` defines."""
    from unittest import mock

    from tradingbot_operator import runner

    for values in (VALUES_SETS["defaults"], CLUSTER, VALUES_SETS["skaffold-dev"]):
        args = one(helm_template(*values), "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
        with mock.patch("tradingbot_operator.reconcile.run", new=mock.AsyncMock()) as fake_run:
            assert runner.main(["run", *args]) == 0
        config = fake_run.call_args.args[0]
        assert config.peering_name == "tradingbot-operator"
        assert config.liveness_endpoint == "http://0.0.0.0:8080/healthz"
        assert config.standalone is False
    with pytest.raises(SystemExit), mock.patch("tradingbot_operator.reconcile.run", new=mock.AsyncMock()):
        runner.main(["run", "--no-such-flag"])


def test_modes_namespaced_and_clusterwide() -> None:
    namespaced = helm_template(*ALL_ON)
    assert [r["metadata"]["namespace"] for r in select(namespaced, "Role")] == ["trading", "trading-staging"]
    assert len(select(namespaced, "RoleBinding")) == 2
    assert select(namespaced, "ClusterRole") == [] and select(namespaced, "ClusterRoleBinding") == []
    assert sorted(p["metadata"]["namespace"] for p in select(namespaced, "KopfPeering")) == [
        "trading", "trading-staging"]
    args = one(namespaced, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--namespace=trading" in args and "--namespace=trading-staging" in args

    cluster = helm_template(*CLUSTER)
    assert select(cluster, "Role") == [] and select(cluster, "RoleBinding") == []
    assert len(select(cluster, "ClusterRole")) == 1 and len(select(cluster, "ClusterRoleBinding")) == 1
    assert len(select(cluster, "ClusterKopfPeering")) == 1 and select(cluster, "KopfPeering") == []
    args = one(cluster, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--all-namespaces" in args and not any(a.startswith("--namespace") for a in args)
    binding = one(cluster, "ClusterRoleBinding")
    assert binding["subjects"][0]["name"] == one(cluster, "ServiceAccount")["metadata"]["name"]


def test_dev_profile_one_replica_debug_no_pdb() -> None:
    objs = helm_template(*VALUES_SETS["skaffold-dev"])
    deployment = one(objs, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert "--verbose" in deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert select(objs, "PodDisruptionBudget") == []  # a PDB on one replica blocks drains
    assert one(objs, "TradingBot")["spec"]["mode"] == "debug"
    default = helm_template(*VALUES_SETS["skaffold"])
    assert one(default, "TradingBot")["spec"]["mode"] == "shadow"


def test_example_tradingbot_is_optional_and_valid() -> None:
    assert select(helm_template(), "TradingBot") == []
    objs = helm_template("--set", "example.enabled=true")
    bot = one(objs, "TradingBot")
    assert bot["metadata"]["namespace"] == "trading"
    assert bot["metadata"]["annotations"]["helm.sh/hook"] == "post-install"
    validate_custom(bot, chart_crds(objs))
    # The operator accepts it: the same check it runs before applying anything.
    from tradingbot_operator.builders import check_spec, desired_state
    from tradingbot_operator.builders.checks import parse_or_problems

    model, problems = parse_or_problems(bot)
    assert model is not None, problems
    assert check_spec(model) == []
    assert any(m["kind"] == "Deployment" for m in desired_state(bot))
    # A spec the CRD refuses is caught by the same validation.
    bad = yaml.safe_load(yaml.safe_dump(bot))
    bad["spec"]["mode"] = "yolo"
    crd = chart_crds(objs)["TradingBot"]
    from tests.chart.helpers import crd_schema

    assert any("mode" in e for e in schema_errors(bad, crd_schema(crd, "v1alpha1")))


def test_notes_tell_the_next_command() -> None:
    out = run([tool("helm"), "install", "tb", str(CHART), "--namespace", "trading", "--dry-run=client"]).stdout
    notes = out.split("NOTES:", 1)[1]
    assert "kubectl -n trading rollout status deployment/tb-tradingbot-operator" in notes
    assert "kubectl -n trading get tb" in notes
    out = run([tool("helm"), "install", "tb", str(CHART), "--namespace", "trading", "--dry-run=client",
               "--set", "example.enabled=true"]).stdout
    assert "kubectl -n trading get tb demo -w" in out.split("NOTES:", 1)[1]


def test_service_monitors_labels_and_targets() -> None:
    objs = helm_template(*CLUSTER)
    monitors = {m["metadata"]["name"]: m for m in select(objs, "ServiceMonitor")}
    assert set(monitors) == {"tb-tradingbot-operator", "tb-tradingbot-operator-agents"}
    for monitor in monitors.values():
        assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    agents = monitors["tb-tradingbot-operator-agents"]
    assert agents["spec"]["namespaceSelector"] == {"any": True}
    from tradingbot_operator.builders.common import HTTP_PORT_NAME, MANAGED_BY

    assert agents["spec"]["endpoints"][0]["port"] == HTTP_PORT_NAME
    assert agents["spec"]["selector"]["matchLabels"]["app.kubernetes.io/managed-by"] == MANAGED_BY
    operator = monitors["tb-tradingbot-operator"]
    service = one(objs, "Service")
    assert operator["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]
    for key, value in operator["spec"]["selector"]["matchLabels"].items():
        assert service["metadata"]["labels"][key] == value
    custom = helm_template("--set", "monitoring.serviceMonitor.enabled=true",
                           "--set", "monitoring.serviceMonitor.labels.release=prom-a")
    assert {m["metadata"]["labels"]["release"] for m in select(custom, "ServiceMonitor")} == {"prom-a"}
    assert select(helm_template(), "ServiceMonitor") == [] and select(helm_template(), "PrometheusRule") == []


def test_agent_container_names_match_the_operator() -> None:
    """The restart alert and the agents' ServiceMonitor select by the Deployment suffixes."""
    values = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    assert values["monitoring"]["prometheusRule"]["agentContainers"] == [k.deployment_suffix for k in AgentKind]


def test_every_alert_has_a_runbook_section() -> None:
    rule = one(helm_template(*ALL_ON), "PrometheusRule")
    readme = (CHART / "README.md").read_text(encoding="utf-8")
    anchors = {re.sub(r"[^a-z0-9 -]", "", h.strip().lower()).replace(" ", "-")
               for h in re.findall(r"^#+ (.+)$", readme, flags=re.M)}
    alerts = [r for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r]
    required = {"TradingBotAgentDown", "TradingBotAgentRestartingOften", "TradingBotCacheHitRateLow",
                "TradingBotExchangeCircuitOpen", "TradingBotVaROverLimit", "TradingBotOperatorReconcileErrors"}
    assert required <= {a["alert"] for a in alerts}
    for alert in alerts:
        url = alert["annotations"]["runbook_url"]
        assert url.endswith("README.md#" + alert["alert"].lower()), url
        assert alert["alert"].lower() in anchors, f"no README section for {alert['alert']}"
        assert f"| {alert['alert']} |" in readme, f"{alert['alert']} missing from the alert table"
        assert alert["labels"]["severity"] in {"warning", "critical"}
    assert helm_template_text(*ALL_ON).count("runbook_url") == len(alerts)


def _operator_env(objs: list[dict[str, Any]], *, pod: str, namespace: str) -> dict[str, str]:
    """The environment the operator's container sees, fieldRefs resolved as the kubelet would."""
    fields = {"metadata.name": pod, "metadata.namespace": namespace}
    out: dict[str, str] = {}
    for item in one(objs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["env"]:
        if "value" in item:
            out[item["name"]] = item["value"]
        else:
            out[item["name"]] = fields[item["valueFrom"]["fieldRef"]["fieldPath"]]
    return out


def test_agents_http_ingress_open_to_prometheus_only_when_scraped() -> None:
    """The bots' NetworkPolicy admits the agents' /metrics from the operator's namespace only,
    unless the agents' ServiceMonitor is on (Prometheus scrapes from elsewhere)."""
    from tradingbot_operator.builders import desired_state
    from tradingbot_operator.settings import OperatorConfig

    bot = yaml.safe_load((ROOT / "examples" / "tradingbot.yaml").read_text(encoding="utf-8"))

    def http_peers(objs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        config = OperatorConfig.from_env(_operator_env(objs, pod="op-1", namespace="tradingbot-system"))
        (policy,) = [m for m in desired_state(bot, operator_namespace=config.operator_namespace)
                     if m["kind"] == "NetworkPolicy"]
        return next(rule["from"] for rule in policy["spec"]["ingress"] if "ports" in rule)

    narrowed = http_peers(helm_template())
    assert narrowed == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "tradingbot-system"}}}]
    assert http_peers(helm_template(*ALL_ON)) == [{"namespaceSelector": {}}]
    assert http_peers(helm_template("--set", "operator.narrowAgentHttpIngress=false")) == [{"namespaceSelector": {}}]
