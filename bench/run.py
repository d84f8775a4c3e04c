"""``make bench``: run every benchmark (or those named: ``make bench ARGS=runtime``).

Run as a script (``python bench/run.py``), never with the repository root first on sys.path: the
root's ``operator/`` folder would shadow the stdlib module. The root is appended instead.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parents[1]))

BENCHES = ["runtime", "market_data", "operator", "rl_eval"]


def main(argv: list[str]) -> int:
    names = argv or BENCHES
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        print(f"unknown benchmark(s) {unknown}; available: {BENCHES}", file=sys.stderr)
        return 2
    for name in names:
        print(f"== {name} ==", flush=True)
        importlib.import_module(f"bench.{name}").main()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
