"""The TradingBot CRD, generated from :mod:`tradingbot_operator.spec`.

Why generated: a hand-written CRD drifts from the models the operator validates with, and the
drift shows up as fields the API server prunes silently. ``tradingbot crd`` prints this; a test
fails when ``crds/tradingbot.io_tradingbots.yaml`` differs from it.

pydantic's JSON Schema (``$ref``/``$defs``, ``anyOf`` with ``null``, numeric ``exclusiveMinimum``,
``additionalProperties: false``) is not a Kubernetes *structural* schema, so :func:`structural`
rewrites it: refs inlined, optionals made plain (an absent key is "not set"), exclusive bounds
turned into OpenAPI 3.0 booleans, ``int | str`` into ``x-kubernetes-int-or-string``. Unknown
fields are pruned by the API server (and rejected by ``kubectl``'s strict field validation), so
no ``additionalProperties: false`` and never ``x-kubernetes-preserve-unknown-fields``.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from tradingbot_operator import spec as s

CRD_NAME = f"{s.PLURAL}.{s.GROUP}"
CRD_PATH = Path(__file__).resolve().parent.parent / "crds" / f"{s.GROUP}_{s.PLURAL}.yaml"

_DROP_KEYS = frozenset({"title", "$defs"})


def _clean_description(text: str) -> str:
    """One paragraph per blank line, reST markup removed: this text is what ``kubectl explain``
    prints."""
    paragraphs = [" ".join(p.split()) for p in text.strip().split("\n\n")]
    return "\n".join(p for p in paragraphs if p).replace("``", "`")


def structural(schema: dict[str, Any], defs: dict[str, Any] | None = None) -> dict[str, Any]:
    """Rewrite one pydantic JSON Schema node (and its children) into a structural OpenAPI v3 schema."""
    defs = schema.get("$defs", {}) if defs is None else defs
    node = dict(schema)
    if "$ref" in node:
        target = defs[node.pop("$ref").rsplit("/", 1)[-1]]
        # The field's own description and default win over the referenced model's.
        node = {**target, **node}
    if "anyOf" in node:
        branches = [b for b in node.pop("anyOf") if b.get("type") != "null"]
        if node.get("default", 0) is None:
            del node["default"]
        types = sorted(b.get("type", "") for b in branches)
        if types == ["integer", "string"]:
            # controller-gen's shape for resource.Quantity: the pattern applies to strings only.
            node["x-kubernetes-int-or-string"] = True
            node["anyOf"] = [{"type": "integer"}, {"type": "string"}]
            pattern = next((b["pattern"] for b in branches if "pattern" in b), None)
            if pattern:
                node["pattern"] = pattern
        elif len(branches) == 1:
            branch = structural(branches[0], defs)
            node = {**branch, **{k: v for k, v in node.items() if k in ("description", "default")}}
        else:
            raise ValueError(f"cannot express anyOf {branches!r} as a structural schema")
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP_KEYS:
            continue
        if key == "additionalProperties":
            if isinstance(value, dict):
                out[key] = structural(value, defs)
            continue  # `false`: forbidden in apiextensions/v1; the server prunes unknown fields
        if key == "default" and value is None:
            continue
        if key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            out["minimum" if key == "exclusiveMinimum" else "maximum"] = value
            out[key] = True
            continue
        if key == "properties":
            out[key] = {name: structural(sub, defs) for name, sub in value.items()}
        elif key == "items":
            out[key] = structural(value, defs)
        elif key == "anyOf":
            out[key] = copy.deepcopy(value)
        elif key == "description":
            out[key] = _clean_description(value)
        else:
            out[key] = copy.deepcopy(value)
    if "properties" in out and "type" not in out:
        out["type"] = "object"
    return _ordered(out)


_FIRST = ("type", "description", "default", "enum", "format", "pattern")
_LAST = ("anyOf", "required", "x-kubernetes-validations", "items", "additionalProperties", "properties")


def _ordered(node: dict[str, Any]) -> dict[str, Any]:
    """Type and description first, children last: the checked-in YAML reads top-down."""
    rest = sorted(k for k in node if k not in _FIRST and k not in _LAST)
    return {k: node[k] for k in (*_FIRST, *rest, *_LAST) if k in node}


def _printer_columns() -> list[dict[str, Any]]:
    return [
        {"name": "Mode", "type": "string", "jsonPath": ".spec.mode", "description": "Trading mode."},
        {
            "name": "Ready",
            "type": "string",
            "jsonPath": ".status.ready",
            "description": "Ready agent kinds over enabled agent kinds.",
        },
        {
            "name": "Health",
            "type": "string",
            "jsonPath": ".status.health",
            "description": "Worst agent health.",
        },
        {
            "name": "Phase",
            "type": "string",
            "jsonPath": ".status.phase",
            "priority": 1,
            "description": "Pending, Running, Degraded or Paused.",
        },
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]


def openapi_schema() -> dict[str, Any]:
    """The ``openAPIV3Schema`` of the TradingBot object (what the API server validates against)."""
    spec_schema = structural(s.TradingBotSpec.model_json_schema(by_alias=True, mode="validation"))
    status_schema = structural(s.TradingBotStatus.model_json_schema(by_alias=True, mode="validation"))
    spec_schema["description"] = _clean_description(s.TradingBotSpec.__doc__ or "")
    status_schema["description"] = "Observed state, written by the operator."
    return {
        "type": "object",
        "description": (
            "A multi-agent crypto trading bot. The operator runs one Deployment per enabled agent kind "
            "and keeps them healthy and scaled."
        ),
        "properties": {
            "apiVersion": {"type": "string", "description": "APIVersion of this object."},
            "kind": {"type": "string", "description": "Kind of this object."},
            "metadata": {"type": "object"},
            "spec": {**spec_schema, "default": {}},
            "status": status_schema,
        },
    }


def render_crd() -> dict[str, Any]:
    """The CustomResourceDefinition (apiextensions.k8s.io/v1) as a dict."""
    trading_worker = f".spec.agents.{s.AgentKind.TRADING_WORKER.crd_key}.replicas"
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": CRD_NAME,
            "labels": {"app.kubernetes.io/part-of": "tradingbot"},
        },
        "spec": {
            "group": s.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": s.KIND,
                "listKind": f"{s.KIND}List",
                "plural": s.PLURAL,
                "singular": s.SINGULAR,
                "shortNames": list(s.SHORT_NAMES),
                "categories": ["all", "tradingbot"],
            },
            "versions": [
                {
                    "name": s.VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": openapi_schema()},
                    "subresources": {
                        "status": {},
                        "scale": {
                            "specReplicasPath": trading_worker,
                            "statusReplicasPath": ".status.tradingWorkerReplicas",
                            "labelSelectorPath": ".status.tradingWorkerSelector",
                        },
                    },
                    "additionalPrinterColumns": _printer_columns(),
                }
            ],
        },
    }


def crd_yaml() -> str:
    """The CRD as YAML, stable byte for byte (keys in insertion order), as checked in."""
    header = (
        "# Generated by `tradingbot crd` from tradingbot_operator.spec. Do not edit by hand:\n"
        "# change the models and regenerate (a test fails when this file drifts).\n"
    )
    return header + yaml.safe_dump(render_crd(), sort_keys=False, width=100, allow_unicode=True)
