"""Real return series for the metric tests: the shipped Binance USDⓈ-M 1h klines."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

KLINES = Path(__file__).resolve().parents[2] / "data" / "klines" / "binance-usdm-futures-1h"


def closes(symbol: str) -> pd.Series:
    frame = pd.read_csv(KLINES / f"{symbol}-1h.csv.gz")
    return pd.Series(frame["close"].to_numpy(dtype=float), index=frame["open_time_ms"].to_numpy())


def returns(symbol: str) -> np.ndarray:
    return closes(symbol).pct_change().dropna().to_numpy()
