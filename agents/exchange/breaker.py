"""Circuit breaker: stop hammering an exchange that is failing, probe it now and then.

Closed: calls pass; ``failure_threshold`` consecutive failures open it. Open: calls are refused
locally (:class:`CircuitOpen`) for ``reset_timeout_s``. Half-open: exactly one trial call passes;
its success closes the circuit, its failure opens it again. Only failures that say "the exchange is
unwell" count (5xx, timeouts, malformed bodies, connection errors); a 4xx is the caller's mistake
and a 429/418 is the limiter's business.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge

from tradingbot_agents.exchange.errors import CircuitOpen


class BreakerState(enum.IntEnum):
    CLOSED = 0
    OPEN = 1
    HALF_OPEN = 2


class CircuitBreaker:
    def __init__(self, name: str = "exchange", *, failure_threshold: int = 5, reset_timeout_s: float = 10.0,
                 registry: CollectorRegistry | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.failure_threshold = failure_threshold
        self.reset_timeout_s = reset_timeout_s
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._trial_in_flight = False
        # A private registry by default: two breakers (or two tests) never collide on metric names.
        self.registry = registry if registry is not None else CollectorRegistry()
        self._state_gauge = Gauge("exchange_circuit_state", "Circuit state: 0 closed, 1 open, 2 half-open",
                                  ["name"], registry=self.registry)
        self._transitions = Counter("exchange_circuit_transitions", "Circuit state transitions",
                                    ["name", "from_state", "to_state"], registry=self.registry)
        self._state_gauge.labels(name).set(0)

    @property
    def state(self) -> BreakerState:
        if self._state is BreakerState.OPEN and self._clock() - self._opened_at >= self.reset_timeout_s:
            self._move(BreakerState.HALF_OPEN)
        return self._state

    def before_call(self) -> None:
        """Raise :class:`CircuitOpen` unless a call may go out now."""
        state = self.state
        if state is BreakerState.CLOSED:
            return
        if state is BreakerState.HALF_OPEN and not self._trial_in_flight:
            self._trial_in_flight = True
            return
        retry_in = max(self.reset_timeout_s - (self._clock() - self._opened_at), 0.0)
        raise CircuitOpen(self.name, retry_in)

    def record_success(self) -> None:
        self._failures = 0
        self._trial_in_flight = False
        if self._state is not BreakerState.CLOSED:
            self._move(BreakerState.CLOSED)

    def record_failure(self) -> None:
        self._trial_in_flight = False
        if self._state is BreakerState.HALF_OPEN:
            self._open()
            return
        self._failures += 1
        if self._state is BreakerState.CLOSED and self._failures >= self.failure_threshold:
            self._open()

    def release(self) -> None:
        """A call ended with neither verdict (e.g. a 429): let another trial through."""
        self._trial_in_flight = False

    def _open(self) -> None:
        self._opened_at = self._clock()
        self._move(BreakerState.OPEN)

    def _move(self, new: BreakerState) -> None:
        old, self._state = self._state, new
        if new is BreakerState.CLOSED:
            self._failures = 0
        self._state_gauge.labels(self.name).set(int(new))
        self._transitions.labels(self.name, old.name.lower(), new.name.lower()).inc()
