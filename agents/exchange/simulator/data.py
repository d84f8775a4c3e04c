"""The shipped hourly klines, the intra-candle price walk and interval aggregation.

Nothing here invents a price. The trade price inside a candle follows the documented backtesting
convention: open -> the nearer of high/low -> the other -> close, moving at constant speed along
that path in ``steps`` even steps (one per simulated minute by default), so it never leaves the
candle's real range and the last step of the hour is exactly the close. Derived values (close time,
quote volume, partial-candle volume, aggregated intervals) are labelled in ``data/klines/README.md``.
"""

from __future__ import annotations

import gzip
import math
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

HOUR_MS = 3_600_000
INTERVALS_MS: dict[str, int] = {
    "1h": HOUR_MS, "2h": 2 * HOUR_MS, "4h": 4 * HOUR_MS, "6h": 6 * HOUR_MS, "8h": 8 * HOUR_MS,
    "12h": 12 * HOUR_MS, "1d": 24 * HOUR_MS,
}
DEFAULT_DIR = Path(__file__).resolve().parents[3] / "data" / "klines" / "binance-usdm-futures-1h"


def klines_dir() -> Path:
    return Path(os.environ.get("TRADINGBOT_KLINES_DIR", str(DEFAULT_DIR)))


def _decimals(text: str) -> int:
    return len(text) - text.index(".") - 1 if "." in text else 0


@dataclass(frozen=True)
class Series:
    symbol: str
    open_time: np.ndarray  # int64 ms
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    price_decimals: int  # most decimals seen in the data's prices (derived tick size)
    qty_decimals: int  # most decimals seen in the data's volumes (derived step size)

    @property
    def first_open(self) -> int:
        return int(self.open_time[0])

    def __len__(self) -> int:
        return len(self.open_time)


def load_series(path: Path) -> Series:
    symbol = path.name.split("-")[0]
    rows = gzip.decompress(path.read_bytes()).decode().splitlines()[1:]
    cols: list[list[str]] = [[] for _ in range(6)]
    for row in rows:
        for i, value in enumerate(row.split(",")):
            cols[i].append(value)
    price_dec = max(_decimals(v) for col in cols[1:5] for v in col)
    qty_dec = max(_decimals(v) for v in cols[5])
    times = np.array([int(v) for v in cols[0]], dtype=np.int64)
    if len(times) > 1 and not np.all(np.diff(times) == HOUR_MS):
        raise ValueError(f"{path.name}: candles are not contiguous hourly")
    arrays = [np.array([float(v) for v in col]) for col in cols[1:]]
    return Series(symbol, times, *arrays, price_decimals=price_dec, qty_decimals=qty_dec)


@lru_cache(maxsize=4)
def load_dataset(directory: str | None = None) -> dict[str, Series]:
    """All ``<SYMBOL>-1h.csv.gz`` files of ``directory``; every symbol must share one time axis."""
    folder = Path(directory) if directory else klines_dir()
    series = {s.symbol: s for s in map(load_series, sorted(folder.glob("*-1h.csv.gz")))}
    if not series:
        raise FileNotFoundError(f"no *-1h.csv.gz klines in {folder}")
    axes = {(s.first_open, len(s)) for s in series.values()}
    if len(axes) != 1:
        raise ValueError("klines of different symbols are not aligned")
    return series


def walk_points(o: float, h: float, low: float, c: float) -> tuple[float, float, float, float]:
    """open -> nearer extreme -> other extreme -> close. On a tie, visit the extreme on the far
    side of the close first, so the path ends by moving towards the close."""
    up, down = h - o, o - low
    high_first = up < down or (up == down and c < o)
    return (o, h, low, c) if high_first else (o, low, h, c)


def walk_price(o: float, h: float, low: float, c: float, step: int, steps: int) -> float:
    """Price at ``step`` (0..steps-1) of the even-step walk; step 0 is the open, the last the close."""
    points = walk_points(o, h, low, c)
    legs = [abs(points[i + 1] - points[i]) for i in range(3)]
    total = sum(legs)
    if total == 0 or steps <= 1:
        return c if steps <= 1 else o
    distance = total * min(max(step, 0), steps - 1) / (steps - 1)
    for i, leg in enumerate(legs):
        if distance <= leg or i == 2:
            if leg == 0:
                return points[i + 1]
            frac = min(distance / leg, 1.0)
            return points[i] + (points[i + 1] - points[i]) * frac
        distance -= leg
    return c  # pragma: no cover


class Market:
    """Read-only queries over the dataset at a given simulated time (ms)."""

    def __init__(self, series: dict[str, Series], *, steps_per_candle: int = 60) -> None:
        self.series = series
        self.steps = steps_per_candle
        any_series = next(iter(series.values()))
        self.first_open = any_series.first_open
        self.n = len(any_series)
        self.end_ms = self.first_open + self.n * HOUR_MS  # the data's end (exclusive)

    def clamp(self, t_ms: int) -> int:
        return min(max(t_ms, self.first_open), self.end_ms - 1)

    def locate(self, t_ms: int) -> tuple[int, int]:
        """(hour index, step within the hour) of a simulated time, clamped into the data."""
        t = self.clamp(t_ms)
        index = (t - self.first_open) // HOUR_MS
        step = (t - self.first_open - index * HOUR_MS) * self.steps // HOUR_MS
        return int(index), int(step)

    def round_price(self, symbol: str, value: float) -> float:
        return round(value, self.series[symbol].price_decimals)

    def price_at(self, symbol: str, t_ms: int) -> float:
        s = self.series[symbol]
        i, k = self.locate(t_ms)
        return self.round_price(symbol, walk_price(s.open[i], s.high[i], s.low[i], s.close[i], k, self.steps))

    def step_prices(self, symbol: str, index: int, first: int, last: int) -> list[float]:
        """Walk prices of steps ``first..last`` (inclusive) of hour ``index``."""
        s = self.series[symbol]
        return [self.round_price(symbol, walk_price(s.open[index], s.high[index], s.low[index], s.close[index],
                                                    k, self.steps)) for k in range(first, last + 1)]

    def partial_candle(self, symbol: str, t_ms: int) -> tuple[int, float, float, float, float, float]:
        """The candle in progress at ``t_ms``: (index, open, high so far, low so far, price, volume so far).

        Volume so far is the candle's volume times the elapsed fraction of the walk (derived)."""
        s = self.series[symbol]
        i, k = self.locate(t_ms)
        prices = self.step_prices(symbol, i, 0, k)
        volume = float(s.volume[i]) * (k + 1) / self.steps
        return i, float(s.open[i]), max(prices), min(prices), prices[-1], volume

    def hourly_rows(self, symbol: str, lo: int, hi: int, t_ms: int) -> np.ndarray:
        """Rows ``lo..hi-1`` as an (n, 6) array [open_time, o, h, l, c, v]; the candle in progress
        at ``t_ms`` (if in range) is replaced by its partial state; later candles are excluded."""
        s = self.series[symbol]
        now_index = self.locate(t_ms)[0]
        complete = t_ms >= self.end_ms
        hi = min(hi, self.n if complete else now_index + 1)
        if hi <= lo:
            return np.empty((0, 6))
        rows = np.column_stack([s.open_time[lo:hi].astype(float), s.open[lo:hi], s.high[lo:hi], s.low[lo:hi],
                                s.close[lo:hi], s.volume[lo:hi]])
        if not complete and hi == now_index + 1:
            _, o, h, low, c, v = self.partial_candle(symbol, t_ms)
            rows[-1, 1:] = (o, h, low, c, v)
        return rows

    def klines(self, symbol: str, interval: str, t_ms: int, *, limit: int = 500, start_ms: int | None = None,
               end_ms: int | None = None) -> list[tuple[int, float, float, float, float, float, float]]:
        """Aggregated candles (open_ms, o, h, l, c, volume, quote volume) visible at sim time ``t_ms``:
        closed ones plus the one in progress. Buckets are aligned on the epoch, as the exchange's
        are; a bucket that would start before the data does is left out (it would be incomplete)."""
        width = INTERVALS_MS[interval]
        per = width // HOUR_MS
        now = min(t_ms, self.end_ms - 1)
        last_bucket = (min(now, end_ms) if end_ms is not None else now) // width * width
        first_allowed = math.ceil(self.first_open / width) * width
        if start_ms is not None:
            first = max(math.ceil(start_ms / width) * width, first_allowed)
            buckets = list(range(first, last_bucket + 1, width))[:limit]
        else:
            first = max(last_bucket - (limit - 1) * width, first_allowed)
            buckets = list(range(first, last_bucket + 1, width))
        if not buckets:
            return []
        lo = (buckets[0] - self.first_open) // HOUR_MS
        hi = (buckets[-1] - self.first_open) // HOUR_MS + per
        rows = self.hourly_rows(symbol, lo, hi, t_ms)
        out = []
        for b_index, start in enumerate(buckets):
            part = rows[b_index * per:(b_index + 1) * per]
            if len(part) == 0:
                break
            quote = float(np.sum(part[:, 5] * part[:, 4]))
            out.append((start, float(part[0, 1]), float(part[:, 2].max()), float(part[:, 3].min()),
                        float(part[-1, 4]), float(part[:, 5].sum()), quote))
        return out
