"""Every package folder is listed in pyproject, so a wheel (the images install one) is complete:
the editable install used in development would hide a missing one."""

from __future__ import annotations

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ROOTS = {"agents": "tradingbot_agents", "operator": "tradingbot_operator"}


def test_every_package_folder_is_in_the_wheel() -> None:
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = set()
    for folder, name in ROOTS.items():
        for init in (REPO / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(REPO / folder)
            found.add(".".join([name, *rel.parts]))
    assert found == listed, f"missing: {sorted(found - listed)}; stale: {sorted(listed - found)}"
