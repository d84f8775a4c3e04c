"""`tradingbot render` and `tradingbot crd`, offline, with clear errors and exit codes."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.operator.helpers import EXAMPLE, ROOT, validate_builtin
from tradingbot_agents.kinds import AgentKind
from tradingbot_operator.cli import EXIT_OK, EXIT_USAGE, crd_main, render_main
from tradingbot_operator.crd import crd_yaml


def _render(argv: list[str], stdin: str = "") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = render_main(argv, stdout=out, stderr=err, stdin=io.StringIO(stdin))
    return code, out.getvalue(), err.getvalue()


def test_render_example_prints_valid_manifests() -> None:
    code, out, err = _render(["-f", str(EXAMPLE)])
    assert code == EXIT_OK, err
    docs = list(yaml.safe_load_all(out))
    kinds = [d["kind"] for d in docs]
    assert kinds.count("Deployment") == len(AgentKind)
    assert {"ServiceAccount", "ConfigMap", "Service", "HorizontalPodAutoscaler", "NetworkPolicy"} <= set(kinds)
    for doc in docs:
        validate_builtin(doc)
    configmap = next(d for d in docs if d["kind"] == "ConfigMap")
    assert "\n" in configmap["data"]["config.yaml"]
    assert "config.yaml: |" in out  # readable block, not an escaped one-liner


def test_render_from_stdin_with_namespace(tmp_path: Path) -> None:
    bot: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    del bot["metadata"]["namespace"]
    code, out, err = _render(["-f", "-", "-n", "team-a"], stdin=yaml.safe_dump(bot))
    assert code == EXIT_OK, err
    assert {d["metadata"]["namespace"] for d in yaml.safe_load_all(out)} == {"team-a"}


def test_render_refuses_unsafe_spec_and_prints_nothing() -> None:
    bot: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    bot["spec"]["mode"] = "production"
    del bot["spec"]["exchange"]["credentials"]
    code, out, err = _render(["-f", "-"], stdin=yaml.safe_dump(bot))
    assert code == EXIT_USAGE
    assert out == ""
    assert "spec.exchange.credentials.secretRef is required in production mode" in err


def test_render_reports_schema_errors_by_path() -> None:
    bot: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    bot["spec"]["agents"]["tradingWorker"]["replicas"] = -2
    bot["spec"]["mode"] = "yolo"
    code, out, err = _render(["-f", "-"], stdin=yaml.safe_dump(bot))
    assert code == EXIT_USAGE and out == ""
    assert "spec.agents.tradingWorker.replicas: Input should be greater than or equal to 0" in err
    assert "spec.mode: Input should be 'shadow', 'production' or 'debug'" in err


def test_render_bad_inputs_exit_2(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("apiVersion: tradingbot.io/v1alpha1\nkind: TradingBot\n  metadata: {name: x}\n")
    code, _, err = _render(["-f", str(broken)])
    assert code == EXIT_USAGE and "invalid YAML" in err and "broken.yaml:3:" in err

    code, _, err = _render(["-f", str(tmp_path / "missing.yaml")])
    assert code == EXIT_USAGE and "cannot read" in err

    code, _, err = _render(["-f", "-"], stdin="apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    assert code == EXIT_USAGE and "expected apiVersion tradingbot.io/v1alpha1 and kind TradingBot" in err

    code, _, err = _render([])
    assert code == EXIT_USAGE and "-f/--filename" in err


def test_render_prints_warnings_to_stderr() -> None:
    bot: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    bot["spec"]["agents"]["data"]["replicas"] = 2  # hpa mode in the example
    code, out, err = _render(["-f", "-"], stdin=yaml.safe_dump(bot))
    assert code == EXIT_OK and out
    assert "warning:" in err and "spec.agents.data.replicas=2 has no effect" in err


def test_crd_main_prints_the_crd() -> None:
    out = io.StringIO()
    assert crd_main([], stdout=out) == EXIT_OK
    assert out.getvalue() == crd_yaml()
    assert yaml.safe_load(out.getvalue())["kind"] == "CustomResourceDefinition"


def test_cli_module_does_not_import_kopf() -> None:
    """The console script's dispatcher imports this lazily; `tradingbot agent run` must not pay for kopf."""
    code = (
        "import sys, tradingbot_operator.cli as c; "
        "c.render_main(['-f', sys.argv[1]], stdout=open('/dev/null', 'w')); "
        "assert 'kopf' not in sys.modules, 'kopf imported'"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(EXAMPLE)], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
