"""``tradingbot operator run``: run the operator in the foreground.

The console script's dispatcher imports this module only for ``tradingbot operator``, so agents
never load kopf. Configuration comes from ``TRADINGBOT_OPERATOR_*`` variables (see
:class:`~tradingbot_operator.settings.OperatorConfig`) and these flags, which win.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import sys

EXIT_USAGE = 2


def main(argv: list[str]) -> int:
    from tradingbot_operator.settings import OperatorConfig

    parser = argparse.ArgumentParser(prog="tradingbot operator", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    run = sub.add_parser("run", help="run the operator (watches TradingBots, applies their children)")
    run.add_argument("-n", "--namespace", action="append", default=[], help="watch this namespace (repeatable)")
    run.add_argument("-A", "--all-namespaces", action="store_true", help="watch every namespace")
    run.add_argument("--priority", type=int, help="peering priority (distinct per replica)")
    run.add_argument("--peering", help="peering object name")
    run.add_argument("--standalone", action="store_true", help="no peering (one replica only)")
    run.add_argument("--metrics-port", type=int, help="port of /metrics (0 disables)")
    run.add_argument("--liveness", help="kopf liveness endpoint, e.g. http://0.0.0.0:8080/healthz")
    run.add_argument("--kubeconfig", help="kubeconfig file (default: in-cluster, then $KUBECONFIG)")
    run.add_argument("--verbose", "-v", action="store_true")
    args = parser.parse_args(argv)
    if args.action != "run":
        parser.print_help()
        return EXIT_USAGE
    config = OperatorConfig.from_env()
    changes: dict[str, object] = {}
    if args.namespace:
        changes.update(namespaces=tuple(args.namespace), clusterwide=False)
    if args.all_namespaces:
        changes.update(namespaces=(), clusterwide=True)
    if args.priority is not None:
        changes["priority"] = args.priority
    if args.peering:
        changes["peering_name"] = args.peering
    if args.standalone:
        changes["standalone"] = True
    if args.metrics_port is not None:
        changes["metrics_port"] = args.metrics_port
    if args.kubeconfig:
        changes["kubeconfig"] = args.kubeconfig
    if args.liveness:
        changes["liveness_endpoint"] = args.liveness
    config = dataclasses.replace(config, **changes)  # type: ignore[arg-type]
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from tradingbot_operator.reconcile import run as run_operator

    asyncio.run(run_operator(config))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
