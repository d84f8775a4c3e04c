"""Async Binance USDⓈ-M futures REST client.

One shared ``httpx.AsyncClient`` (connection pooling, keep-alive, timeouts) per client. Every call
goes through the same path: circuit breaker -> weight limiter -> HTTP -> header correction -> error
mapping -> pydantic parsing. What is retried, and why:

- 5xx, timeouts and connection errors of *idempotent* calls (market data, account reads, cancels,
  order queries): bounded retries with full-jitter exponential backoff, then a typed error.
- 429: the limiter blocks every caller for ``Retry-After``, then the call is sent again (a 429 means
  the request was rejected, so even an order is safe to resend); bounded by ``max_429_retries``.
- 418: never retried; everything stops until the ban ends (:class:`IPBanned`).
- 4xx errors: never retried (the same request gets the same answer), except -1021 (timestamp
  outside recvWindow): the clock offset is resynced once and the call re-signed.
- A new order is NOT retried blindly on a read timeout or 5xx: the exchange may have placed it, and
  a second send could double the position. :meth:`ExchangeClient.new_order` instead looks the order
  up by its ``newClientOrderId``; only when the exchange says it does not exist is it sent again,
  with the *same* client order id, so the exchange itself rejects a duplicate. A connect failure
  (nothing was sent) is safe to retry for every call.

Secrets: key and secret are ``SecretStr``; they only leave the object as the ``X-MBX-APIKEY`` header
and the HMAC. Logs and exception messages carry the method and path, never the query string.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Self, TypeVar

import httpx
from prometheus_client import CollectorRegistry, Counter, Histogram
from pydantic import BaseModel, SecretStr, ValidationError

from tradingbot_agents.exchange.breaker import CircuitBreaker
from tradingbot_agents.exchange.errors import (
    ExchangeConnectionError,
    ExchangeError,
    ExchangeTimeout,
    IPBanned,
    MalformedResponse,
    RateLimited,
    ServerError,
    TimestampOutsideRecvWindow,
    UnknownOrder,
    api_error,
    ban_until_from_message,
    parse_error_body,
)
from tradingbot_agents.exchange.limiter import RateLimitConfig, RateLimiter
from tradingbot_agents.exchange.models import (
    Account,
    ExchangeInfo,
    Kline,
    Order,
    Position,
    ServerTime,
    Ticker,
    Ticker24h,
)
from tradingbot_agents.exchange.signing import API_KEY_HEADER, encode_params, signed_query
from tradingbot_agents.exchange.weights import request_weight

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)

BINANCE_FUTURES_URL = "https://fapi.binance.com"
_CONNECT_PHASE = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def new_client_order_id(prefix: str = "tb") -> str:
    """A fresh client order id (Binance allows up to 36 chars of ``[.A-Z:/a-z0-9_-]``)."""
    return f"{prefix}-{uuid.uuid4().hex[:28]}"


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from a ``Retry-After`` header (Binance sends integers; fractions are accepted)."""
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        return None


class ExchangeClient:
    """Binance USDⓈ-M futures REST client. Use as ``async with ExchangeClient(...) as client``."""

    def __init__(self, base_url: str = BINANCE_FUTURES_URL, *, api_key: SecretStr | None = None,
                 api_secret: SecretStr | None = None, timeout_s: float = 10.0, max_retries: int = 3,
                 max_429_retries: int = 2, backoff_base_s: float = 0.1, backoff_max_s: float = 2.0,
                 recv_window_ms: int = 5000, max_concurrency: int = 8, limiter: RateLimiter | None = None,
                 breaker: CircuitBreaker | None = None, registry: CollectorRegistry | None = None,
                 http: httpx.AsyncClient | None = None, sync_on_enter: bool = True) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._api_secret = api_secret
        self.max_retries = max_retries
        self.max_429_retries = max_429_retries
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.recv_window_ms = recv_window_ms
        self.max_concurrency = max_concurrency
        self.sync_on_enter = sync_on_enter
        self.registry = registry if registry is not None else CollectorRegistry()
        self.limiter = limiter or RateLimiter()
        self.breaker = breaker or CircuitBreaker(registry=self.registry)
        self._own_http = http is None
        self._http = http or httpx.AsyncClient(
            base_url=self.base_url, timeout=httpx.Timeout(timeout_s),
            limits=httpx.Limits(max_connections=max(max_concurrency, 10), max_keepalive_connections=10))
        self.time_offset_ms = 0
        self._rng = random.Random()
        self._requests = Counter("exchange_requests", "Exchange REST requests by endpoint and outcome",
                                 ["endpoint", "outcome"], registry=self.registry)
        self._latency = Histogram("exchange_request_seconds", "Exchange REST request latency",
                                  ["endpoint"], registry=self.registry,
                                  buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))

    def __repr__(self) -> str:  # no key, no secret
        return f"ExchangeClient({self.base_url!r}, signed={self._api_key is not None})"

    async def __aenter__(self) -> Self:
        if self.sync_on_enter:
            try:
                await self.exchange_info()
                await self.sync_time()
            except BaseException:
                await self.aclose()  # do not leak the connection pool when start-up fails
                raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._own_http:
            await self._http.aclose()

    # ---------------------------------------------------------------- public market data
    async def ping(self) -> None:
        await self._request("GET", "/fapi/v1/ping")

    async def server_time(self) -> int:
        return self._parse(ServerTime, await self._request("GET", "/fapi/v1/time"), "/fapi/v1/time").server_time

    async def sync_time(self) -> int:
        """Measure the server clock offset (midpoint of the round trip); returns it in ms."""
        before = time.time()
        server = await self.server_time()
        after = time.time()
        self.time_offset_ms = int(server - (before + after) / 2 * 1000)
        return self.time_offset_ms

    async def exchange_info(self) -> ExchangeInfo:
        """exchangeInfo; also (re)configures the limiter from its REQUEST_WEIGHT entry."""
        path = "/fapi/v1/exchangeInfo"
        info = self._parse(ExchangeInfo, await self._request("GET", path), path)
        config = RateLimitConfig.from_exchange_info([r.model_dump(by_alias=True) for r in info.rate_limits])
        if config is not None:
            self.limiter.configure(config)
        return info

    async def ticker_price(self, symbol: str | None = None) -> list[Ticker]:
        path = "/fapi/v1/ticker/price"
        body = await self._request("GET", path, {"symbol": symbol})
        return self._parse_list(Ticker, [body] if isinstance(body, dict) else body, path)

    async def ticker_24hr(self, symbol: str | None = None) -> list[Ticker24h]:
        path = "/fapi/v1/ticker/24hr"
        body = await self._request("GET", path, {"symbol": symbol})
        return self._parse_list(Ticker24h, [body] if isinstance(body, dict) else body, path)

    async def klines(self, symbol: str, interval: str = "1h", limit: int = 500, start_time: int | None = None,
                     end_time: int | None = None) -> list[Kline]:
        path = "/fapi/v1/klines"
        params = {"symbol": symbol, "interval": interval, "limit": limit, "startTime": start_time,
                  "endTime": end_time}
        body = await self._request("GET", path, params)
        if not isinstance(body, list):
            raise MalformedResponse("expected a list of klines", path=path)
        try:
            return [Kline.from_row(row) for row in body]
        except (ValidationError, ValueError, TypeError) as exc:
            raise MalformedResponse(_short(exc), path=path) from None

    async def batch_fetch_tickers(self, symbols: Iterable[str]) -> dict[str, Ticker]:
        """Prices of many symbols with ONE request (weight 2) instead of one per symbol."""
        wanted = set(symbols)
        return {t.symbol: t for t in await self.ticker_price() if t.symbol in wanted}

    async def batch_fetch_klines(self, requests: Sequence[tuple[str, str]], limit: int = 100
                                 ) -> dict[tuple[str, str], list[Kline] | ExchangeError]:
        """Klines for many (symbol, interval) pairs, at most ``max_concurrency`` in flight.

        One failing pair does not sink the batch: its entry holds the typed error instead."""
        semaphore = asyncio.Semaphore(self.max_concurrency)

        async def one(symbol: str, interval: str) -> list[Kline] | ExchangeError:
            async with semaphore:
                try:
                    return await self.klines(symbol, interval, limit)
                except ExchangeError as exc:
                    return exc

        results = await asyncio.gather(*(one(s, i) for s, i in requests))
        return dict(zip(requests, results, strict=True))

    # ---------------------------------------------------------------- signed
    async def account(self) -> Account:
        path = "/fapi/v2/account"
        return self._parse(Account, await self._request("GET", path, {}, signed=True), path)

    async def position_risk(self, symbol: str | None = None) -> list[Position]:
        path = "/fapi/v3/positionRisk"
        body = await self._request("GET", path, {"symbol": symbol}, signed=True)
        return self._parse_list(Position, body, path)

    async def open_orders(self, symbol: str | None = None) -> list[Order]:
        path = "/fapi/v1/openOrders"
        return self._parse_list(Order, await self._request("GET", path, {"symbol": symbol}, signed=True), path)

    async def query_order(self, symbol: str, *, order_id: int | None = None,
                          orig_client_order_id: str | None = None) -> Order:
        path = "/fapi/v1/order"
        params = {"symbol": symbol, "orderId": order_id, "origClientOrderId": orig_client_order_id}
        return self._parse(Order, await self._request("GET", path, params, signed=True), path)

    async def cancel_order(self, symbol: str, *, order_id: int | None = None,
                           orig_client_order_id: str | None = None) -> Order:
        path = "/fapi/v1/order"
        params = {"symbol": symbol, "orderId": order_id, "origClientOrderId": orig_client_order_id}
        return self._parse(Order, await self._request("DELETE", path, params, signed=True), path)

    async def new_order(self, symbol: str, side: str, order_type: str, quantity: Decimal | str | float, *,
                        price: Decimal | str | float | None = None, time_in_force: str | None = None,
                        reduce_only: bool | None = None, client_order_id: str | None = None,
                        recovery_attempts: int = 3) -> Order:
        """Place an order, idempotently.

        The ``newClientOrderId`` is fixed before the first send. If the outcome is unknown (read
        timeout, 5xx), the order is looked up by that id; it is re-sent (same id) only when the
        exchange says it does not exist. See the module docstring for why there is no blind retry."""
        path = "/fapi/v1/order"
        cid = client_order_id or new_client_order_id()
        if order_type.upper() == "LIMIT" and time_in_force is None:
            time_in_force = "GTC"
        params = {"symbol": symbol, "side": side.upper(), "type": order_type.upper(),
                  "quantity": _num(quantity), "price": _num(price) if price is not None else None,
                  "timeInForce": time_in_force, "reduceOnly": reduce_only, "newClientOrderId": cid,
                  "newOrderRespType": "RESULT"}
        last: ExchangeError | None = None
        for attempt in range(recovery_attempts + 1):
            if attempt:
                try:
                    return await self.query_order(symbol, orig_client_order_id=cid)
                except UnknownOrder:
                    pass  # never reached the book: sending again with the same id is safe
                except (ExchangeTimeout, ServerError, ExchangeConnectionError, MalformedResponse) as exc:
                    last = exc
                    await self._backoff(attempt)
                    continue
            try:
                body = await self._request("POST", path, params, signed=True, idempotent=False)
                return self._parse(Order, body, path)
            except (ExchangeTimeout, ServerError, MalformedResponse, ExchangeConnectionError) as exc:
                # Connection reset after sending is as ambiguous as a read timeout.
                log.warning("order %s on %s: outcome unknown (%s); checking by client order id",
                            cid, symbol, type(exc).__name__)
                last = exc
        assert last is not None
        raise last

    # ---------------------------------------------------------------- plumbing
    def _now_ms(self) -> int:
        return int(time.time() * 1000) + self.time_offset_ms

    async def _backoff(self, attempt: int) -> None:
        # Full jitter: spreads retries of many clients instead of synchronising them.
        await asyncio.sleep(self._rng.uniform(0, min(self.backoff_max_s, self.backoff_base_s * 2 ** attempt)))

    async def _request(self, method: str, path: str, params: Mapping[str, object] | None = None, *,
                       signed: bool = False, idempotent: bool = True) -> Any:
        params = {k: v for k, v in (params or {}).items() if v is not None}
        weight = request_weight(method, path, params)
        headers: dict[str, str] = {}
        if signed:
            if self._api_key is None or self._api_secret is None:
                raise ExchangeError(f"{method} {path} needs an API key and secret")
            headers[API_KEY_HEADER] = self._api_key.get_secret_value()
        retries = rate_limited = 0
        resynced = False
        while True:
            self.breaker.before_call()
            try:
                await self.limiter.acquire(weight)
            except ExchangeError:
                self.breaker.release()
                raise
            if signed:
                assert self._api_secret is not None
                query = signed_query(params, self._api_secret, timestamp_ms=self._now_ms(),
                                     recv_window_ms=self.recv_window_ms)
            else:
                query = encode_params(params)
            url = f"{path}?{query}" if query else path
            sent_at = time.time()
            started = time.perf_counter()
            try:
                response = await self._http.request(method, url, headers=headers)
            except httpx.HTTPError as exc:
                self._requests.labels(path, "transport_error").inc()
                self.breaker.record_failure()
                safe = isinstance(exc, _CONNECT_PHASE) or idempotent
                if safe and retries < self.max_retries:
                    retries += 1
                    await self._backoff(retries)
                    continue
                if isinstance(exc, httpx.TimeoutException):
                    raise ExchangeTimeout(f"{method} {path} timed out ({type(exc).__name__})") from None
                raise ExchangeConnectionError(f"{method} {path}: {type(exc).__name__}") from None
            finally:
                self._latency.labels(path).observe(time.perf_counter() - started)
            status = response.status_code
            self._requests.labels(path, str(status)).inc()
            await self.limiter.observe_headers(response.headers, sent_at)

            if status == 429:
                self.breaker.release()
                retry_after = parse_retry_after(response.headers)
                if retry_after is None:
                    retry_after = self.limiter.config.window_s - sent_at % self.limiter.config.window_s
                await self.limiter.on_rate_limited(retry_after)
                rate_limited += 1
                if rate_limited > self.max_429_retries:
                    raise RateLimited(retry_after, f"{method} {path}")
                continue
            if status == 418:
                self.breaker.release()
                body = _json_or_none(response)
                msg = str(body.get("msg", "")) if isinstance(body, dict) else ""
                until = ban_until_from_message(msg)
                if until is None:
                    until = time.time() + (parse_retry_after(response.headers) or 120.0)
                await self.limiter.on_banned(until, msg[:200])
                raise IPBanned(until, msg[:200])
            if status >= 500:
                self.breaker.record_failure()
                if idempotent and retries < self.max_retries:
                    retries += 1
                    await self._backoff(retries)
                    continue
                body = _json_or_none(response)
                detail = str(body.get("msg", "")) if isinstance(body, dict) else ""
                raise ServerError(status, path, detail[:200])

            body = _json_or_none(response)
            if body is _NOT_JSON:
                self.breaker.record_failure()
                kind = "HTML page" if "html" in response.headers.get("content-type", "") \
                    or response.text.lstrip().startswith("<") else "invalid or truncated JSON"
                raise MalformedResponse(kind, http_status=status, path=path)
            if status >= 400:
                self.breaker.record_success()  # the exchange is up; the request was wrong
                error = parse_error_body(body)
                if error is None:
                    raise MalformedResponse("error status without a Binance error body", http_status=status,
                                            path=path)
                exc = api_error(error[0], error[1], status)
                if isinstance(exc, TimestampOutsideRecvWindow) and signed and not resynced:
                    resynced = True
                    await self.sync_time()
                    continue
                raise exc
            self.breaker.record_success()
            return body

    def _parse(self, model: type[M], body: Any, path: str) -> M:
        try:
            return model.model_validate(body)
        except ValidationError as exc:
            self.breaker.record_failure()
            raise MalformedResponse(_short(exc), path=path) from None

    def _parse_list(self, model: type[M], body: Any, path: str) -> list[M]:
        if not isinstance(body, list):
            self.breaker.record_failure()
            raise MalformedResponse(f"expected a list, got {type(body).__name__}", path=path)
        return [self._parse(model, item, path) for item in body]


_NOT_JSON: Any = object()


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        return _NOT_JSON


def _short(exc: Exception) -> str:
    """A one-line reason from a validation error, without echoing input values."""
    if isinstance(exc, ValidationError):
        errors = exc.errors(include_input=False, include_url=False)
        first = errors[0] if errors else {}
        loc = ".".join(str(p) for p in first.get("loc", ()))
        return f"{len(errors)} field error(s), first: {loc or '<root>'}: {first.get('msg', '')}"
    return str(exc)[:200]


def _num(value: Decimal | str | float) -> str:
    if isinstance(value, float):
        return format(Decimal(repr(value)), "f")
    return format(Decimal(str(value)), "f")
