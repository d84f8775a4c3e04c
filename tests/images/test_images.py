"""The container images, proved without a Docker engine: hadolint, the Dockerfiles' structure, and
their install steps run for real (wheel from the sources the Dockerfile copies, clean virtualenv,
entrypoints started with --help)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chart.helpers import ROOT, run, tool

IMAGES = ROOT / "images"
DOCKERFILES = {"operator": IMAGES / "operator.Dockerfile", "agents": IMAGES / "agents.Dockerfile"}
COMPILERS = re.compile(r"\b(gcc|g\+\+|clang|build-essential|make|cc)\b")


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    buffer = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        buffer += line[:-1] + " " if line.endswith("\\") else line
        if not line.endswith("\\"):
            keyword, _, rest = buffer.partition(" ")
            out.append((keyword.upper(), rest.strip()))
            buffer = ""
    return out


def stages(path: Path) -> list[list[tuple[str, str]]]:
    out: list[list[tuple[str, str]]] = []
    for keyword, rest in instructions(path):
        if keyword == "FROM":
            out.append([])
        if out:
            out[-1].append((keyword, rest))
    return out


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_hadolint_clean(name: str) -> None:
    proc = run([tool("hadolint"), "--failure-threshold", "info", str(DOCKERFILES[name])], check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_hadolint_can_fail(tmp_path: Path) -> None:
    bad = tmp_path / "bad.Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y gcc\nRUN cd /src\n",
                   encoding="utf-8")
    proc = run([tool("hadolint"), str(bad)], check=False)
    assert proc.returncode != 0
    assert "DL3007" in proc.stdout  # `latest` tag


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_dockerfile_structure(name: str) -> None:
    path = DOCKERFILES[name]
    args = dict(rest.split("=", 1) for kw, rest in instructions(path) if kw == "ARG" and "=" in rest)
    base = args["PYTHON_IMAGE"]
    # Pinned slim base: full patch version, slim, Debian release named.
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", base), base
    parts = stages(path)
    assert len(parts) >= 2, "multi-stage build expected"
    builder, final = parts[0], parts[-1]
    assert builder[0][1].endswith("AS builder")
    builder_runs = " ".join(rest for kw, rest in builder if kw == "RUN")
    assert "pip wheel" in builder_runs and "--no-deps" in builder_runs
    assert "-e " not in builder_runs and "--editable" not in builder_runs
    final_text = "\n".join(f"{kw} {rest}" for kw, rest in final)
    # The final stage installs nothing with a compiler and copies only the built virtualenv.
    for kw, rest in final:
        if kw == "RUN":
            assert not COMPILERS.search(rest), f"compiler in the final stage: {rest}"
            assert "apt-get install" not in rest and "pip install" not in rest
    copies = [rest for kw, rest in final if kw == "COPY"]
    assert copies == ["--from=builder /opt/venv /opt/venv"]
    users = [rest for kw, rest in final if kw == "USER"]
    assert users and users[-1].split(":")[0] not in {"0", "root"}
    assert users[-1].split(":")[0].isdigit(), "numeric USER, so runAsNonRoot can verify it"
    assert "PYTHONDONTWRITEBYTECODE=1" in final_text and "HOME=/tmp" in final_text
    entrypoint = [rest for kw, rest in final if kw == "ENTRYPOINT"]
    assert entrypoint == ['["tradingbot"]']


def test_user_matches_the_pods_security_context() -> None:
    from tradingbot_operator.builders.common import pod_security_context

    uid = pod_security_context()["runAsUser"]
    for path in DOCKERFILES.values():
        users = [rest for kw, rest in instructions(path) if kw == "USER"]
        assert users[-1] == f"{uid}:{uid}"


def test_dockerignore_keeps_only_what_the_builder_copies() -> None:
    lines = [ln.strip() for ln in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
             if ln.strip() and not ln.startswith("#")]
    assert lines[0] == "*"
    allowed = {ln[1:].rstrip("/") for ln in lines if ln.startswith("!")}
    for path in DOCKERFILES.values():
        sources = _copied_sources(path)
        assert {s.rstrip("/") for s in sources} <= allowed, (sources, allowed)


def _copied_sources(path: Path) -> list[str]:
    out: list[str] = []
    for kw, rest in stages(path)[0]:
        if kw == "COPY":
            words = shlex.split(rest)
            out += [w for w in words[:-1] if not w.startswith("--")]
    return out


@pytest.fixture(scope="module")
def installed_venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The builder stage, step for step: copy what it copies, `pip wheel --no-deps`, a clean
    virtualenv, `pip install` of the wheel (dependencies from the index, never the project)."""
    work = tmp_path_factory.mktemp("image")
    src = work / "src"
    src.mkdir()
    copied = _copied_sources(DOCKERFILES["operator"])
    assert copied == _copied_sources(DOCKERFILES["agents"])
    for item in copied:
        origin = ROOT / item
        if origin.is_dir():
            shutil.copytree(origin, src / item, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(origin, src / item)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"

    def sh(*args: str | Path, cwd: Path = work) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=600)
        assert proc.returncode == 0, f"{args} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        return proc

    sh(sys.executable, "-P", "-m", "pip", "wheel", "--no-deps", "--wheel-dir", work / "wheels", ".", cwd=src)
    (wheel,) = (work / "wheels").glob("tradingbot-*.whl")
    sh(sys.executable, "-P", "-m", "venv", work / "venv")
    sh(work / "venv" / "bin" / "python", "-P", "-m", "pip", "install", "--quiet", wheel)
    yield work / "venv"


def _run_in(venv: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["PATH"] = f"{venv / 'bin'}:{env.get('PATH', '')}"
    # cwd outside the repository: nothing can be imported from the sources by accident.
    return subprocess.run(list(args), cwd=venv, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.timeout(900)
def test_wheel_installs_and_the_entrypoints_start(installed_venv: Path) -> None:
    tradingbot = str(installed_venv / "bin" / "tradingbot")
    top = _run_in(installed_venv, tradingbot, "--help")
    assert top.returncode == 0, top.stderr
    assert "agent" in top.stdout
    agent = _run_in(installed_venv, tradingbot, "agent", "run", "--help")
    assert agent.returncode == 0, agent.stderr
    operator = _run_in(installed_venv, tradingbot, "operator", "run", "--help")
    assert operator.returncode == 0, (
        "`tradingbot operator run --help` failed (the operator image's command): "
        f"{operator.stdout}{operator.stderr}")
    for flag in ("--namespace", "--all-namespaces", "--peering", "--metrics-port", "--liveness", "--verbose"):
        assert flag in operator.stdout


@pytest.mark.timeout(900)
def test_wheel_contains_every_package(installed_venv: Path) -> None:
    """Every folder with an __init__.py under agents/ and operator/ imports from the installed
    wheel (a subpackage missing from pyproject's package list fails here)."""
    names = []
    for folder, top in (("agents", "tradingbot_agents"), ("operator", "tradingbot_operator")):
        for init in sorted((ROOT / folder).rglob("__init__.py")):
            rel = init.parent.relative_to(ROOT / folder).parts
            names.append(".".join((top, *rel)))
    code = ("import importlib, sys\n"
            f"names = {names!r}\n"
            "bad = []\n"
            "for n in names:\n"
            "    try:\n"
            "        m = importlib.import_module(n)\n"
            "        assert 'site-packages' in m.__file__, m.__file__\n"
            "    except Exception as e:\n"
            "        bad.append(f'{n}: {e!r}')\n"
            "print('\\n'.join(bad)); sys.exit(1 if bad else 0)\n")
    proc = _run_in(installed_venv, str(installed_venv / "bin" / "python"), "-P", "-c", code)
    assert proc.returncode == 0, f"not importable from the wheel:\n{proc.stdout}{proc.stderr}"
    assert len(names) >= 10
