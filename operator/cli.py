"""``tradingbot render`` and ``tradingbot crd``: the operator's offline commands.

Why here and kopf-free: rendering is a pure function of a file, like ``helm template``; it must run
on a laptop without a cluster and without importing kopf (the console script's dispatcher imports
this module lazily). Exit codes: 0 fine, 1 ``crd --check`` found drift, 2 bad input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, TextIO

import yaml

EXIT_OK = 0
EXIT_DRIFT = 1
EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse exits on its own; return the code instead, so ``main`` functions stay testable."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise _UsageError(f"{self.prog}: {message}")


class _UsageError(Exception):
    pass


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings (the ConfigMap's ``config.yaml``) as ``|`` blocks, readable in review."""


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _str_representer)


def _read_documents(source: str, stdin: TextIO) -> list[Any]:
    try:
        text = stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise _UsageError(f"{source}: cannot read: {exc.strerror}") from None
    try:
        docs = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        raise _UsageError(f"{where}: invalid YAML: {getattr(exc, 'problem', None) or exc}") from None
    if not docs:
        raise _UsageError(f"{source}: no TradingBot found (the file is empty)")
    return docs


def render_main(
    argv: list[str], *, stdout: TextIO | None = None, stderr: TextIO | None = None, stdin: TextIO | None = None
) -> int:
    """``tradingbot render -f bot.yaml``: print the manifests the operator would apply, as one
    multi-document YAML stream. Problems and warnings go to stderr; any problem exits 2 and prints
    no manifests at all (a partial render applied by hand would be worse than none)."""
    from tradingbot_operator.builders import InvalidSpecError, desired_state, spec_warnings

    out, err = stdout or sys.stdout, stderr or sys.stderr
    parser = _Parser(prog="tradingbot render", description=render_main.__doc__)
    parser.add_argument("-f", "--filename", required=True, help="TradingBot YAML file, or - for stdin")
    parser.add_argument("-n", "--namespace", help="namespace for TradingBots that do not set one")
    parser.add_argument("--operator-namespace", help="narrow the NetworkPolicy's HTTP ingress to it")
    try:
        args = parser.parse_args(argv)
        docs = _read_documents(args.filename, stdin or sys.stdin)
        manifests: list[dict[str, Any]] = []
        for index, doc in enumerate(docs):
            where = f"{args.filename} (document {index + 1})"
            if not isinstance(doc, dict):
                raise _UsageError(f"{where}: expected a TradingBot mapping, got {type(doc).__name__}")
            if args.namespace and isinstance(doc.get("metadata"), dict):
                doc["metadata"].setdefault("namespace", args.namespace)
            try:
                manifests += desired_state(doc, operator_namespace=args.operator_namespace)
            except InvalidSpecError as exc:
                raise _UsageError("\n".join(f"{where}: {p}" for p in exc.problems)) from None
            for warning in spec_warnings(doc):
                print(f"warning: {where}: {warning}", file=err)
    except _UsageError as exc:
        print(f"error: {exc}", file=err)
        return EXIT_USAGE
    out.write(yaml.dump_all(manifests, Dumper=_BlockDumper, sort_keys=False, width=120))
    return EXIT_OK


def crd_main(argv: list[str], *, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """``tradingbot crd``: print the generated CRD; ``--check`` compares it with the checked-in
    file (exit 1 on drift), ``--write`` regenerates that file."""
    from tradingbot_operator.crd import CRD_PATH, crd_yaml

    out, err = stdout or sys.stdout, stderr or sys.stderr
    parser = _Parser(prog="tradingbot crd", description=crd_main.__doc__)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--check", action="store_true", help=f"compare with {CRD_PATH.name}")
    group.add_argument("--write", action="store_true", help=f"write {CRD_PATH.name}")
    parser.add_argument("--path", type=Path, default=CRD_PATH, help="checked-in CRD file")
    try:
        args = parser.parse_args(argv)
    except _UsageError as exc:
        print(f"error: {exc}", file=err)
        return EXIT_USAGE
    text = crd_yaml()
    if args.write:
        args.path.parent.mkdir(parents=True, exist_ok=True)
        args.path.write_text(text, encoding="utf-8")
        print(f"wrote {args.path}", file=err)
        return EXIT_OK
    if args.check:
        try:
            current = args.path.read_text(encoding="utf-8")
        except OSError as exc:
            print(f"error: {args.path}: cannot read: {exc.strerror}", file=err)
            return EXIT_USAGE
        if current != text:
            print(f"{args.path} is stale: run `tradingbot crd --write` and commit it", file=err)
            return EXIT_DRIFT
        print(f"{args.path} is up to date", file=err)
        return EXIT_OK
    out.write(text)
    return EXIT_OK
