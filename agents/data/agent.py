"""The data agent: exchange → cache (L1 → Redis) → bus.

* Look-ups (``md.get.ticker`` / ``md.get.klines``, request/reply in queue group ``data``) are
  answered from the cache; a miss fetches once per key across every replica (single-flight).
* Tickers for every symbol come from ONE all-symbols request (weight 2) cached as one snapshot
  for ``ticker_ttl``: twenty consumers asking for twenty symbols cost one exchange call.
* Consumers declare interest (``md.interest``); the replica holding the publisher lease pushes
  ``md.ticker.<SYMBOL>`` and ``md.kline.<SYMBOL>.<interval>`` every ``poll_interval``.
* The weight budget is shared in Redis per egress IP, so replicas and bots behind one address
  never add up to a ban.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from fastapi import FastAPI
from nats.aio.msg import Msg

from tradingbot_agents.cache import TwoTierCache
from tradingbot_agents.data.bars import aggregate, base_bars_needed
from tradingbot_agents.data.interest import InterestRegistry
from tradingbot_agents.data.publisher_lease import PublisherLease
from tradingbot_agents.exchange import BreakerState, ExchangeClient, ExchangeError, RateLimitConfig, RateLimiter
from tradingbot_agents.exchange.redis_budget import RedisWeightBudget
from tradingbot_agents.kinds import AgentKind
from tradingbot_agents.messages import (
    HealthStatus,
    KlineBar,
    KlineData,
    KlinesReply,
    KlinesRequest,
    MarketDataInterest,
    SymbolsReply,
    SymbolsRequest,
    TickerData,
    TickerReply,
    TickerRequest,
)
from tradingbot_agents.runtime import Agent

log = logging.getLogger(__name__)

TICKERS_KEY = "ticker:all"
SYMBOLS_KEY = "exchangeinfo"
SYMBOLS_TTL = 3600.0  # listings change rarely; a new symbol shows up within the hour
# Eviction costs: what a refetch spends in exchange weight (all-symbols ticker 2, klines ≤100 → 1).
TICKERS_COST = 2.0
KLINES_COST = 1.0
DERIVED_MEMO_SIZE = 10_000


class LatencyWindow:
    """The last ``size`` durations, for p50/p99 in heartbeats (a histogram in /metrics has them too,
    but the coordinator reads heartbeats)."""

    def __init__(self, size: int = 2000) -> None:
        self._samples: deque[float] = deque(maxlen=size)

    def add(self, seconds: float) -> None:
        self._samples.append(seconds)

    def percentile_ms(self, q: float) -> float | None:
        if not self._samples:
            return None
        ordered = sorted(self._samples)
        index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
        return round(ordered[index] * 1000, 3)


def klines_key(symbol: str, interval: str, limit: int) -> str:
    return f"kline:{symbol}:{interval}:{limit}"


class DataAgent(Agent):
    kind = AgentKind.DATA

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        settings = self.config.data_agent
        self.interest = InterestRegistry(settings.interest_ttl)
        self.redis = aioredis.Redis.from_url(self.config.redis.url,
                                             socket_timeout=self.config.redis.socket_timeout,
                                             socket_connect_timeout=self.config.redis.socket_timeout)
        cache_settings = self.config.cache.model_copy(update={
            "max_size_mb": settings.cache_size_mb,
            "enable_prefetching": self.config.cache.enable_prefetching and settings.prefetch_enabled,
        })
        self.cache = TwoTierCache.from_config(self.config, registry=self.registry, settings=cache_settings)
        exchange = self.config.exchange
        self.client = ExchangeClient(
            exchange.base_url, timeout_s=exchange.timeout_s, recv_window_ms=exchange.recv_window_ms,
            max_concurrency=exchange.max_concurrency, registry=self.registry, sync_on_enter=False,
            limiter=RateLimiter(RedisWeightBudget(self.redis, egress=exchange.egress)),
        )
        self.lease = PublisherLease(self.redis, f"tb:{self.config.bot.namespace}:{self.config.bot.name}:md:publisher",
                                    self.agent_id, ttl_s=max(3 * settings.poll_interval, 2.0))
        self._fetch_slots = asyncio.Semaphore(exchange.max_concurrency)
        self._derived: dict[tuple[Any, ...], tuple[bytes, Any]] = {}
        self.exchange_calls = 0
        self.published = 0
        # Updates delivered to consumers by push, counted per consumer: without the data agent each
        # would have been that consumer's own exchange request (the demo's "naive estimate").
        self.push_deliveries = 0
        self.lookups = 0
        self.lookup_latency = LatencyWindow()
        self.fetch_latency = LatencyWindow()

    # -- lifecycle ----------------------------------------------------------------------------
    async def setup(self) -> None:
        status, reason = await self.cache.check()
        self._set_cache_health(status, reason)
        self.cache.register_prefetcher("kline", self._prefetch_klines)
        await self.bus.subscribe(self.subjects.md_interest, MarketDataInterest, self._on_interest)
        await self.bus.serve(self.subjects.md_get_ticker, TickerRequest, self._timed(self.get_ticker), queue="data")
        await self.bus.serve(self.subjects.md_get_klines, KlinesRequest, self._timed(self.get_klines), queue="data")
        await self.bus.serve(self.subjects.md_get_symbols, SymbolsRequest, self.get_symbols, queue="data")
        self.spawn(self.cache.cleanup_loop(self.config.data_agent.cleanup_interval), "cache-cleanup")
        self.spawn(self.every(self.config.runtime.heartbeat_interval, self._probe_cache), "cache-probe")

    async def run(self) -> None:
        await self._load_exchange_info()
        await self.every(self.config.data_agent.poll_interval, self._push)

    async def teardown(self) -> None:
        await self.lease.release()
        await self.client.aclose()
        await self.cache.close()
        await self.redis.aclose()

    # -- fetching through the cache ------------------------------------------------------------
    async def _load_exchange_info(self) -> None:
        """exchangeInfo, through the cache (one fetch however many replicas and look-ups ask at
        once): it lists the symbols and carries the weight limit, which configures this replica's
        limiter even when another replica fetched it (until then the limiter runs on a safe
        default)."""
        try:
            info = await self._exchange_info()
            self.health.ok("exchange")
        except ExchangeError as exc:
            self.health.set("exchange", HealthStatus.DEGRADED, f"exchangeInfo failed: {exc}")
            return
        config = RateLimitConfig.from_exchange_info(info["rate_limits"])
        if config is not None:
            self.client.limiter.configure(config)

    async def _exchange_info(self) -> dict[str, Any]:
        return await self._guarded(self.cache.get_or_fetch(SYMBOLS_KEY, self._fetch_exchange_info,
                                                           ttl=SYMBOLS_TTL))  # type: ignore[no-any-return]

    async def _fetch_exchange_info(self) -> dict[str, Any]:
        async with self._fetch_slots:
            info = await self.client.exchange_info()
        self.exchange_calls += 1
        return {"symbols": [[s.symbol, s.status, s.quote_asset] for s in info.symbols],
                "rate_limits": [r.model_dump(by_alias=True) for r in info.rate_limits]}

    async def get_symbols(self, request: SymbolsRequest) -> SymbolsReply:
        try:
            info = await self._exchange_info()
        except ExchangeError as exc:
            return SymbolsReply(ok=False, error=str(exc))
        return SymbolsReply(ok=True, symbols=sorted(
            symbol for symbol, status, quote in info["symbols"]
            if status == "TRADING" and (request.quote_asset is None or quote == request.quote_asset)))

    async def _fetch_tickers(self) -> dict[str, Any]:
        async with self._fetch_slots:
            started = time.perf_counter()
            tickers = await self.client.ticker_price()
            self.fetch_latency.add(time.perf_counter() - started)
        self.exchange_calls += 1
        return {"fetched_at": time.time(), "prices": {t.symbol: [t.price, t.time] for t in tickers}}

    async def _tickers_encoded(self) -> bytes:
        return await self._guarded(self.cache.get_or_fetch_encoded(
            TICKERS_KEY, self._fetch_tickers, ttl=self.config.data_agent.ticker_ttl, cost=TICKERS_COST))

    async def tickers(self) -> dict[str, Any]:
        raw = await self._tickers_encoded()
        return self._derive(("tickers",), raw, lambda snapshot: snapshot)  # type: ignore[no-any-return]

    async def _fetch_klines(self, symbol: str, interval: str, limit: int) -> dict[str, Any]:
        async with self._fetch_slots:
            started = time.perf_counter()
            bars = await self.client.klines(symbol, interval, limit)
            self.fetch_latency.add(time.perf_counter() - started)
        self.exchange_calls += 1
        return {"fetched_at": time.time(),
                "bars": [[b.open_time, b.open, b.high, b.low, b.close, b.volume, b.close_time] for b in bars]}

    async def _klines_source(self, symbol: str, interval: str, limit: int) -> tuple[bytes, str, int]:
        """The cached entry that answers (symbol, interval, limit): the base bars when they cover
        the request (folded later), else the interval itself."""
        settings = self.config.data_agent
        base, base_limit = settings.kline_base_interval, settings.kline_base_limit
        needed = base_bars_needed(interval, limit, base)
        if needed is not None and needed <= base_limit:
            return await self._cached_klines(symbol, base, base_limit), base, base_limit
        return await self._cached_klines(symbol, interval, limit), interval, limit

    async def klines(self, symbol: str, interval: str, limit: int) -> dict[str, Any]:
        """Bars of any interval: folded from the cached base bars when they cover the request,
        else fetched (and cached) as asked."""
        raw, source_interval, _ = await self._klines_source(symbol, interval, limit)
        return self._bars(raw, source_interval, symbol, interval, limit)

    def _bars(self, raw: bytes, base: str, symbol: str, interval: str, limit: int) -> dict[str, Any]:
        def fold(data: dict[str, Any]) -> dict[str, Any]:
            bars = aggregate(data["bars"], interval, limit, base) if base != interval else data["bars"][-limit:]
            return {"fetched_at": data["fetched_at"], "bars": bars}

        return self._derive(("bars", symbol, interval, limit), raw, fold)  # type: ignore[no-any-return]

    async def _cached_klines(self, symbol: str, interval: str, limit: int) -> bytes:
        return await self._guarded(self.cache.get_or_fetch_encoded(
            klines_key(symbol, interval, limit), lambda: self._fetch_klines(symbol, interval, limit),
            ttl=self.config.data_agent.kline_ttl, cost=KLINES_COST))

    def _derive(self, memo_key: tuple[Any, ...], raw: bytes, build: Callable[[Any], Any]) -> Any:
        """What ``build`` makes of a cached entry, computed once per entry: the cache hands back
        the same bytes object while the entry is unchanged, so identity says when to rebuild.
        Many consumers asking for the same thing cost one decode, one fold, one encode."""
        memo = self._derived.get(memo_key)
        if memo is not None and memo[0] is raw:
            return memo[1]
        if len(self._derived) >= DERIVED_MEMO_SIZE:
            self._derived.clear()
        value = build(self.cache.decode(raw))
        self._derived[memo_key] = (raw, value)
        return value

    async def _prefetch_klines(self, key: str) -> dict[str, Any]:
        _, symbol, interval, limit = key.split(":")
        return await self._fetch_klines(symbol, interval, int(limit))

    async def _guarded(self, pending: Any) -> dict[str, Any]:
        """Await a cache fetch and keep the exchange's health in step with what happened."""
        try:
            value: dict[str, Any] = await pending
        except ExchangeError as exc:
            self._update_exchange_health(exc)
            raise
        self._update_exchange_health(None)
        return value

    # -- look-ups (request/reply) ---------------------------------------------------------------
    def _timed(self, handler: Callable[[Any], Awaitable[Any]]) -> Callable[[Any], Awaitable[Any]]:
        async def timed(request: Any) -> Any:
            started = time.perf_counter()
            self.lookups += 1
            try:
                return await handler(request)
            finally:
                self.lookup_latency.add(time.perf_counter() - started)

        return timed

    async def get_ticker(self, request: TickerRequest) -> TickerReply | bytes:
        try:
            raw = await self._tickers_encoded()
        except ExchangeError as exc:
            return TickerReply(ok=False, error=str(exc))

        def reply(snapshot: dict[str, Any]) -> bytes:
            entry = snapshot["prices"].get(request.symbol)
            if entry is None:
                return TickerReply(ok=False, error=f"unknown symbol {request.symbol}").model_dump_json().encode()
            return TickerReply(ok=True, ticker=TickerData(
                symbol=request.symbol, price=entry[0], time_ms=entry[1], fetched_at=snapshot["fetched_at"],
            )).model_dump_json().encode()

        return self._derive(("ticker-reply", request.symbol), raw, reply)  # type: ignore[no-any-return]

    async def get_klines(self, request: KlinesRequest) -> KlinesReply | bytes:
        try:
            raw, base, _ = await self._klines_source(request.symbol, request.interval, request.limit)
        except ExchangeError as exc:
            return KlinesReply(ok=False, error=str(exc))
        return self._derive(  # type: ignore[no-any-return]
            ("klines-reply", request.symbol, request.interval, request.limit), raw,
            lambda _: KlinesReply(ok=True, klines=_kline_data(
                request.symbol, request.interval,
                self._bars(raw, base, request.symbol, request.interval, request.limit),
            )).model_dump_json().encode())

    # -- pushes -------------------------------------------------------------------------------
    async def _on_interest(self, interest: MarketDataInterest, _msg: Msg) -> None:
        self.interest.renew(interest)

    async def _probe_cache(self) -> None:
        """Ping Redis once per heartbeat, so a dead Redis shows in health even while L1 answers all."""
        self._set_cache_health(*await self.cache.check())

    async def _push(self) -> None:
        symbols = self.interest.symbols()
        pairs = self.interest.klines()
        if not (symbols or pairs) or not await self.lease.refresh():
            return
        if symbols:
            try:
                snapshot = await self.tickers()
            except ExchangeError as exc:
                log.warning("tickers unavailable: %s", exc)
            else:
                for symbol in symbols:
                    entry = snapshot["prices"].get(symbol)
                    if entry is not None:
                        await self.bus.publish(self.subjects.ticker(symbol), TickerData(
                            symbol=symbol, price=entry[0], time_ms=entry[1], fetched_at=snapshot["fetched_at"]))
                        self.published += 1
                        self.push_deliveries += self.interest.audience(symbol)
        limit = self.config.data_agent.kline_limit
        results = await asyncio.gather(*(self.klines(s, i, limit) for s, i in pairs), return_exceptions=True)
        for (symbol, interval), result in zip(pairs, results, strict=True):
            if isinstance(result, BaseException):
                log.warning("klines %s %s unavailable: %s", symbol, interval, result)
                continue
            await self.bus.publish(self.subjects.kline(symbol, interval), _kline_data(symbol, interval, result))
            self.published += 1
            self.push_deliveries += self.interest.audience(symbol, interval)

    # -- health and stats ---------------------------------------------------------------------
    def _set_cache_health(self, status: str, reason: str) -> None:
        self.health.set("cache", HealthStatus.OK if status == "ok" else HealthStatus.DEGRADED,
                        "" if status == "ok" else reason)

    def _update_exchange_health(self, error: ExchangeError | None) -> None:
        limiter_status, limiter_reason = self.client.limiter.health()
        if limiter_status == "failed":
            self.health.set("exchange", HealthStatus.FAILED, limiter_reason)
        elif self.client.breaker.state is BreakerState.OPEN:
            self.health.set("exchange", HealthStatus.DEGRADED, "circuit breaker open")
        elif error is not None:
            self.health.set("exchange", HealthStatus.DEGRADED, str(error))
        elif limiter_status == "degraded":
            self.health.set("exchange", HealthStatus.DEGRADED, limiter_reason)
        else:
            self.health.ok("exchange")

    def readiness(self) -> dict[str, bool]:
        return {**super().readiness(), "cache": True}

    def stats(self) -> dict[str, float]:
        stats = self.cache.stats()
        figures = {
            "cache_hits": float(stats.hits),
            "cache_misses": float(stats.misses),
            "exchange_calls": float(self.exchange_calls),
            "consumers": float(self.interest.consumers()),
            "published": float(self.published),
            "push_deliveries": float(self.push_deliveries),
            "lookups": float(self.lookups),
        }
        for name, window in (("lookup", self.lookup_latency), ("fetch_latency", self.fetch_latency)):
            for q in (50, 99):
                value = window.percentile_ms(q)
                if value is not None:
                    figures[f"{name}_p{q}_ms"] = value
        return figures

    def add_routes(self, app: FastAPI) -> None:
        @app.get("/cache")
        async def cache_stats() -> dict[str, Any]:
            return self.cache.stats().model_dump()


def _kline_data(symbol: str, interval: str, data: dict[str, Any]) -> KlineData:
    bars = [KlineBar(open_time=b[0], open=b[1], high=b[2], low=b[3], close=b[4], volume=b[5], close_time=b[6])
            for b in data["bars"]]
    return KlineData(symbol=symbol, interval=interval, bars=bars, fetched_at=data["fetched_at"])
