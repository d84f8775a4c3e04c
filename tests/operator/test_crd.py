"""The CRD: generated, checked in, structural, and rejecting bad TradingBots with readable words."""

from __future__ import annotations

import copy
import io
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
from pydantic import ValidationError

from tests.operator.helpers import validate_builtin
from tradingbot_agents.kinds import AgentKind
from tradingbot_operator.cli import EXIT_DRIFT, EXIT_OK, crd_main
from tradingbot_operator.crd import CRD_PATH, crd_yaml, render_crd
from tradingbot_operator.spec import AutoscalingSpec, TradingBotSpec, TradingBotStatus


def _nodes(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        yield path, node
        for name, sub in node.get("properties", {}).items():
            yield from _nodes(sub, f"{path}.{name}")
        if isinstance(node.get("items"), dict):
            yield from _nodes(node["items"], f"{path}[]")
        if isinstance(node.get("additionalProperties"), dict):
            yield from _nodes(node["additionalProperties"], f"{path}{{}}")


def _at(schema: dict[str, Any], json_path: str) -> dict[str, Any]:
    node = schema
    for part in json_path.strip(".").split("."):
        node = node["properties"][part]
    return node


def test_checked_in_crd_matches_the_generator() -> None:
    assert CRD_PATH.read_text(encoding="utf-8") == crd_yaml(), (
        "crds/tradingbot.io_tradingbots.yaml is stale: run `tradingbot crd --write`"
    )


def test_crd_check_command_detects_drift(tmp_path) -> None:
    stale = tmp_path / "crd.yaml"
    stale.write_text(crd_yaml().replace("shadow", "shad0w", 1))
    err = io.StringIO()
    assert crd_main(["--check", "--path", str(stale)], stderr=err) == EXIT_DRIFT
    assert "stale" in err.getvalue()
    assert crd_main(["--check"], stderr=io.StringIO()) == EXIT_OK


def test_crd_is_a_valid_customresourcedefinition(crd: dict[str, Any]) -> None:
    validate_builtin(crd)
    names = crd["spec"]["names"]
    assert (crd["spec"]["group"], names["kind"], names["plural"], names["shortNames"]) == (
        "tradingbot.io", "TradingBot", "tradingbots", ["tb"]
    )
    assert crd["spec"]["scope"] == "Namespaced"
    assert crd["spec"]["versions"][0]["name"] == "v1alpha1"


def test_schema_is_structural(crd_schema: dict[str, Any]) -> None:
    """What apiextensions/v1 demands: a type everywhere, no refs, no anyOf/nullable tricks,
    no additionalProperties: false, and no preserve-unknown-fields escape hatch."""
    for path, node in _nodes(crd_schema):
        assert "$ref" not in node and "$defs" not in node, path
        assert "oneOf" not in node and "allOf" not in node, path
        if "anyOf" in node:  # only the int-or-string shape is allowed
            assert node["anyOf"] == [{"type": "integer"}, {"type": "string"}], path
            assert node.get("x-kubernetes-int-or-string") is True, path
        assert "x-kubernetes-preserve-unknown-fields" not in node, path
        assert node.get("additionalProperties", True) is not False, path
        assert "type" in node or node.get("x-kubernetes-int-or-string") is True, path
        if node.get("type") == "object" and path not in ("", ".metadata"):
            assert "properties" in node or "additionalProperties" in node, path


def test_every_spec_field_is_explained(crd_schema: dict[str, Any]) -> None:
    """`kubectl explain tradingbot.spec.agents...` prints these descriptions."""
    missing = [
        path
        for path, node in _nodes(crd_schema["properties"]["spec"], ".spec")
        if not node.get("description") and not path.endswith(("[]", "{}"))
    ]
    assert missing == []
    agents = _at(crd_schema, "spec.agents")
    assert set(agents["properties"]) == {kind.crd_key for kind in AgentKind}


def test_schema_carries_enums_ranges_and_defaults(crd_schema: dict[str, Any]) -> None:
    assert _at(crd_schema, "spec.mode")["enum"] == ["shadow", "production", "debug"]
    assert _at(crd_schema, "spec.mode")["default"] == "shadow"
    worker = _at(crd_schema, "spec.agents.tradingWorker")
    assert worker["properties"]["replicas"]["minimum"] == 0
    autoscaling = worker["properties"]["autoscaling"]
    assert autoscaling["properties"]["mode"]["enum"] == ["off", "hpa", "operator"]
    assert autoscaling["properties"]["targetCPU"]["maximum"] == 100
    assert autoscaling["x-kubernetes-validations"][0]["rule"] == "self.min <= self.max"
    assert _at(crd_schema, "spec.exchange.credentials.secretRef")["required"] == ["name"]


def _apply_defaults(schema: dict[str, Any], value: Any) -> Any:
    """The API server's structural defaulting: fill missing properties that have a default, then
    recurse (a defaulted `{}` gets its own properties' defaults)."""
    if not isinstance(value, dict) or "properties" not in schema:
        return value
    out = dict(value)
    for name, sub in schema["properties"].items():
        if name not in out and "default" in sub:
            out[name] = copy.deepcopy(sub["default"])
        if name in out:
            out[name] = _apply_defaults(sub, out[name])
    return out


def test_schema_defaults_equal_model_defaults(crd_schema: dict[str, Any]) -> None:
    """The API server fills the same defaults the models do: drift shows up here."""
    defaulted = _apply_defaults(crd_schema["properties"]["spec"], {})
    expected = TradingBotSpec().model_dump(by_alias=True, mode="json", exclude_none=True)
    assert _strip_empty(defaulted) == _strip_empty(expected)


def _strip_empty(value: Any) -> Any:
    if isinstance(value, dict):
        stripped = {k: _strip_empty(v) for k, v in value.items()}
        return {k: v for k, v in stripped.items() if v not in ({}, [])}
    return value


def test_scale_subresource_points_at_real_fields(crd: dict[str, Any], crd_schema: dict[str, Any]) -> None:
    version = crd["spec"]["versions"][0]
    assert version["subresources"]["status"] == {}
    scale = version["subresources"]["scale"]
    assert scale["specReplicasPath"] == f".spec.agents.{AgentKind.TRADING_WORKER.crd_key}.replicas"
    assert _at(crd_schema, scale["specReplicasPath"])["type"] == "integer"
    assert _at(crd_schema, scale["statusReplicasPath"])["type"] == "integer"
    assert _at(crd_schema, scale["labelSelectorPath"])["type"] == "string"


def test_printer_columns(crd: dict[str, Any], crd_schema: dict[str, Any]) -> None:
    columns = {c["name"]: c for c in crd["spec"]["versions"][0]["additionalPrinterColumns"]}
    assert {"Mode", "Ready", "Health", "Age"} <= set(columns)
    for name in ("Mode", "Ready", "Health"):
        assert "type" in _at(crd_schema, columns[name]["jsonPath"]), name
    assert columns["Age"]["jsonPath"] == ".metadata.creationTimestamp"


def test_example_is_valid(crd_validator: jsonschema.Draft4Validator, example: dict[str, Any]) -> None:
    assert list(crd_validator.iter_errors(example)) == []
    assert all(example["spec"]["agents"].get(kind.crd_key, {}).get("enabled", True) for kind in AgentKind)
    assert set(example["spec"]["agents"]) == {kind.crd_key for kind in AgentKind}


def _errors(validator: jsonschema.Draft4Validator, bot: dict[str, Any]) -> list[str]:
    return [
        f"{'.'.join(str(p) for p in e.absolute_path)}: {e.message}"
        for e in sorted(validator.iter_errors(bot), key=lambda e: list(e.absolute_path))
    ]


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        pytest.param(
            lambda s: s["agents"]["tradingWorker"].update(replicas=-1),
            "spec.agents.tradingWorker.replicas: -1 is less than the minimum of 0",
            id="negative-replicas",
        ),
        pytest.param(
            lambda s: s.update(mode="yolo"),
            "spec.mode: 'yolo' is not one of ['shadow', 'production', 'debug']",
            id="unknown-mode",
        ),
        pytest.param(
            lambda s: s["exchange"]["credentials"]["secretRef"].pop("name"),
            "spec.exchange.credentials.secretRef: 'name' is a required property",
            id="missing-secret-name",
        ),
        pytest.param(
            lambda s: s["agents"]["tradingWorker"].update(env=[{"value": "1"}]),
            "spec.agents.tradingWorker.env.0: 'name' is a required property",
            id="env-without-name",
        ),
        pytest.param(
            lambda s: s["agents"]["data"]["autoscaling"].update(mode="keda"),
            "spec.agents.data.autoscaling.mode: 'keda' is not one of ['off', 'hpa', 'operator']",
            id="unknown-autoscaling-mode",
        ),
        pytest.param(
            lambda s: s["risk"].update(maxPortfolioVar=0),
            "spec.risk.maxPortfolioVar: 0 is less than or equal to the minimum of 0",
            id="zero-var-limit",
        ),
        pytest.param(
            lambda s: s["agents"].update(tradingworker={"replicas": 2}),
            "spec.agents: Additional properties are not allowed ('tradingworker' was unexpected)",
            id="misspelt-agent",
        ),
        pytest.param(
            lambda s: s["agents"]["rl"].update(resources={"requests": {"cpu": "lots"}}),
            "spec.agents.rl.resources.requests.cpu: 'lots' does not match",
            id="bad-quantity",
        ),
    ],
)
def test_invalid_bots_are_rejected_with_readable_messages(
    crd_validator: jsonschema.Draft4Validator, example: dict[str, Any], edit: Any, expected: str
) -> None:
    bot = copy.deepcopy(example)
    edit(bot["spec"])
    errors = _errors(crd_validator, bot)
    assert any(e.startswith(expected) for e in errors), errors


def test_min_greater_than_max_is_rejected_in_both_places(crd_schema: dict[str, Any]) -> None:
    """JSON Schema cannot compare two fields: the CEL rule does it on the server, the model here,
    with the same message."""
    rule = _at(crd_schema, "spec.agents.rl.autoscaling")["x-kubernetes-validations"][0]
    with pytest.raises(ValidationError) as info:
        AutoscalingSpec.model_validate({"mode": "hpa", "min": 5, "max": 2})
    assert rule["message"] in str(info.value)
    assert rule["message"] == AutoscalingSpec.MIN_LE_MAX_MESSAGE


def test_render_crd_is_deterministic() -> None:
    assert render_crd() == render_crd()
    assert crd_yaml() == crd_yaml()


def test_status_the_operator_writes_fits_the_schema(
    crd_validator: jsonschema.Draft4Validator, example: dict[str, Any]
) -> None:
    """A status dumped from the models passes the CRD (else the API server prunes it silently)."""
    status = TradingBotStatus.model_validate(
        {
            "observedGeneration": 3,
            "phase": "Running",
            "ready": "7/7",
            "health": "healthy",
            "tradingWorkerReplicas": 2,
            "tradingWorkerSelector": "app.kubernetes.io/instance=demo",
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "AllAgentsReady",
                    "message": "7 of 7 agent kinds ready",
                    "lastTransitionTime": "2026-01-01T00:00:00Z",
                    "observedGeneration": 3,
                }
            ],
            "agents": {
                kind.crd_key: {"desiredReplicas": 2, "readyReplicas": 2, "health": "healthy", "load": 0.4}
                for kind in AgentKind
            },
        }
    )
    bot = {**example, "status": status.model_dump(by_alias=True, mode="json", exclude_none=True)}
    assert _errors(crd_validator, bot) == []
    assert bot["status"]["agents"]["tradingWorker"]["readyReplicas"] == 2
    bad = copy.deepcopy(bot)
    bad["status"]["conditions"][0]["type"] = "Happy"
    assert any("'Happy' is not one of ['Ready', 'Progressing', 'Degraded']" in e for e in _errors(crd_validator, bad))
