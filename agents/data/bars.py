"""Kline arithmetic (pure): interval lengths and aggregation of base bars into coarser ones.

Why aggregate here: a 4h bar on Binance is exactly the 1h bars of its window folded together
(open of the first, highest high, lowest low, close of the last, summed volume), and the windows are
aligned on the epoch (00:00, 04:00, … UTC). So one cached request for enough 1h bars answers 1h, 2h,
4h, 6h, 8h, 12h and 1d consumers alike: one exchange call instead of one per interval. Weekly and
monthly bars are not epoch-aligned (weeks start on Monday) and are always fetched as they are.
"""

from __future__ import annotations

from collections.abc import Sequence

MINUTE_MS = 60_000
_UNITS = {"m": MINUTE_MS, "h": 60 * MINUTE_MS, "d": 24 * 60 * MINUTE_MS}

# A bar: [open_time, open, high, low, close, volume, close_time]
Bar = list[float]


def interval_ms(interval: str) -> int | None:
    """Length of an epoch-aligned interval ("1m" … "1d"); None for weeks, months or junk."""
    if len(interval) < 2 or interval[-1] not in _UNITS or not interval[:-1].isdigit():
        return None
    count = int(interval[:-1])
    if count <= 0 or (interval[-1] == "d" and count != 1):
        return None  # 3d bars are not epoch-aligned on Binance either
    return count * _UNITS[interval[-1]]


def derivable(interval: str, base: str) -> int | None:
    """How many ``base`` bars make one ``interval`` bar, or None if it cannot be derived."""
    length, base_length = interval_ms(interval), interval_ms(base)
    if length is None or base_length is None or length % base_length:
        return None
    return length // base_length


def aggregate(bars: Sequence[Bar], interval: str, limit: int, base: str) -> list[Bar]:
    """The last ``limit`` ``interval`` bars folded from consecutive ``base`` bars.

    A leading window that the base bars cover only partly is dropped (its open and low would be
    wrong); the trailing window may be the still-open bar, exactly as the exchange returns it."""
    factor = derivable(interval, base)
    length = interval_ms(interval)
    if factor is None or length is None:
        raise ValueError(f"{interval} cannot be derived from {base}")
    if factor == 1:
        return [list(b) for b in bars[-limit:]]
    out: list[Bar] = []
    window: list[Bar] = []
    for bar in bars:
        start = int(bar[0]) // length * length
        if window and int(window[0][0]) // length * length != start:
            out.append(_fold(window, length))
            window = []
        window.append(bar)
    if window:
        out.append(_fold(window, length))
    if bars and int(bars[0][0]) % length != 0:
        out = out[1:]  # the first window began before our first base bar
    return out[-limit:]


def _fold(window: Sequence[Bar], length: int) -> Bar:
    start = int(window[0][0]) // length * length
    return [start, window[0][1], max(b[2] for b in window), min(b[3] for b in window), window[-1][4],
            sum(b[5] for b in window), start + length - 1]


def base_bars_needed(interval: str, limit: int, base: str) -> int | None:
    """Base bars that guarantee ``limit`` complete-start bars of ``interval`` (None: not derivable)."""
    factor = derivable(interval, base)
    return None if factor is None else limit * factor + factor - 1
