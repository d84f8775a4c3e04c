"""Helpers shared by benchmarks."""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def percentile_ms(samples_s: list[float], q: float) -> float:
    return round(float(np.percentile(np.asarray(samples_s) * 1000.0, q)), 4)


def write_result(name: str, data: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    data = {**data, "_meta": {"machine": platform.machine(), "python": platform.python_version(),
                              "cpus": __import__("os").cpu_count(),
                              "load_avg_1m_at_end": round(__import__("os").getloadavg()[0], 2),
                              "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}}
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return path
