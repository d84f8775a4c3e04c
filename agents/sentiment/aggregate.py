"""Pure aggregation: per-source scores → one score per symbol, then smoothing over history.

Weighting rule: a symbol's score is the weighted mean of the per-source means of the sources that
produced at least one text about it this round, with the configured weights renormalised over
exactly those sources. So a source that failed (or simply said nothing about the symbol) gives its
weight to the others in proportion to theirs: reddit 0.6, news 0.3, x 0.1 with news down become
reddit 0.6/0.7, x 0.1/0.7. If every producing source has weight 0 they count equally, rather than
dividing by zero or dropping data that did arrive.

Smoothing: an exponential moving average over the last ``history_size`` raw scores of the symbol,
seeded with the oldest one: ``s = alpha·raw + (1 − alpha)·s_prev``. Recomputing over the bounded
window (instead of carrying one running value forever) means a score older than the window has no
influence at all, which is what "history window" promises.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class SymbolAggregate:
    symbol: str
    raw: float  # weighted score of this round, in [−1, 1]
    sources: dict[str, float]  # per-source mean score
    weights: dict[str, float]  # effective (renormalised) weight per producing source
    samples: int  # texts that contributed


def effective_weights(weights: Mapping[str, float], producing: Iterable[str]) -> dict[str, float]:
    """Configured weights renormalised over the sources that produced data (sum 1)."""
    names = sorted(set(producing))
    if not names:
        return {}
    total = sum(max(weights.get(name, 0.0), 0.0) for name in names)
    if total <= 0:
        return {name: 1.0 / len(names) for name in names}
    return {name: max(weights.get(name, 0.0), 0.0) / total for name in names}


def _clamp(value: float) -> float:
    return max(-1.0, min(1.0, value))


def aggregate(
    scores: Mapping[str, Mapping[str, Sequence[float]]], weights: Mapping[str, float]
) -> dict[str, SymbolAggregate]:
    """``scores[source][symbol]`` holds the text scores of one round; returns one aggregate per
    symbol that any source produced data for."""
    per_symbol: dict[str, dict[str, Sequence[float]]] = {}
    for source, by_symbol in scores.items():
        for symbol, values in by_symbol.items():
            if values:
                per_symbol.setdefault(symbol, {})[source] = values
    result: dict[str, SymbolAggregate] = {}
    for symbol, by_source in sorted(per_symbol.items()):
        means = {source: sum(values) / len(values) for source, values in by_source.items()}
        effective = effective_weights(weights, means)
        raw = _clamp(sum(effective[source] * mean for source, mean in means.items()))
        result[symbol] = SymbolAggregate(
            symbol=symbol, raw=raw, sources=means, weights=effective,
            samples=sum(len(values) for values in by_source.values()))
    return result


def ema(values: Iterable[float], alpha: float) -> float:
    """Exponential moving average of ``values`` (oldest first), seeded with the first value."""
    smoothed: float | None = None
    for value in values:
        smoothed = value if smoothed is None else alpha * value + (1.0 - alpha) * smoothed
    if smoothed is None:
        raise ValueError("ema of no values")
    return smoothed


class SmoothedHistory:
    """The last ``size`` raw scores per symbol and their EMA. Memory is bounded by design."""

    def __init__(self, alpha: float, size: int) -> None:
        if not 0 < alpha <= 1:
            raise ValueError("alpha must be in (0, 1]")
        if size < 1:
            raise ValueError("size must be at least 1")
        self.alpha = alpha
        self.size = size
        self._raw: dict[str, deque[float]] = {}

    def add(self, symbol: str, raw: float) -> float:
        """Record this round's raw score; returns the smoothed score."""
        history = self._raw.setdefault(symbol, deque(maxlen=self.size))
        history.append(raw)
        return _clamp(ema(history, self.alpha))

    def smoothed(self, symbol: str) -> float | None:
        history = self._raw.get(symbol)
        return _clamp(ema(history, self.alpha)) if history else None

    def history(self, symbol: str) -> list[float]:
        return list(self._raw.get(symbol, ()))
