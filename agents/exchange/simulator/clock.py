"""Simulation clocks. ``speed`` is candles (hours) per wall second: at speed 60 one simulated
minute passes per wall second, at 3600 the replay runs an hour of candles every second."""

from __future__ import annotations

import threading
import time
from typing import Protocol

HOUR_MS = 3_600_000


class SimClock(Protocol):
    def now_ms(self) -> int: ...

    def set(self, t_ms: int) -> None: ...


class ReplayClock:
    """simulated now = start + elapsed wall time x speed x 1 h."""

    def __init__(self, start_ms: int, speed: float = 1.0) -> None:
        self._lock = threading.Lock()
        self._start_ms = start_ms
        self._speed = speed
        self._wall0 = time.monotonic()

    @property
    def speed(self) -> float:
        return self._speed

    @speed.setter
    def speed(self, value: float) -> None:
        with self._lock:  # re-anchor so changing speed never jumps the clock
            self._start_ms, self._wall0 = self._now_locked(), time.monotonic()
            self._speed = value

    def _now_locked(self) -> int:
        return self._start_ms + int((time.monotonic() - self._wall0) * self._speed * HOUR_MS)

    def now_ms(self) -> int:
        with self._lock:
            return self._now_locked()

    def set(self, t_ms: int) -> None:
        with self._lock:
            self._start_ms, self._wall0 = t_ms, time.monotonic()


class ManualClock:
    """A clock that moves only when told (tests)."""

    def __init__(self, start_ms: int) -> None:
        self._now = start_ms

    def now_ms(self) -> int:
        return self._now

    def set(self, t_ms: int) -> None:
        self._now = t_ms

    def advance(self, ms: int) -> None:
        self._now += ms
