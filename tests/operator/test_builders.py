"""desired_state: every manifest it can produce is valid, owned, labelled, and rolls only what changed."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.operator.helpers import K8S_VERSION, validate_builtin
from tradingbot_agents.config import Config, Secrets
from tradingbot_agents.kinds import AgentKind
from tradingbot_operator.builders import (
    CONFIG_HASH_ANNOTATION,
    MANAGED_KINDS,
    InvalidSpecError,
    UnsafeSpecError,
    agent_config_hashes,
    agent_name,
    agent_selector,
    check_spec,
    desired_state,
    render_config,
    sections_read_by,
    spec_warnings,
)
from tradingbot_operator.builders.config import EXTRA_SECTIONS, config_document
from tradingbot_operator.spec import parse_bot

MakeBot = Callable[..., dict[str, Any]]
LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/component",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/managed-by",
)


def _by(objs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objs if o["kind"] == kind}


def _deployment(objs: list[dict[str, Any]], kind: AgentKind) -> dict[str, Any]:
    return _by(objs, "Deployment")[f"demo-{kind.deployment_suffix}"]


def _all_modes(mode: str) -> Callable[[dict[str, Any]], None]:
    def edit(spec: dict[str, Any]) -> None:
        for kind in AgentKind:
            agent = spec["agents"].setdefault(kind.crd_key, {})
            agent.pop("replicas", None)
            agent["autoscaling"] = {"mode": mode, "min": 1, "max": 4}
            agent.setdefault("resources", {}).setdefault("requests", {})["cpu"] = "100m"

    return edit


def _external_servers(spec: dict[str, Any]) -> None:
    spec["nats"] = {"url": "nats://nats.infra.svc:4222"}
    spec["redis"] = {"url": "redis://redis.infra.svc:6379/1"}


def _production(spec: dict[str, Any]) -> None:
    spec["mode"] = "production"
    spec["exchange"]["credentials"] = {"secretRef": {"name": "binance-live", "apiKeyKey": "k"}}


def _debug_multi(spec: dict[str, Any]) -> None:
    spec["mode"] = "debug"
    spec["pairs"]["static"] = ["BTCUSDT", "ETHUSDT"]
    spec["agents"]["pairSelector"]["enabled"] = False
    spec["agents"]["tradingWorker"] = {"replicas": 4, "autoscaling": {"mode": "off"}}
    spec["sentiment"]["x"] = {"enabled": True, "weight": 0.2, "secretRef": {"name": "x"}}


VARIANTS: dict[str, Callable[[dict[str, Any]], None] | None] = {
    "example": None,
    "all-off": _all_modes("off"),
    "all-hpa": _all_modes("hpa"),
    "all-operator": _all_modes("operator"),
    "external-nats-redis": _external_servers,
    "production-with-credentials": _production,
    "debug-static-pairs-4-workers": _debug_multi,
}


@pytest.fixture(params=list(VARIANTS))
def variant(request: pytest.FixtureRequest, make_bot: MakeBot) -> dict[str, Any]:
    return make_bot(VARIANTS[request.param])


def test_every_manifest_passes_kubernetes_schemas(variant: dict[str, Any]) -> None:
    objs = desired_state(variant)
    assert len(objs) >= 10
    for obj in objs:
        validate_builtin(obj)


def test_the_schema_check_can_fail(make_bot: MakeBot) -> None:
    """Guard against a validator that passes everything: a broken Deployment and an unknown kind fail."""
    deployment = copy.deepcopy(_deployment(desired_state(make_bot()), AgentKind.DATA))
    deployment["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "http"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)
    deployment = copy.deepcopy(_deployment(desired_state(make_bot()), AgentKind.DATA))
    deployment["spec"]["replica"] = 2  # misspelt: only strict mode catches it
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)
    with pytest.raises(pytest.fail.Exception, match="no schema for built-in kind"):
        validate_builtin({**deployment, "kind": "Deploymnet"})


def test_owner_references_and_labels_on_every_object(variant: dict[str, Any]) -> None:
    uid = variant["metadata"]["uid"]
    for obj in desired_state(variant):
        meta = obj["metadata"]
        assert meta["namespace"] == "trading", obj["kind"]
        assert meta["ownerReferences"] == [
            {
                "apiVersion": "tradingbot.io/v1alpha1",
                "kind": "TradingBot",
                "name": "demo",
                "uid": uid,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ], (obj["kind"], meta["name"])
        assert all(meta["labels"].get(key) for key in LABELS), (obj["kind"], meta["name"])
        assert meta["labels"]["app.kubernetes.io/instance"] == "demo"
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "tradingbot-operator"


def test_selectors_match_pod_labels(variant: dict[str, Any]) -> None:
    objs = desired_state(variant)
    pods = {
        o["metadata"]["name"]: o["spec"]["template"]["metadata"]["labels"]
        for o in objs
        if o["kind"] in ("Deployment", "StatefulSet")
    }
    for name, labels in pods.items():
        owner = next(o for o in objs if o["metadata"]["name"] == name and o["kind"] in ("Deployment", "StatefulSet"))
        assert owner["spec"]["selector"]["matchLabels"].items() <= labels.items()
    for svc in _by(objs, "Service").values():
        assert svc["spec"]["selector"].items() <= pods[svc["metadata"]["name"]].items()


def test_without_uid_render_has_no_owner_references(example: dict[str, Any]) -> None:
    """Offline render of a file never applied: there is no owner to point at."""
    assert all("ownerReferences" not in o["metadata"] for o in desired_state(example))


def test_one_deployment_per_enabled_agent(make_bot: MakeBot) -> None:
    objs = desired_state(make_bot())
    assert set(_by(objs, "Deployment")) == {f"demo-{k.deployment_suffix}" for k in AgentKind}

    def disable(spec: dict[str, Any]) -> None:
        spec["agents"]["rl"]["enabled"] = False
        spec["agents"]["sentiment"]["enabled"] = False

    names = {o["metadata"]["name"] for o in desired_state(make_bot(disable))}
    assert "demo-rl" not in names and "demo-sentiment" not in names
    assert "demo-risk" in names


def test_agent_pod_shape(make_bot: MakeBot) -> None:
    for kind in AgentKind:
        deployment = _deployment(desired_state(make_bot()), kind)
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["command"] == [
            "tradingbot", "agent", "run", kind.cli, "--config", "/etc/tradingbot/config.yaml"
        ]
        assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
        assert any(v["name"] == "tmp" and "emptyDir" in v for v in pod["volumes"])
        assert container["resources"]["requests"]["cpu"]
        assert len(deployment["spec"]["template"]["metadata"]["annotations"][CONFIG_HASH_ANNOTATION]) == 64


def test_secrets_only_by_secret_key_ref(make_bot: MakeBot) -> None:
    objs = desired_state(make_bot(_production))
    secret_names = {field.upper() for field in Secrets.model_fields}
    seen: dict[str, set[str]] = {}
    for deployment in _by(objs, "Deployment").values():
        for env in deployment["spec"]["template"]["spec"]["containers"][0]["env"]:
            if env["name"] in secret_names:
                assert "value" not in env, env
                assert set(env["valueFrom"]) == {"secretKeyRef"}, env
                seen.setdefault(env["name"], set()).add(deployment["metadata"]["name"])
    assert seen["BINANCE_API_KEY"] == {"demo-trading-worker"}  # only the agent that places orders
    assert seen["REDDIT_CLIENT_ID"] == {"demo-sentiment"}
    assert seen["TELEGRAM_BOT_TOKEN"] == {"demo-coordinator", "demo-risk"}
    worker = _deployment(objs, AgentKind.TRADING_WORKER)["spec"]["template"]["spec"]["containers"][0]
    key = next(e for e in worker["env"] if e["name"] == "BINANCE_API_KEY")
    assert key["valueFrom"]["secretKeyRef"] == {"name": "binance-live", "key": "k"}
    assert {"name": "TRADINGBOT_EXTRA_EXAMPLE", "value": "1"} in worker["env"]
    configmap = next(iter(_by(objs, "ConfigMap").values()))
    assert "binance-live" not in configmap["data"]["config.yaml"]


@pytest.mark.parametrize("mode", ["hpa", "operator"])
def test_autoscaled_deployments_leave_replicas_to_their_owner(make_bot: MakeBot, mode: str) -> None:
    objs = desired_state(make_bot(_all_modes(mode)))
    hpas = _by(objs, "HorizontalPodAutoscaler")
    for kind in AgentKind:
        deployment = _deployment(objs, kind)
        assert "replicas" not in deployment["spec"], kind
        name = deployment["metadata"]["name"]
        if mode == "hpa":
            hpa = hpas[name]
            assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
            assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 4)
    assert len(hpas) == (len(AgentKind) if mode == "hpa" else 0)


def test_off_mode_writes_replicas(make_bot: MakeBot) -> None:
    objs = desired_state(make_bot(_debug_multi))
    assert _deployment(objs, AgentKind.TRADING_WORKER)["spec"]["replicas"] == 4
    assert _deployment(objs, AgentKind.RL)["spec"]["replicas"] == 1
    assert _deployment(objs, AgentKind.COORDINATOR)["spec"]["replicas"] == 1  # omitted → 1


def test_pdbs_only_for_agents_that_can_have_several_replicas(make_bot: MakeBot) -> None:
    pdbs = _by(desired_state(make_bot()), "PodDisruptionBudget")
    # example: data hpa max 3, trading worker operator max 6, the rest single replicas
    assert set(pdbs) == {"demo-data", "demo-trading-worker"}
    for pdb in pdbs.values():
        assert pdb["spec"]["maxUnavailable"] == 1 and "minAvailable" not in pdb["spec"]


def test_nats_and_redis_run_by_the_operator_only_without_urls(make_bot: MakeBot) -> None:
    own = desired_state(make_bot())
    sts = _by(own, "StatefulSet")
    assert set(sts) == {"demo-nats", "demo-redis"}
    nats = sts["demo-nats"]["spec"]
    assert nats["template"]["spec"]["containers"][0]["image"] == "nats:2.10.22-alpine"
    assert "-js" in nats["template"]["spec"]["containers"][0]["args"]
    assert nats["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "1Gi"
    assert sts["demo-redis"]["spec"]["template"]["spec"]["containers"][0]["image"] == "redis:7.2.5-alpine"
    config = yaml.safe_load(next(iter(_by(own, "ConfigMap").values()))["data"]["config.yaml"])
    assert config["nats"]["url"] == "nats://demo-nats.trading.svc:4222"
    assert config["redis"]["url"] == "redis://demo-redis.trading.svc:6379/0"

    external = desired_state(make_bot(_external_servers))
    assert _by(external, "StatefulSet") == {}
    assert not {"demo-nats", "demo-redis"} & set(_by(external, "Service"))
    config = yaml.safe_load(next(iter(_by(external, "ConfigMap").values()))["data"]["config.yaml"])
    assert config["nats"]["url"] == "nats://nats.infra.svc:4222"
    assert config["redis"]["url"] == "redis://redis.infra.svc:6379/1"


def test_configmap_is_a_valid_agents_config(variant: dict[str, Any]) -> None:
    (configmap,) = _by(desired_state(variant), "ConfigMap").values()
    config = Config.model_validate(yaml.safe_load(configmap["data"]["config.yaml"]))
    assert (config.bot.namespace, config.bot.name) == ("trading", "demo")
    assert config.runtime.log_format == "json"
    assert config.runtime.http_port == 8080
    assert config.mode.value == variant["spec"].get("mode", "shadow")


def test_network_policy(make_bot: MakeBot) -> None:
    (policy,) = _by(desired_state(make_bot(), operator_namespace="tb-system"), "NetworkPolicy").values()
    assert policy["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/instance"] == "demo"
    http = policy["spec"]["ingress"][1]
    assert http["ports"] == [{"port": 8080, "protocol": "TCP"}]
    assert http["from"][0]["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "tb-system"}


# --- config hash: a config change rolls exactly the agents that read it -------------------------


def _hashes(bot: dict[str, Any]) -> dict[str, str]:
    return {
        name: d["spec"]["template"]["metadata"]["annotations"][CONFIG_HASH_ANNOTATION]
        for name, d in _by(desired_state(bot), "Deployment").items()
    }


def _moved(before: dict[str, Any], after: dict[str, Any]) -> set[str]:
    old, new = _hashes(before), _hashes(after)
    return {name for name in old if old[name] != new[name]}


def _changed_deployments(before: dict[str, Any], after: dict[str, Any]) -> set[str]:
    old, new = _by(desired_state(before), "Deployment"), _by(desired_state(after), "Deployment")
    return {name for name in old if old[name] != new[name]}


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        pytest.param(lambda s: s["risk"].update(maxPortfolioVar=0.02), {"demo-risk"}, id="risk-limit"),
        pytest.param(
            lambda s: s["sentiment"]["news"].update(weight=0.1), {"demo-sentiment"}, id="sentiment-weight"
        ),
        pytest.param(
            lambda s: s.setdefault("health", {}).update(healthCheckIntervalSeconds=10),
            {"demo-coordinator"},
            id="coordinator-health-check",
        ),
        pytest.param(
            lambda s: s["cache"].update(defaultTtlSeconds=60),
            {f"demo-{k.deployment_suffix}" for k in AgentKind if "cache" in EXTRA_SECTIONS[k]},
            id="cache-ttl",
        ),
        pytest.param(
            lambda s: s.setdefault("health", {}).update(heartbeatIntervalSeconds=1),
            {f"demo-{k.deployment_suffix}" for k in AgentKind},
            id="heartbeat-is-common",
        ),
        pytest.param(
            _external_servers, {f"demo-{k.deployment_suffix}" for k in AgentKind}, id="nats-url-is-common"
        ),
    ],
)
def test_config_change_moves_only_affected_hashes(
    make_bot: MakeBot, edit: Callable[[dict[str, Any]], None], expected: set[str]
) -> None:
    before, after = make_bot(), make_bot(edit)
    assert _moved(before, after) == expected
    # and nothing else in the unaffected Deployments changed either: they are not rolled
    assert _changed_deployments(before, after) == expected


def test_replicas_and_resources_of_one_agent_move_no_hash(make_bot: MakeBot) -> None:
    def edit(spec: dict[str, Any]) -> None:
        spec["agents"]["rl"]["replicas"] = 3
        spec["agents"]["tradingWorker"]["resources"]["limits"]["memory"] = "1Gi"

    before, after = make_bot(), make_bot(edit)
    assert _moved(before, after) == set()
    assert _changed_deployments(before, after) == {"demo-rl", "demo-trading-worker"}


def test_agent_config_hashes_match_the_pod_annotations(make_bot: MakeBot) -> None:
    bot = make_bot()
    hashes = agent_config_hashes(bot)
    assert {f"demo-{k.deployment_suffix}": h for k, h in hashes.items()} == _hashes(bot)


# --- specs that must not run, and warnings ---------------------------------------------------


def test_production_without_credentials_is_refused(make_bot: MakeBot) -> None:
    def edit(spec: dict[str, Any]) -> None:
        spec["mode"] = "production"
        spec["exchange"].pop("credentials")

    bot = make_bot(edit)
    problems = check_spec(bot)
    assert len(problems) == 1
    assert "spec.exchange.credentials.secretRef is required in production mode" in problems[0]
    with pytest.raises(UnsafeSpecError) as info:
        desired_state(bot)
    assert info.value.problems == problems
    assert check_spec(make_bot(_production)) == []


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        pytest.param(
            lambda s: (s["agents"]["data"]["resources"]["requests"].pop("cpu")),
            "spec.agents.data.autoscaling.mode is hpa but spec.agents.data.resources.requests.cpu is not set",
            id="hpa-without-cpu-request",
        ),
        pytest.param(
            lambda s: s["agents"]["pairSelector"].update(enabled=False),
            "no pairs to trade",
            id="no-pairs",
        ),
        pytest.param(
            lambda s: s["agents"]["tradingWorker"].update(replicas=-1),
            "spec.agents.tradingWorker.replicas: Input should be greater than or equal to 0",
            id="schema-error-as-problem",
        ),
        pytest.param(
            lambda s: s["agents"]["rl"].update(autoscaling={"min": 4, "max": 2}),
            "autoscaling.min must be less than or equal to autoscaling.max",
            id="min-greater-than-max",
        ),
    ],
)
def test_check_spec_problems(make_bot: MakeBot, edit: Any, expected: str) -> None:
    bot = make_bot(edit)
    problems = check_spec(bot)
    assert any(expected in p for p in problems), problems
    with pytest.raises(InvalidSpecError):
        desired_state(bot)


def test_long_names_are_refused(make_bot: MakeBot) -> None:
    bot = make_bot()
    bot["metadata"]["name"] = "a" * 49
    assert any("metadata.name: at most 48 characters" in p for p in check_spec(bot))
    bot["metadata"]["name"] = "a" * 48
    assert check_spec(bot) == []


def test_warning_when_replicas_cannot_take_effect(make_bot: MakeBot) -> None:
    def edit(spec: dict[str, Any]) -> None:
        spec["agents"]["tradingWorker"]["replicas"] = 5  # operator mode in the example

    assert spec_warnings(make_bot()) == []
    (warning,) = spec_warnings(make_bot(edit))
    assert "spec.agents.tradingWorker.replicas=5 has no effect" in warning
    assert "operator's load control loop owns the replica count" in warning


def test_desired_state_is_pure(make_bot: MakeBot) -> None:
    bot = make_bot()
    snapshot = copy.deepcopy(bot)
    first = desired_state(bot)
    assert desired_state(bot) == first
    assert bot == snapshot


def test_render_throughput(make_bot: MakeBot) -> None:
    """Issue 3's pure render goal: at least 5,000 objects/s on one core."""
    bot = make_bot()
    desired_state(bot)
    objects, started = 0, time.perf_counter()
    while time.perf_counter() - started < 0.5:
        objects += len(desired_state(bot))
    rate = objects / (time.perf_counter() - started)
    assert rate >= 5_000, f"{rate:.0f} objects/s"


def test_only_managed_kinds_are_produced(variant: dict[str, Any]) -> None:
    """The reconcile prunes by MANAGED_KINDS: a kind produced but not listed would never be pruned."""
    produced = {(o["apiVersion"], o["kind"]) for o in desired_state(variant)}
    assert produced <= set(MANAGED_KINDS)


def test_every_config_section_is_read_by_some_agent(make_bot: MakeBot) -> None:
    """A section no agent is listed as reading would change without rolling anyone."""
    document = config_document(render_config(parse_bot(make_bot())))
    read = {section for kind in AgentKind for section in sections_read_by(kind)}
    assert set(document) <= read, set(document) - read


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        pytest.param(
            [{"name": "BINANCE_API_SECRET", "value": "hunter2"}],
            "spec.agents.tradingWorker.env[0]: BINANCE_API_SECRET is set by the operator",
            id="clash-with-operator-env",
        ),
        pytest.param(
            [{"name": "X_BEARER_TOKEN", "value": "hunter2"}],
            "spec.agents.tradingWorker.env[0]: X_BEARER_TOKEN is a credential: use valueFrom.secretKeyRef",
            id="literal-credential",
        ),
        pytest.param(
            [{"name": "A", "value": "1"}, {"name": "A", "value": "2"}],
            "spec.agents.tradingWorker.env[1]: A is listed twice",
            id="duplicate",
        ),
    ],
)
def test_extra_env_problems(make_bot: MakeBot, env: list[dict[str, Any]], expected: str) -> None:
    bot = make_bot(lambda s: s["agents"]["tradingWorker"].update(env=env))
    problems = check_spec(bot)
    assert any(p.startswith(expected) for p in problems), problems


def test_credential_in_extra_env_by_secret_ref_is_fine(make_bot: MakeBot) -> None:
    env = [{"name": "X_BEARER_TOKEN", "valueFrom": {"secretKeyRef": {"name": "x", "key": "t"}}}]
    bot = make_bot(lambda s: s["agents"]["tradingWorker"].update(env=env))
    assert check_spec(bot) == []


def test_two_bots_in_one_namespace_do_not_overlap(make_bot: MakeBot) -> None:
    first = desired_state(make_bot())
    other = make_bot()
    other["metadata"].update(name="other", uid="6f1c0b2e-1111-4a4a-9b9b-000000000002")
    second = desired_state(other)
    assert not {(o["kind"], o["metadata"]["name"]) for o in first} & {
        (o["kind"], o["metadata"]["name"]) for o in second
    }
    selectors = [
        o["spec"]["selector"].get("matchLabels", o["spec"]["selector"])
        for o in first
        if "selector" in o.get("spec", {})
    ]
    selectors.append(next(iter(_by(first, "NetworkPolicy").values()))["spec"]["podSelector"]["matchLabels"])
    assert len(selectors) > len(AgentKind)
    assert all(sel["app.kubernetes.io/instance"] == "demo" for sel in selectors)
    config = yaml.safe_load(next(iter(_by(second, "ConfigMap").values()))["data"]["config.yaml"])
    assert config["bot"] == {"namespace": "trading", "name": "other"}


def test_agent_selector_matches_the_deployment(make_bot: MakeBot) -> None:
    bot = make_bot()
    deployment = _deployment(desired_state(bot), AgentKind.TRADING_WORKER)
    pairs = dict(item.split("=") for item in agent_selector(bot, AgentKind.TRADING_WORKER).split(","))
    assert pairs == deployment["spec"]["selector"]["matchLabels"]
    assert agent_name(bot, AgentKind.TRADING_WORKER) == deployment["metadata"]["name"]
