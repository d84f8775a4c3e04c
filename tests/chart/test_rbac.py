"""The chart's RBAC equals what the operator calls: not a verb less (it would fail on a cluster),
not a verb more (least privilege).

What the operator's own code calls is recorded, not listed by hand: a recording client stands in
for the API server while the real reconcile (production bot: the Secret check; every child kind
created, patched and pruned) and one control-loop tick run. What kopf calls is taken from kopf's
own selectors: the resources the registry handles (list, watch, and patch for its annotations),
Events (create), the peering resource of the mode (list, watch, and patch for keep-alives), and,
cluster-wide, CRDs (list, watch).
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Iterable, Mapping
from typing import Any

import pytest
import yaml

from tests.chart.helpers import ROOT, VALUES_SETS, helm_template, select
from tradingbot_operator.apply import PLURALS, KubeClient, NotFound
from tradingbot_operator.builders import MANAGED_KINDS

Triple = tuple[str, str, str]  # (apiGroup, resource[/subresource], verb)

EXAMPLE = ROOT / "examples" / "tradingbot.yaml"
UID = "0b7c2f4e-1111-4222-8333-944455556666"


def _parse_path(path: str) -> tuple[str, str, str | None]:
    """(group, resource[/sub], name) of a REST path."""
    parts = path.strip("/").split("/")
    if parts[0] == "api":
        group, rest = "", parts[2:]
    else:
        group, rest = parts[1], parts[3:]
    if rest and rest[0] == "namespaces" and len(rest) >= 3:
        rest = rest[2:]
    resource, name = rest[0], (rest[1] if len(rest) > 1 else None)
    if len(rest) > 2:
        resource = f"{resource}/{rest[2]}"
    return group, resource, name


def _verb(method: str, name: str | None) -> str:
    return {"GET": "get" if name else "list", "POST": "create", "PATCH": "patch", "DELETE": "delete",
            "PUT": "update"}[method]


class RecordingClient(KubeClient):
    """Answers like an API server that knows the bot, its Secret, and one stale child of every kind."""

    def __init__(self, bot: Mapping[str, Any]) -> None:
        super().__init__(api=None)  # type: ignore[arg-type]
        self.bot = bot
        self.calls: list[tuple[str, str]] = []
        self.created: set[str] = set()

    async def request(self, method: str, path: str, *, body: Any = None, query: Any = None,
                      content_type: str = "application/json", timeout: float = 30.0) -> dict[str, Any]:
        self.calls.append((method, path))
        _group, resource, name = _parse_path(path)
        meta = self.bot["metadata"]
        if resource == "tradingbots" and method == "GET":
            return copy.deepcopy(dict(self.bot))
        if resource == "secrets":
            return {"data": {"api-key": "eA==", "api-secret": "eA==", "apiKey": "eA==", "apiSecret": "eA=="}}
        if method == "GET" and name is None:  # a listing: one stale child the desired state lacks
            return {"items": [{"metadata": {
                "name": f"{meta['name']}-stale", "namespace": meta["namespace"], "resourceVersion": "1",
                "ownerReferences": [{"uid": UID, "controller": True}]}}]}
        if method == "PATCH" and "apply-patch" in content_type and path not in self.created:
            raise NotFound("absent")  # exercises apply's create fallback
        if method == "POST":
            self.created.add(f"{path}/{body['metadata']['name']}")
        out = copy.deepcopy(body) if isinstance(body, dict) else {}
        out.setdefault("metadata", {})["resourceVersion"] = "2"
        return out

    def triples(self) -> set[Triple]:
        out = set()
        for method, path in self.calls:
            group, resource, name = _parse_path(path)
            out.add((group, resource, _verb(method, name)))
        return out


def _production_bot() -> dict[str, Any]:
    bot = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    bot["spec"]["mode"] = "production"
    bot["metadata"].update(uid=UID, generation=1, resourceVersion="1")
    return bot


async def _record_operator_calls() -> set[Triple]:
    from kopf._core.engines import posting

    from tradingbot_operator.reconcile import OperatorContext, control_tick, reconcile_bot
    from tradingbot_operator.settings import OperatorConfig, kopf_settings

    config = OperatorConfig(namespaces=("trading",))
    posting.settings_var.set(kopf_settings(config))
    posting.event_queue_loop_var.set(asyncio.get_running_loop())
    posting.event_queue_var.set(asyncio.Queue())
    bot = _production_bot()
    client = RecordingClient(bot)
    ctx = OperatorContext(config=config, client=client)

    async def no_status(_bot: Any) -> None:
        return None

    ctx.fetch_status = no_status

    class Log:
        def info(self, *a: Any, **k: Any) -> None: ...
        def warning(self, *a: Any, **k: Any) -> None: ...

    await reconcile_bot(ctx, bot, reason="create", logger=Log())
    bot["status"] = {"observedGeneration": 1}
    from tradingbot_operator.control import ControlState

    await control_tick(ctx, bot, ControlState(), now=0.0)
    return client.triples()


def operator_code_triples() -> set[Triple]:
    triples = asyncio.run(_record_operator_calls())
    # Sanity: the recording saw what the code is known to do, so the run was not vacuous.
    kinds = {(api.split("/")[0] if "/" in api else "", PLURALS[(api, kind)]) for api, kind in MANAGED_KINDS}
    for group, resource in kinds:
        for verb in ("list", "patch", "create", "delete"):
            assert (group, resource, verb) in triples, f"the reconcile never called {verb} {group}/{resource}"
    return triples


def _name(selector: Any) -> str:
    name = selector.plural or selector.any_name
    assert isinstance(name, str) and name
    return name


def kopf_triples(*, clusterwide: bool) -> set[Triple]:
    from kopf._cogs.structs import references
    from kopf._core.engines import peering

    from tradingbot_operator.reconcile import OperatorContext, build_registry
    from tradingbot_operator.settings import OperatorConfig, kopf_settings

    config = OperatorConfig(namespaces=() if clusterwide else ("trading",), clusterwide=clusterwide)
    registry = build_registry(OperatorContext(config=config))
    handlers = [*registry._changing.get_all_handlers(), *registry._spawning.get_all_handlers()]
    out: set[Triple] = set()
    for handler in handlers:
        sel = handler.selector
        assert sel is not None and sel.group
        out |= {(sel.group, _name(sel), verb) for verb in ("list", "watch", "patch")}
    out.add((references.EVENTS.group or "", _name(references.EVENTS), "create"))
    # The peering resources kopf looks for in this mode; the chart installs the kopf.dev ones.
    for sel in peering.guess_selectors(kopf_settings(config)):
        if sel.group == "kopf.dev":
            out |= {(sel.group, _name(sel), verb) for verb in ("list", "watch", "patch")}
    if clusterwide:
        crds = references.CRDS
        out |= {(str(crds.group), _name(crds), verb) for verb in ("list", "watch")}
    return out


def chart_triples(rules: Iterable[Mapping[str, Any]]) -> set[Triple]:
    out: set[Triple] = set()
    for rule in rules:
        assert "resourceNames" not in rule and "nonResourceURLs" not in rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    assert "*" not in (group, resource, verb), f"wildcard in {rule}"
                    out.add((group, resource, verb))
    return out


@pytest.fixture(scope="module")
def code_triples() -> set[Triple]:
    return operator_code_triples()


def _diff(chart: set[Triple], expected: set[Triple]) -> str:
    return (f"chart grants but the operator never uses: {sorted(chart - expected)}\n"
            f"operator uses but the chart does not grant: {sorted(expected - chart)}")


def test_namespaced_roles_equal_what_the_operator_calls(code_triples: set[Triple]) -> None:
    objs = helm_template(*VALUES_SETS["all-on-namespaced"])
    expected = code_triples | kopf_triples(clusterwide=False)
    roles = select(objs, "Role")
    assert len(roles) == 2
    for role in roles:
        chart = chart_triples(role["rules"])
        assert chart == expected, _diff(chart, expected)


def test_clusterwide_role_equals_what_the_operator_calls(code_triples: set[Triple]) -> None:
    objs = helm_template(*VALUES_SETS["all-on-clusterwide"])
    expected = code_triples | kopf_triples(clusterwide=True)
    (role,) = select(objs, "ClusterRole")
    chart = chart_triples(role["rules"])
    assert chart == expected, _diff(chart, expected)


def test_the_comparison_catches_a_missing_and_an_extra_verb(code_triples: set[Triple]) -> None:
    objs = helm_template(*VALUES_SETS["all-on-namespaced"])
    expected = code_triples | kopf_triples(clusterwide=False)
    rules = copy.deepcopy(select(objs, "Role")[0]["rules"])
    secrets = next(r for r in rules if r["resources"] == ["secrets"])
    secrets["verbs"] = ["get", "list"]  # one more
    assert chart_triples(rules) != expected
    secrets["verbs"] = []  # one less
    assert chart_triples(rules) != expected


def test_recorded_calls_cover_secrets_status_and_the_bot(code_triples: set[Triple]) -> None:
    assert ("", "secrets", "get") in code_triples
    assert ("tradingbot.io", "tradingbots/status", "patch") in code_triples
    assert ("tradingbot.io", "tradingbots", "get") in code_triples
    # Never a write to a Secret, never a wildcard-worthy spread.
    assert not {t for t in code_triples if t[1] == "secrets" and t[2] != "get"}


def test_rbac_off_renders_no_roles() -> None:
    objs = helm_template("--set", "rbac.create=false")
    for kind in ("Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"):
        assert select(objs, kind) == []
