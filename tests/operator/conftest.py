"""Fixtures for the operator's pure half: TradingBot factories and schema validators.

Two checks stand in for a cluster here, and both are made able to fail:
- built-in kinds go through ``kubernetes-validate`` strict, and "Couldn't find schema" (which the
  CLI treats as a pass) is a failure;
- TradingBots go through the generated CRD's ``openAPIV3Schema`` with ``jsonschema`` (Draft 4:
  OpenAPI 3.0's ``exclusiveMinimum: true`` is Draft 4 syntax), with ``additionalProperties: false``
  added to every object that lists properties, which is what ``kubectl``'s strict field validation
  does with unknown fields (the API server would otherwise prune them silently).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import jsonschema
import pytest
import yaml

from tests.operator.helpers import EXAMPLE
from tradingbot_operator.crd import render_crd


def _strict(node: Any) -> Any:
    if isinstance(node, dict):
        out = {k: _strict(v) for k, v in node.items()}
        if "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(node, list):
        return [_strict(v) for v in node]
    return node


@pytest.fixture(scope="session")
def crd() -> dict[str, Any]:
    return render_crd()


@pytest.fixture(scope="session")
def crd_schema(crd: dict[str, Any]) -> dict[str, Any]:
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


@pytest.fixture(scope="session")
def crd_validator(crd_schema: dict[str, Any]) -> jsonschema.Draft4Validator:
    schema = _strict(crd_schema)
    schema["properties"]["metadata"] = {"type": "object"}
    jsonschema.Draft4Validator.check_schema(schema)
    return jsonschema.Draft4Validator(schema)


@pytest.fixture
def example() -> dict[str, Any]:
    return yaml.safe_load(EXAMPLE.read_text())


def _with_uid(bot: dict[str, Any]) -> dict[str, Any]:
    bot = copy.deepcopy(bot)
    bot["metadata"].setdefault("uid", "6f1c0b2e-1111-4a4a-9b9b-000000000001")
    return bot


@pytest.fixture
def make_bot(example: dict[str, Any]) -> Callable[..., dict[str, Any]]:
    """The example as applied (with a uid), after ``edit(spec)`` if given."""

    def make(edit: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        bot = _with_uid(example)
        if edit is not None:
            edit(bot["spec"])
        return bot

    return make
