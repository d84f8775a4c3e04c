"""Helpers for the chart tests: the tools `.ci/tools.sh` installs, `helm template`, validation.

A missing tool is a failure with the command that installs it, never a skip: `make test` runs
`.ci/tools.sh` first, so a missing tool means the set-up is broken.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "tradingbot-operator"
TOOLS_BIN = ROOT / ".tools" / "bin"
VENV_BIN = ROOT / ".venv" / "bin"
HERE = Path(__file__).resolve().parent
MONITORING_CRDS = HERE / "crds"
K8S_VERSION = "1.30"

#: Kinds that are not built in: validated against their CRDs here, never by kubernetes-validate.
CUSTOM_KINDS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
    ("tradingbot.io/v1alpha1", "TradingBot"),
    ("kopf.dev/v1", "KopfPeering"),
    ("kopf.dev/v1", "ClusterKopfPeering"),
}

#: Values sets the CI renders: defaults, every flag on in both modes, skaffold's two profiles.
VALUES_SETS: dict[str, list[str]] = {
    "defaults": [],
    "all-on-clusterwide": ["-f", str(CHART / "ci" / "monitoring-clusterwide-values.yaml")],
    "all-on-namespaced": ["-f", str(CHART / "ci" / "monitoring-namespaced-values.yaml")],
    "skaffold": ["-f", str(CHART / "ci" / "skaffold-values.yaml")],
    "skaffold-dev": [
        "-f", str(CHART / "ci" / "skaffold-values.yaml"),
        "-f", str(CHART / "ci" / "skaffold-dev-values.yaml"),
    ],
}


def tool(name: str) -> str:
    """Absolute path of a CI tool: .tools/bin, the project venv, then PATH."""
    for folder in (TOOLS_BIN, VENV_BIN):
        candidate = folder / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: run .ci/tools.sh (make test runs it)")
    return found


def run(args: Sequence[str], *, check: bool = True, cwd: Path | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(args), capture_output=True, text=True, cwd=cwd, timeout=timeout)
    if check and proc.returncode != 0:
        pytest.fail(f"{' '.join(args)} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


@cache
def helm_template_text(*args: str, release: str = "tb", namespace: str = "trading") -> str:
    proc = run([tool("helm"), "template", release, str(CHART), "--namespace", namespace, *args])
    return proc.stdout


def helm_template(*args: str, release: str = "tb", namespace: str = "trading") -> list[dict[str, Any]]:
    text = helm_template_text(*args, release=release, namespace=namespace)
    return [doc for doc in yaml.safe_load_all(text) if doc]


def select(objs: Iterable[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objs if o.get("kind") == kind]


def one(objs: Iterable[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = select(objs, kind)
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def validate_builtin(obj: dict[str, Any]) -> None:
    """Strict validation of a built-in kind; "Couldn't find schema" is a failure, not a pass."""
    try:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    except kubernetes_validate.SchemaNotFoundError as exc:
        pytest.fail(f"no schema for built-in kind {obj.get('apiVersion')}/{obj.get('kind')}: {exc.message}")
    except kubernetes_validate.ValidationError as exc:
        where = ".".join(str(p) for p in exc.absolute_path)
        pytest.fail(f"{obj['kind']}/{obj['metadata']['name']}: {where}: {exc.message}")


def crd_schema(crd: dict[str, Any], version: str) -> dict[str, Any]:
    for v in crd["spec"]["versions"]:
        if v["name"] == version:
            return v["schema"]["openAPIV3Schema"]
    raise AssertionError(f"{crd['metadata']['name']} has no version {version}")


@cache
def _monitoring_crds() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(MONITORING_CRDS.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text(encoding="utf-8"))
        out[crd["spec"]["names"]["kind"]] = crd
    return out


def schema_errors(obj: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """OpenAPI v3.0 (CRD) schemas read as JSON Schema draft 4 (boolean exclusiveMinimum etc.)."""
    validator = jsonschema.Draft4Validator(schema)
    return sorted(
        f"{'.'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}" for e in validator.iter_errors(obj)
    )


def validate_custom(obj: dict[str, Any], crds: dict[str, dict[str, Any]]) -> None:
    """A custom resource against its CRD's schema (the Prometheus Operator's, or the chart's)."""
    kind = obj["kind"]
    crd = crds.get(kind) or _monitoring_crds().get(kind)
    assert crd is not None, f"no CRD to validate {kind} against"
    group, _, version = obj["apiVersion"].rpartition("/")
    assert crd["spec"]["group"] == group, f"{kind}: group {group} is not the CRD's {crd['spec']['group']}"
    errors = schema_errors(obj, crd_schema(crd, version))
    assert not errors, f"{kind}/{obj['metadata']['name']}:\n" + "\n".join(errors)


def monitoring_crds() -> dict[str, dict[str, Any]]:
    return _monitoring_crds()
