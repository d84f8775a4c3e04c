from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from tradingbot_agents.exchange import (
    BreakerState,
    CircuitBreaker,
    CircuitOpen,
    InMemoryWeightBudget,
    IPBanned,
    RateLimitConfig,
    RateLimiter,
)
from tradingbot_agents.exchange.weights import request_weight

PAYLOAD = Path(__file__).resolve().parents[2] / "data" / "payloads" / "binance" / "live" / "fapi_v1_exchangeInfo.json"


def test_limit_is_read_from_recorded_exchange_info() -> None:
    # The recorded (probably testnet) payload says 6000/min: the limiter must take that, not 2400.
    config = RateLimitConfig.from_exchange_info(json.loads(PAYLOAD.read_text())["rateLimits"])
    assert config == RateLimitConfig(limit=6000, window_s=60.0)
    assert config.header_name == "x-mbx-used-weight-1m"


def test_documented_weights() -> None:
    assert request_weight("GET", "/fapi/v1/ticker/price") == 2
    assert request_weight("GET", "/fapi/v1/ticker/price", {"symbol": "BTCUSDT"}) == 1
    assert request_weight("GET", "/fapi/v1/ticker/24hr") == 40
    assert [request_weight("GET", "/fapi/v1/klines", {"limit": n}) for n in (99, 100, 500, 1500)] == [1, 2, 5, 10]
    assert request_weight("POST", "/fapi/v1/order") == 0
    assert request_weight("GET", "/fapi/v2/account") == 5


async def test_callers_wait_when_local_budget_is_spent() -> None:
    limiter = RateLimiter(config=RateLimitConfig(limit=5, window_s=0.5))
    windows: list[int] = []

    async def call() -> None:
        await limiter.acquire(1)
        windows.append(int(time.time() // 0.5))

    await asyncio.gather(*(call() for _ in range(12)))
    # Never more than 5 weight per half-second window: the rest waited instead of being sent.
    assert max(windows.count(w) for w in set(windows)) <= 5
    assert len(set(windows)) >= 3
    assert limiter.waits >= 7


async def test_used_weight_header_corrects_the_local_count() -> None:
    budget = InMemoryWeightBudget()
    limiter = RateLimiter(budget, RateLimitConfig(limit=100, window_s=60.0))
    await limiter.acquire(3)
    await limiter.observe_headers({"X-Mbx-Used-Weight-1M": "97"}, time.time())  # other processes spent too
    assert await limiter.used() == 97
    await limiter.observe_headers({"x-mbx-used-weight-1m": "10"}, time.time())  # lower: keep the larger
    assert await limiter.used() == 97


async def test_ban_blocks_all_calls_and_reports_failed_health() -> None:
    limiter = RateLimiter(config=RateLimitConfig(limit=100, window_s=60.0))
    assert limiter.health() == ("ok", "")
    await limiter.on_banned(time.time() + 0.3, "IP banned until 123")
    state, reason = limiter.health()
    assert state == "failed" and "418" in reason
    with pytest.raises(IPBanned):
        await limiter.acquire(1)
    await asyncio.sleep(0.35)
    await limiter.acquire(1)
    assert limiter.health() == ("ok", "")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _metric(registry: CollectorRegistry, name: str, labels: dict[str, str]) -> float | None:
    return registry.get_sample_value(name, labels)


def test_breaker_opens_after_n_failures_and_half_opens_after_timeout() -> None:
    clock = FakeClock()
    registry = CollectorRegistry()
    breaker = CircuitBreaker("t", failure_threshold=3, reset_timeout_s=5.0, registry=registry, clock=clock)
    for _ in range(2):
        breaker.before_call()
        breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED
    breaker.before_call()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    assert _metric(registry, "exchange_circuit_state", {"name": "t"}) == 1
    with pytest.raises(CircuitOpen):
        breaker.before_call()
    clock.now += 5.0
    assert breaker.state is BreakerState.HALF_OPEN
    breaker.before_call()  # the one trial call
    with pytest.raises(CircuitOpen):
        breaker.before_call()  # a second concurrent call is refused
    breaker.record_failure()  # trial failed: open again
    assert breaker.state is BreakerState.OPEN
    clock.now += 5.0
    breaker.before_call()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    assert _metric(registry, "exchange_circuit_state", {"name": "t"}) == 0
    assert _metric(registry, "exchange_circuit_transitions_total",
                   {"name": "t", "from_state": "closed", "to_state": "open"}) == 1
    assert _metric(registry, "exchange_circuit_transitions_total",
                   {"name": "t", "from_state": "half_open", "to_state": "open"}) == 1


def test_success_resets_the_consecutive_failure_count() -> None:
    breaker = CircuitBreaker(failure_threshold=2, clock=FakeClock())
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED
