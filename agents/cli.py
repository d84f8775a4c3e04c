"""The ``tradingbot`` command.

``tradingbot agent run KIND`` runs one agent; ``tradingbot status`` prints the system status;
``tradingbot demo`` runs the whole system locally. Other packages add commands through the
``tradingbot.commands`` entry-point group (the operator adds ``render``, ``crd`` and ``operator``),
loaded only when named, so ``tradingbot agent run`` never imports kopf.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points

from tradingbot_agents.config import Config, ConfigError, load_config
from tradingbot_agents.kinds import AgentKind

EXIT_USAGE = 2
PLUGIN_GROUP = "tradingbot.commands"


def _plugins() -> dict[str, object]:
    return {ep.name: ep for ep in entry_points(group=PLUGIN_GROUP)}


def _load(args: argparse.Namespace) -> Config:
    config = load_config(args.config)
    runtime = config.runtime
    if getattr(args, "debug", False):
        runtime.debug = True
    if getattr(args, "log_dir", None):
        runtime.log_dir = args.log_dir
    if getattr(args, "http_port", None) is not None:
        runtime.http_port = args.http_port
    if getattr(args, "nats_url", None):
        config.nats.url = args.nats_url
    return config


def _exit_now(_signum: int, _frame: object) -> None:
    raise SystemExit(0)


def _cmd_agent_run(args: argparse.Namespace) -> int:
    # A stop that arrives while the agent is still importing and starting has nothing to drain:
    # exit 0 at once (the default action would be death by SIGTERM, exit -15). The runtime installs
    # its graceful handler as soon as its event loop runs. (`python -m tradingbot_agents` installs
    # the same handler even earlier; this covers the `tradingbot` console script.)
    signal.signal(signal.SIGTERM, _exit_now)
    from tradingbot_agents.catalog import NotImplementedKind, agent_class
    from tradingbot_agents.logs import configure_logging
    from tradingbot_agents.runtime import run_agent

    kind = AgentKind.from_cli(args.kind)
    config = _load(args)
    if args.mode:
        config.mode = args.mode
    try:
        cls = agent_class(kind)
    except NotImplementedKind as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    configure_logging(kind, config.runtime)
    return run_agent(lambda: cls(config))


def _cmd_status(args: argparse.Namespace) -> int:
    from tradingbot_agents.statusclient import fetch_status
    from tradingbot_agents.statusview import status_table

    config = _load(args)
    try:
        status = asyncio.run(fetch_status(config, timeout=args.timeout))
    except Exception as exc:
        print(f"error: no status from the coordinator of bot {config.bot.namespace}/{config.bot.name} "
              f"at {config.nats.url}: {exc}", file=sys.stderr)
        return 1
    print(status.model_dump_json(indent=2) if args.json else status_table(status))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from tradingbot_agents.demo import run_demo

    return run_demo(config_path=args.config, minutes=args.minutes, log_dir=args.log_dir,
                    status_every=args.status_every, speed=args.speed)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tradingbot", description="Run and inspect tradingbot agents.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", "-c", help="config.yaml (default: $TRADINGBOT_CONFIG or built-in defaults)")

    agent = sub.add_parser("agent", help="run an agent")
    agent_sub = agent.add_subparsers(dest="agent_command", metavar="ACTION", required=True)
    run = agent_sub.add_parser("run", help="run one agent in the foreground")
    run.add_argument("kind", help="one of: " + ", ".join(k.cli for k in AgentKind))
    common(run)
    run.add_argument("--mode", choices=["shadow", "production", "debug"])
    run.add_argument("--debug", action="store_true", help="verbose logs")
    run.add_argument("--log-dir", help="also write logs/<agent>.log files here")
    run.add_argument("--http-port", type=int, help="port of /healthz /readyz /metrics (0 = any free)")
    run.set_defaults(func=_cmd_agent_run)

    status = sub.add_parser("status", help="print the system status table")
    common(status)
    status.add_argument("--nats-url", help="overrides nats.url / NATS_URL")
    status.add_argument("--json", action="store_true", help="print the raw status JSON")
    status.add_argument("--timeout", type=float, default=3.0)
    status.set_defaults(func=_cmd_status)

    demo = sub.add_parser("demo", help="run every agent locally in shadow mode and print a summary")
    common(demo)
    demo.add_argument("--minutes", type=float, default=2.0)
    demo.add_argument("--log-dir", default="logs")
    demo.add_argument("--status-every", type=float, default=10.0, help="seconds between status tables")
    demo.add_argument("--speed", type=float, default=2.0, help="simulator speed: candles (hours) per second")
    demo.set_defaults(func=_cmd_demo)

    for name in _plugins():
        sub.add_parser(name, help=f"({name}: see tradingbot {name} --help)", add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    plugins = _plugins()
    if argv and argv[0] in plugins:
        command = plugins[argv[0]].load()  # type: ignore[attr-defined]
        return int(command(argv[1:]))
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args))
    except ConfigError as exc:
        for line in exc.lines:
            print(f"config error: {line}", file=sys.stderr)
        return EXIT_USAGE
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
