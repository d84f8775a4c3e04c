"""The client against the simulator's failure modes: 429, 418, 5xx, malformed bodies, bad
signatures, clock drift, lost order answers. Real HTTP over loopback only."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from decimal import Decimal

import pytest
from pydantic import SecretStr

from tradingbot_agents.exchange import (
    BreakerState,
    CircuitBreaker,
    CircuitOpen,
    ExchangeClient,
    InvalidSignature,
    InvalidSymbol,
    IPBanned,
    MalformedResponse,
    RateLimiter,
    ServerError,
)
from tradingbot_agents.exchange.simulator import SimulatorConfig, SimulatorServer

from .conftest import API_SECRET, misbehave, sim_stats


async def test_429_makes_every_caller_wait_retry_after(sim: SimulatorServer, client: ExchangeClient) -> None:
    await misbehave(sim.url, mode="rate_limit", count=1, retry_after_s=0.3)
    before = await sim_stats(sim.url)
    started = time.monotonic()
    first = asyncio.create_task(client.ticker_price("BTCUSDT"))
    await asyncio.sleep(0.1)  # the 429 has arrived; now other callers on the same limiter start
    others = [asyncio.create_task(client.ticker_price(s)) for s in ("ETHUSDT", "SOLUSDT", "XRPUSDT")]
    mid = await sim_stats(sim.url)
    assert mid["requests_total"] - before["requests_total"] == 1  # the others are held back locally
    assert client.limiter.health()[0] == "degraded"
    results = await asyncio.gather(first, *others)
    elapsed = time.monotonic() - started
    after = await sim_stats(sim.url)
    assert elapsed >= 0.3  # Retry-After honoured
    assert [r[0].symbol for r in results] == ["BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT"]
    assert after["answered_429"] - before["answered_429"] == 1  # nobody hammered during the block
    assert after["answered_418"] == before["answered_418"]
    assert after["requests_total"] - before["requests_total"] == 5
    assert client.limiter.health() == ("ok", "")


async def test_418_stops_all_calls_until_the_ban_ends(sim: SimulatorServer, client: ExchangeClient) -> None:
    await misbehave(sim.url, mode="ban", count=1, retry_after_s=0.5)
    with pytest.raises(IPBanned) as info:
        await client.ticker_price("BTCUSDT")
    assert info.value.until == pytest.approx(time.time() + 0.5, abs=0.3)
    state, reason = client.limiter.health()
    assert state == "failed" and "418" in reason and "banned" in reason
    before = await sim_stats(sim.url)
    with pytest.raises(IPBanned):
        await client.klines("BTCUSDT", "1h", limit=5)
    assert (await sim_stats(sim.url))["requests_total"] == before["requests_total"]  # nothing was sent
    await asyncio.sleep(0.6)
    assert len(await client.klines("BTCUSDT", "1h", limit=5)) == 5
    assert client.limiter.health() == ("ok", "")


async def test_client_throttles_itself_to_the_advertised_limit(make_client: Callable[..., ExchangeClient]) -> None:
    config = SimulatorConfig(manual_clock=True, weight_limit=20, weight_interval="SECOND")
    with SimulatorServer(config) as server:
        async with make_client(server.url) as c:
            assert c.limiter.config.limit == 20 and c.limiter.config.window_s == 1.0
            results = await asyncio.gather(*(c.ticker_price("BTCUSDT") for _ in range(30)))
        stats = await sim_stats(server.url)
    assert len(results) == 30
    assert stats["answered_429"] == 0  # waited locally instead of earning a 429
    assert c.limiter.waits > 0


async def test_5xx_is_retried_a_bounded_number_of_times(sim: SimulatorServer,
                                                        make_client: Callable[..., ExchangeClient]) -> None:
    async with make_client(sim.url, max_retries=3) as c:
        await misbehave(sim.url, mode="error_5xx", count=2)
        before = await sim_stats(sim.url)
        assert (await c.ticker_price("BTCUSDT"))[0].symbol == "BTCUSDT"
        assert (await sim_stats(sim.url))["requests_total"] - before["requests_total"] == 3
        await misbehave(sim.url, mode="error_5xx", count=100, status=502)
        before = await sim_stats(sim.url)
        with pytest.raises(ServerError) as info:
            await c.ticker_price("BTCUSDT")
        assert info.value.http_status == 502
        assert (await sim_stats(sim.url))["requests_total"] - before["requests_total"] == 4  # 1 + 3 retries


async def test_breaker_opens_on_failures_and_recovers(sim: SimulatorServer,
                                                      make_client: Callable[..., ExchangeClient]) -> None:
    breaker = CircuitBreaker(failure_threshold=3, reset_timeout_s=0.3)
    async with make_client(sim.url, max_retries=0, breaker=breaker) as c:
        await misbehave(sim.url, mode="error_5xx", count=100)
        for _ in range(3):
            with pytest.raises(ServerError):
                await c.ticker_price("BTCUSDT")
        assert breaker.state is BreakerState.OPEN
        before = await sim_stats(sim.url)
        with pytest.raises(CircuitOpen):
            await c.ticker_price("BTCUSDT")
        assert (await sim_stats(sim.url))["requests_total"] == before["requests_total"]  # refused locally
        await misbehave(sim.url, mode="error_5xx", count=0)  # the exchange recovers
        await asyncio.sleep(0.35)
        assert breaker.state is BreakerState.HALF_OPEN
        assert (await c.ticker_price("BTCUSDT"))[0].symbol == "BTCUSDT"
        assert breaker.state is BreakerState.CLOSED


@pytest.mark.parametrize(("mode", "status"), [("html", 200), ("truncated", None), ("missing_fields", None)])
async def test_malformed_answers_are_typed_errors(sim: SimulatorServer, client: ExchangeClient, mode: str,
                                                  status: int | None) -> None:
    body = {"mode": mode, "count": 4} | ({"status": status} if status else {})
    await misbehave(sim.url, **body)
    for call in (lambda: client.ticker_price("BTCUSDT"), client.ticker_price,
                 lambda: client.klines("BTCUSDT", "1h", limit=3), client.server_time):
        with pytest.raises(MalformedResponse) as info:
            await call()
        assert "KeyError" not in repr(info.value)
    assert (await sim_stats(sim.url))["misbehaved"] == 4
    # Still usable afterwards.
    assert (await client.ticker_price("BTCUSDT"))[0].price > 0
    assert len(await client.klines("BTCUSDT", "1h", limit=3)) == 3


async def test_html_error_page_with_5xx_is_a_server_error(sim: SimulatorServer, client: ExchangeClient) -> None:
    await misbehave(sim.url, mode="html", count=100, status=502)
    with pytest.raises(ServerError):
        await client.ticker_price("BTCUSDT")


async def test_bad_signature_is_a_typed_error_without_secrets(sim: SimulatorServer,
                                                              make_client: Callable[..., ExchangeClient]) -> None:
    wrong = SecretStr("not-the-secret-0123456789")
    async with make_client(sim.url, api_secret=wrong) as c:
        with pytest.raises(InvalidSignature) as info:
            await c.account()
    assert info.value.code == -1022 and info.value.http_status == 400
    text = str(info.value)
    assert "not-the-secret" not in text and "sim-api-key" not in text and "signature=" not in text


async def test_timestamp_outside_recv_window_resyncs_the_clock(sim: SimulatorServer, client: ExchangeClient) -> None:
    before = await sim_stats(sim.url)
    sim.simulator.config.clock_skew_ms = 30_000  # the server's clock jumps 30 s ahead of ours
    try:
        account = await client.account()
    finally:
        sim.simulator.config.clock_skew_ms = 0
    after = await sim_stats(sim.url)
    assert account.total_wallet_balance == Decimal(10_000)
    assert client.time_offset_ms == pytest.approx(30_000, abs=500)
    ep = "GET /fapi/v2/account"
    assert after["by_endpoint"][ep] - before["by_endpoint"].get(ep, 0) == 2  # -1021, then the re-signed call
    assert after["by_status"].get("400", 0) - before["by_status"].get("400", 0) == 1


async def test_order_with_lost_answer_is_not_placed_twice(sim: SimulatorServer,
                                                         make_client: Callable[..., ExchangeClient]) -> None:
    async with make_client(sim.url, timeout_s=0.3) as c:
        await misbehave(sim.url, mode="delay", count=1, delay_s=0.6, path_prefix="/fapi/v1/order")
        before = await sim_stats(sim.url)
        order = await c.new_order("BTCUSDT", "BUY", "MARKET", "0.005", client_order_id="tb-lost-answer-1")
        await asyncio.sleep(0.35)  # let the delayed answer drain
        after = await sim_stats(sim.url)
        assert order.client_order_id == "tb-lost-answer-1" and order.status == "FILLED"
        assert after["by_endpoint"]["POST /fapi/v1/order"] - before["by_endpoint"].get("POST /fapi/v1/order", 0) == 1
        assert after["by_endpoint"]["GET /fapi/v1/order"] - before["by_endpoint"].get("GET /fapi/v1/order", 0) == 1
        assert (await c.position_risk("BTCUSDT"))[0].position_amt == Decimal("0.005")  # once, not twice


async def test_order_rejected_by_5xx_is_resent_with_the_same_id(sim: SimulatorServer,
                                                                make_client: Callable[..., ExchangeClient]) -> None:
    async with make_client(sim.url) as c:
        await misbehave(sim.url, mode="error_5xx", count=1, path_prefix="/fapi/v1/order")
        order = await c.new_order("ETHUSDT", "SELL", "MARKET", "0.050", client_order_id="tb-5xx-resend-1")
        stats = await sim_stats(sim.url)
        assert order.client_order_id == "tb-5xx-resend-1" and order.status == "FILLED"
        assert stats["by_endpoint"]["POST /fapi/v1/order"] == 2  # first got 503, then checked, then resent
        assert (await c.position_risk("ETHUSDT"))[0].position_amt == Decimal("-0.050")


async def test_batch_klines_bounded_concurrency(sim: SimulatorServer,
                                                make_client: Callable[..., ExchangeClient]) -> None:
    sim.simulator.config.latency_s = 0.05
    try:
        async with make_client(sim.url, max_concurrency=4) as c:
            pairs = [(s, i) for s in ("BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT") for i in ("1h", "4h")]
            started = time.monotonic()
            result = await c.batch_fetch_klines(pairs, limit=10)
            elapsed = time.monotonic() - started
    finally:
        sim.simulator.config.latency_s = 0.0
    assert set(result) == set(pairs)
    assert all(isinstance(v, list) and v for v in result.values())
    # 8 calls of 50 ms, 4 at a time: about 2 rounds; serial would be 0.4 s, unbounded 0.05 s.
    assert 0.09 <= elapsed < 0.35


async def test_shared_limiter_blocks_a_second_client(sim: SimulatorServer,
                                                     make_client: Callable[..., ExchangeClient]) -> None:
    """Two clients of one process (one egress IP) share a limiter: a 429 seen by one holds both."""
    limiter = RateLimiter()
    async with make_client(sim.url, limiter=limiter) as a, make_client(sim.url, limiter=limiter) as b:
        await misbehave(sim.url, mode="rate_limit", count=1, retry_after_s=0.3)
        started = time.monotonic()
        task_a = asyncio.create_task(a.ticker_price("BTCUSDT"))
        await asyncio.sleep(0.1)  # a has its 429 by now
        await b.ticker_price("ETHUSDT")
        b_done = time.monotonic() - started
        await task_a
    assert b_done >= 0.3  # b never got a request out during a's Retry-After
    assert (await sim_stats(sim.url))["answered_429"] == 1
    assert API_SECRET.get_secret_value() not in repr(a)


async def test_request_metrics_are_recorded(sim: SimulatorServer, client: ExchangeClient) -> None:
    await client.ticker_price("BTCUSDT")
    with pytest.raises(InvalidSymbol):
        await client.ticker_price("NOPEUSDT")
    reg = client.registry
    ok = reg.get_sample_value("exchange_requests_total", {"endpoint": "/fapi/v1/ticker/price", "outcome": "200"})
    bad = reg.get_sample_value("exchange_requests_total", {"endpoint": "/fapi/v1/ticker/price", "outcome": "400"})
    assert ok == 1 and bad == 1
    count = reg.get_sample_value("exchange_request_seconds_count", {"endpoint": "/fapi/v1/ticker/price"})
    assert count == 2
