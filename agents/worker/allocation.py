"""Which pairs a worker should hold (pure): follow the coordinator, or share fairly on its own.

With a fresh :class:`PairAssignment` the worker holds exactly what it was assigned (capped at
``max_pairs_per_worker``): it releases the rest and tries to take the assigned pairs (one still
held by another worker is taken once that worker lets it go or its lease expires).

Without one (no coordinator balancing yet, or its assignment is stale) each worker aims at a fair
share, ``ceil(pairs / live workers)``, counting the live workers from their heartbeats. A worker
that holds more than its share releases the surplus, so a newly started replica gets pairs without
any central decision; pairs whose holder died are free again after the lease TTL.

Pairs with an open position stay on the list even after the selector drops them: someone must keep
managing (closing) the position, and they come first so a dead worker's positions are adopted first.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Plan:
    release: list[str]
    acquire: list[str]  # in priority order; the worker stops when it reaches ``target``
    target: int


def managed_pairs(active: Sequence[str], open_positions: Iterable[str]) -> list[str]:
    """Pairs someone must trade: open positions first, then the active list, without duplicates."""
    return list(dict.fromkeys([*sorted(open_positions), *active]))


def plan(managed: Sequence[str], held: Iterable[str], *, assigned: Sequence[str] | None, live_workers: int,
         max_pairs: int) -> Plan:
    held_set = set(held)
    if assigned is not None:
        wanted = list(dict.fromkeys(assigned))[:max_pairs]
        return Plan(release=sorted(held_set - set(wanted)),
                    acquire=[p for p in wanted if p not in held_set], target=len(wanted))
    share = min(max_pairs, math.ceil(len(managed) / max(live_workers, 1))) if managed else 0
    keep = [p for p in managed if p in held_set][:share]
    release = sorted(held_set - set(keep))
    acquire = [p for p in managed if p not in held_set] if len(keep) < share else []
    return Plan(release=release, acquire=acquire, target=share)
