"""Which worker should trade which pair (pure: no I/O).

The coordinator publishes a desired assignment; workers release what is not theirs and take what
is, through their leases (the lease, not this plan, guarantees one holder per pair). The plan:

* shares follow spare capacity: a worker's weight is ``1 / (0.1 + load)``, where load is its CPU
  fraction plus its event-loop lag in tenths of a second, so a struggling worker gets fewer pairs;
* it is sticky: a pair stays with its current worker while that worker is alive and not over its
  share, because every move costs a release/acquire gap during which nobody trades the pair;
* nobody gets more than ``max_per_worker``; pairs beyond total capacity stay unassigned (and are
  reported), never doubled up.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from tradingbot_agents.messages import Load


def worker_weight(load: Load) -> float:
    pressure = load.cpu_percent / 100.0 + load.loop_lag_ms / 100.0
    return 1.0 / (0.1 + pressure)


def shares(total: int, weights: Mapping[str, float], cap: int) -> dict[str, int]:
    """Split ``total`` pairs by weight (largest remainder), at most ``cap`` each."""
    if not weights:
        return {}
    budget = min(total, cap * len(weights))
    weight_sum = sum(weights.values())
    exact = {w: budget * weight / weight_sum for w, weight in weights.items()}
    result = {w: min(cap, math.floor(x)) for w, x in exact.items()}
    # Hand out what rounding left, biggest remainder first, never past the cap.
    order = sorted(weights, key=lambda w: (exact[w] - math.floor(exact[w]), weights[w], w), reverse=True)
    while sum(result.values()) < budget:
        progressed = False
        for worker in order:
            if sum(result.values()) >= budget:
                break
            if result[worker] < cap:
                result[worker] += 1
                progressed = True
        if not progressed:
            break
    return result


def balance(pairs: Sequence[str], loads: Mapping[str, Load], current: Mapping[str, Sequence[str]],
            *, max_per_worker: int) -> dict[str, list[str]]:
    """Desired pairs per live worker. ``current`` is the previous plan (or the workers' holdings)."""
    workers = sorted(loads)
    if not workers:
        return {}
    target = shares(len(pairs), {w: worker_weight(loads[w]) for w in workers}, max_per_worker)
    wanted = set(pairs)
    plan: dict[str, list[str]] = {w: [] for w in workers}
    placed: set[str] = set()
    for worker in workers:  # keep what each live worker already has, up to its share
        for pair in current.get(worker, ()):
            if pair in wanted and pair not in placed and len(plan[worker]) < target[worker]:
                plan[worker].append(pair)
                placed.add(pair)
    for pair in pairs:  # the rest go to whoever is furthest below its share
        if pair in placed:
            continue
        candidates = [w for w in workers if len(plan[w]) < target[w]]
        if not candidates:
            break
        worker = max(candidates, key=lambda w: (target[w] - len(plan[w]), -len(plan[w]), w))
        plan[worker].append(pair)
        placed.add(pair)
    return {w: sorted(p) for w, p in plan.items()}
