"""Binance USDⓈ-M futures REST simulator (FastAPI) replaying the shipped hourly klines.

Real shapes, real number formatting (prices as strings with the symbol's decimals, ids and times as
numbers), real request weights, ``X-MBX-USED-WEIGHT-1M`` on every answer, 429 with ``Retry-After``
and ``{"code":-1003}`` over budget, a 418 ban for callers that keep going, HMAC verification
(-1022), recvWindow (-1021) and unknown symbols (-1121).

Two clocks, on purpose: ``/fapi/v1/time`` (and the recvWindow check) use the *wall* clock (plus an
optional skew), because a signing client must match a clock that runs at real speed; every market
and trade timestamp (ticker ``time``, klines, order ``updateTime``) is *simulated* time, which runs
``speed`` candles per wall second. ``GET /_sim/clock`` tells the simulated time.

Simulator-only endpoints (never on the real exchange): ``GET /_sim/stats`` (request counts, weight,
429/418 answered, order calls: benchmarks read the truth here), ``POST /_sim/reset``,
``GET|POST /_sim/clock``, ``POST /_sim/misbehave`` (answer the next N requests badly).
"""

from __future__ import annotations

import asyncio
import copy
import json
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from tradingbot_agents.exchange.signing import API_KEY_HEADER, verify
from tradingbot_agents.exchange.simulator.clock import ManualClock, ReplayClock, SimClock
from tradingbot_agents.exchange.simulator.data import HOUR_MS, INTERVALS_MS, Market, load_dataset
from tradingbot_agents.exchange.simulator.paper import PaperExchange, SimError, SimOrder
from tradingbot_agents.exchange.weights import request_weight

TEMPLATE = Path(__file__).resolve().parents[3] / "data" / "payloads" / "binance" / "live" / \
    "fapi_v1_exchangeInfo.json"
ORDER_PATHS = ("/fapi/v1/order", "/fapi/v1/openOrders", "/fapi/v1/batchOrders")
_UNIT = {"SECOND": (1, "S"), "MINUTE": (60, "M"), "HOUR": (3600, "H"), "DAY": (86400, "D")}


class SimulatorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    klines_dir: str | None = None
    symbols: list[str] | None = None  # None: every symbol of the data set
    start_ms: int | None = None  # None: 24 h after the data's first candle (so 24 h stats exist)
    speed: float = Field(default=1.0, ge=0)  # candles (hours) per wall second
    manual_clock: bool = False  # tests: the clock moves only via POST /_sim/clock
    steps_per_candle: int = Field(default=60, ge=2)
    spread_bps: float = Field(default=2.0, ge=0)  # modelled: the data hold no order book
    slippage_bps: float = Field(default=1.0, ge=0)
    taker_fee: float = 0.0005
    maker_fee: float = 0.0002
    max_volume_fraction: float = Field(default=0.1, gt=0)
    starting_balance: float = 10_000.0
    weight_limit: int = 2400  # Binance docs: 2400/min
    weight_interval: Literal["SECOND", "MINUTE", "HOUR", "DAY"] = "MINUTE"
    weight_interval_num: int = 1
    retry_after_s: float | None = None  # None: seconds to the window's end, as the exchange does
    ban_after_429s: int = 3  # requests sent while 429-ed before the IP is banned (418)
    ban_s: float = 120.0
    api_keys: dict[str, str] = Field(default_factory=lambda: {"sim-api-key": "sim-api-secret"})
    clock_skew_ms: int = 0
    latency_s: float = 0.0


class MisbehaveRequest(BaseModel):
    mode: Literal["html", "truncated", "missing_fields", "error_5xx", "rate_limit", "ban", "delay"]
    count: int = 1
    status: int | None = None
    retry_after_s: float = 0.3
    delay_s: float = 1.0
    path_prefix: str = "/fapi"


class ClockRequest(BaseModel):
    time_ms: int | None = None
    advance_ms: int | None = None
    speed: float | None = None


@dataclass
class RateState:
    window_start: float = 0.0
    used: int = 0
    blocked_until: float = 0.0  # 429 in force until (wall, epoch s)
    violations: int = 0
    banned_until: float = 0.0


@dataclass
class Stats:
    by_endpoint: Counter[str] = field(default_factory=Counter)
    requests_total: int = 0
    weight_total: int = 0
    answered_429: int = 0
    answered_418: int = 0
    order_requests: int = 0
    misbehaved: int = 0
    by_status: Counter[str] = field(default_factory=Counter)


def fmt(value: float, decimals: int) -> str:
    return f"{value:.{decimals}f}"


class Simulator:
    """The simulator's state; :func:`create_app` serves it."""

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self.config = config or SimulatorConfig()
        series = load_dataset(self.config.klines_dir)
        if self.config.symbols:
            series = {s: series[s] for s in self.config.symbols}
        self.market = Market(series, steps_per_candle=self.config.steps_per_candle)
        start = self.config.start_ms or self.market.first_open + 24 * HOUR_MS
        self.clock: SimClock = ManualClock(start) if self.config.manual_clock else \
            ReplayClock(start, self.config.speed)
        self.paper = PaperExchange(self.market, spread_bps=self.config.spread_bps,
                                   slippage_bps=self.config.slippage_bps, taker_fee=self.config.taker_fee,
                                   maker_fee=self.config.maker_fee,
                                   max_volume_fraction=self.config.max_volume_fraction,
                                   starting_balance=self.config.starting_balance)
        self.stats = Stats()
        self.rates: dict[str, RateState] = {}
        self.misbehave: MisbehaveRequest | None = None
        seconds, letter = _UNIT[self.config.weight_interval]
        self.window_s = float(seconds * self.config.weight_interval_num)
        self.weight_header = f"X-MBX-USED-WEIGHT-{self.config.weight_interval_num}{letter}"
        self._exchange_info = self._build_exchange_info()

    def now_ms(self) -> int:
        return self.market.clamp(self.clock.now_ms())

    def server_time_ms(self) -> int:
        return int(time.time() * 1000) + self.config.clock_skew_ms

    # --------------------------------------------------------------- exchangeInfo
    def _build_exchange_info(self) -> dict[str, Any]:
        template = json.loads(TEMPLATE.read_text())
        base_symbol = template["symbols"][0]
        info: dict[str, Any] = {k: v for k, v in template.items() if k != "symbols"}
        info["rateLimits"] = [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": self.config.weight_interval,
             "intervalNum": self.config.weight_interval_num, "limit": self.config.weight_limit},
            {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 300},
        ]
        info["assets"] = [a for a in template["assets"] if a["asset"] == "USDT"]
        symbols = []
        for name, s in self.market.series.items():
            entry = copy.deepcopy(base_symbol)
            tick = fmt(10.0 ** -s.price_decimals, s.price_decimals)
            step = fmt(10.0 ** -s.qty_decimals, s.qty_decimals)
            entry.update(symbol=name, pair=name, baseAsset=name.removesuffix("USDT"), quoteAsset="USDT",
                         onboardDate=s.first_open, pricePrecision=s.price_decimals,
                         quantityPrecision=s.qty_decimals)
            for f in entry["filters"]:
                if f["filterType"] == "PRICE_FILTER":
                    f.update(minPrice=tick, tickSize=tick,
                             maxPrice=fmt(float(s.high.max()) * 10, s.price_decimals))
                elif f["filterType"] in ("LOT_SIZE", "MARKET_LOT_SIZE"):
                    f.update(stepSize=step, minQty=step)
                elif f["filterType"] == "MIN_NOTIONAL":
                    f.update(notional="5")
            symbols.append(entry)
        info["symbols"] = symbols
        return info

    def exchange_info(self) -> dict[str, Any]:
        return {**self._exchange_info, "serverTime": self.server_time_ms()}

    # --------------------------------------------------------------- market data
    def symbol_or_error(self, symbol: str) -> str:
        if symbol not in self.market.series:
            raise SimError(-1121, "Invalid symbol.")
        return symbol

    def ticker_price(self, symbol: str, t: int) -> dict[str, Any]:
        d = self.market.series[symbol].price_decimals
        return {"symbol": symbol, "price": fmt(self.market.price_at(symbol, t), d), "time": t}

    def ticker_24hr(self, symbol: str, t: int) -> dict[str, Any]:
        s = self.market.series[symbol]
        index = self.market.locate(t)[0]
        rows = self.market.hourly_rows(symbol, max(index - 23, 0), index + 1, t)
        o, last = float(rows[0, 1]), float(rows[-1, 4])
        volume = float(rows[:, 5].sum())
        quote = float((rows[:, 5] * rows[:, 4]).sum())  # derived: sum of volume x close
        d, q = s.price_decimals, s.qty_decimals
        return {
            "symbol": symbol, "priceChange": fmt(last - o, d),
            "priceChangePercent": fmt((last - o) / o * 100 if o else 0.0, 3),
            "weightedAvgPrice": fmt(quote / volume if volume else last, d), "lastPrice": fmt(last, d),
            "lastQty": "0", "openPrice": fmt(o, d), "highPrice": fmt(float(rows[:, 2].max()), d),
            "lowPrice": fmt(float(rows[:, 3].min()), d), "volume": fmt(volume, q),
            "quoteVolume": fmt(quote, min(d + q, 8)), "openTime": int(rows[0, 0]), "closeTime": t,
            "firstId": 0, "lastId": 0, "count": 0,
        }

    def kline_rows(self, symbol: str, interval: str, limit: int, *, start: int | None, end: int | None,
                   t: int) -> list[list[Any]]:
        s = self.market.series[symbol]
        d, q = s.price_decimals, s.qty_decimals
        width = INTERVALS_MS[interval]
        return [[open_ms, fmt(o, d), fmt(h, d), fmt(low, d), fmt(c, d), fmt(v, q), open_ms + width - 1,
                 fmt(qv, min(d + q, 8)), 0, "0", "0", "0"]
                for open_ms, o, h, low, c, v, qv in self.market.klines(symbol, interval, t, limit=limit,
                                                                        start_ms=start, end_ms=end)]

    # --------------------------------------------------------------- account views
    def order_json(self, order: SimOrder, *, with_time: bool = False) -> dict[str, Any]:
        s = self.market.series[order.symbol]
        d, q = s.price_decimals, s.qty_decimals
        avg = order.cum_quote / order.executed_qty if order.executed_qty else 0.0
        body: dict[str, Any] = {
            "orderId": order.order_id, "symbol": order.symbol, "status": order.status,
            "clientOrderId": order.client_order_id, "price": fmt(order.price, d), "avgPrice": fmt(avg, d),
            "origQty": fmt(order.orig_qty, q), "executedQty": fmt(order.executed_qty, q),
            "cumQty": fmt(order.executed_qty, q), "cumQuote": fmt(order.cum_quote, min(d + q, 8)),
            "timeInForce": order.time_in_force, "type": order.type, "reduceOnly": order.reduce_only,
            "closePosition": False, "side": order.side, "positionSide": "BOTH", "stopPrice": fmt(0, d),
            "workingType": "CONTRACT_PRICE", "priceProtect": False, "origType": order.type,
            "priceMatch": "NONE", "selfTradePreventionMode": "NONE", "goodTillDate": 0,
            "updateTime": order.update_time,
        }
        if with_time:
            body["time"] = order.time
        return body

    def position_json(self, key: str, symbol: str, t: int) -> dict[str, Any]:
        pos = self.paper.account(key).positions[symbol]
        s = self.market.series[symbol]
        mark = self.market.price_at(symbol, t)
        d, q = s.price_decimals, s.qty_decimals
        unrealized = (mark - pos.entry_price) * pos.amount
        notional = mark * pos.amount
        return {
            "symbol": symbol, "positionSide": "BOTH", "positionAmt": fmt(pos.amount, q),
            "entryPrice": fmt(pos.entry_price, d), "breakEvenPrice": fmt(pos.entry_price, d),
            "markPrice": fmt(mark, 8), "unRealizedProfit": fmt(unrealized, 8), "liquidationPrice": "0",
            "isolatedMargin": "0", "notional": fmt(notional, 8), "marginAsset": "USDT", "isolatedWallet": "0",
            "initialMargin": fmt(abs(notional), 8), "maintMargin": fmt(abs(notional) * 0.004, 8),
            "positionInitialMargin": fmt(abs(notional), 8), "openOrderInitialMargin": "0", "adl": 0,
            "bidNotional": "0", "askNotional": "0", "updateTime": pos.update_time,
        }

    def account_json(self, key: str, t: int) -> dict[str, Any]:
        acct = self.paper.account(key)
        unrealized = self.paper.unrealized(key, t)
        wallet = fmt(acct.wallet, 8)
        margin = fmt(acct.wallet + unrealized, 8)
        return {
            "feeTier": 0, "canTrade": True, "canDeposit": True, "canWithdraw": True, "tradeGroupId": -1,
            "updateTime": 0, "multiAssetsMargin": False, "totalInitialMargin": "0.00000000",
            "totalMaintMargin": "0.00000000", "totalWalletBalance": wallet,
            "totalUnrealizedProfit": fmt(unrealized, 8), "totalMarginBalance": margin,
            "totalPositionInitialMargin": "0.00000000", "totalOpenOrderInitialMargin": "0.00000000",
            "totalCrossWalletBalance": wallet, "totalCrossUnPnl": fmt(unrealized, 8),
            "availableBalance": margin, "maxWithdrawAmount": wallet,
            "assets": [{
                "asset": "USDT", "walletBalance": wallet, "unrealizedProfit": fmt(unrealized, 8),
                "marginBalance": margin, "maintMargin": "0.00000000", "initialMargin": "0.00000000",
                "positionInitialMargin": "0.00000000", "openOrderInitialMargin": "0.00000000",
                "maxWithdrawAmount": wallet, "crossWalletBalance": wallet, "crossUnPnl": fmt(unrealized, 8),
                "availableBalance": margin, "marginAvailable": True, "updateTime": acct.update_time,
            }],
            "positions": [self.position_json(key, sym, t) for sym, p in acct.positions.items() if p.amount],
        }

    # --------------------------------------------------------------- rate limiting
    def charge(self, ip: str, weight: int) -> tuple[int, dict[str, Any], dict[str, str]] | None:
        """Count ``weight`` for ``ip``; an error answer (status, body, headers) when refused."""
        now = time.time()
        state = self.rates.setdefault(ip, RateState())
        start = math.floor(now / self.window_s) * self.window_s
        if start != state.window_start:
            state.window_start, state.used = start, 0
        if state.banned_until > now:
            return self._ban_answer(state, now)
        if state.blocked_until > now:
            state.violations += 1
            if state.violations > self.config.ban_after_429s:
                state.banned_until = now + self.config.ban_s
                return self._ban_answer(state, now)
            return self._limit_answer(state, now)
        state.violations = 0
        if state.used + weight > self.config.weight_limit:
            retry = self.config.retry_after_s
            if retry is None:
                retry = float(math.ceil(start + self.window_s - now))
            state.blocked_until = now + retry
            return self._limit_answer(state, now)
        state.used += weight
        self.stats.weight_total += weight
        return None

    def _limit_answer(self, state: RateState, now: float) -> tuple[int, dict[str, Any], dict[str, str]]:
        self.stats.answered_429 += 1
        body = {"code": -1003, "msg": "Too many requests; current limit of IP is "
                f"{self.config.weight_limit} requests per {self.config.weight_interval_num} "
                f"{self.config.weight_interval.lower()}. Please use WebSocket Streams for live updates to "
                "avoid polling the API."}
        return 429, body, {"Retry-After": _seconds(state.blocked_until - now)}

    def _ban_answer(self, state: RateState, now: float) -> tuple[int, dict[str, Any], dict[str, str]]:
        self.stats.answered_418 += 1
        until_ms = int(state.banned_until * 1000)
        body = {"code": -1003, "msg": f"Way too many requests; IP banned until {until_ms}. Please use the "
                "websocket for live updates to avoid bans."}
        return 418, body, {"Retry-After": _seconds(state.banned_until - now)}

    def used_weight(self, ip: str) -> int:
        state = self.rates.get(ip)
        return state.used if state else 0

    # --------------------------------------------------------------- signed requests
    def authenticate(self, request: Request, params: dict[str, str], raw_query: str) -> str:
        key = request.headers.get(API_KEY_HEADER)
        if not key:
            raise SimError(-2014, "API-key format invalid.", 401)
        secret = self.config.api_keys.get(key)
        if secret is None:
            raise SimError(-2015, "Invalid API-key, IP, or permissions for action.", 401)
        try:
            timestamp = int(params["timestamp"])
        except (KeyError, ValueError):
            raise SimError(-1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed."
                           ) from None
        recv_window = int(params.get("recvWindow", "5000"))
        server = self.server_time_ms()
        if timestamp >= server + 1000:
            raise SimError(-1021, "Timestamp for this request was 1000ms ahead of the server's time.")
        if server - timestamp > recv_window:
            raise SimError(-1021, "Timestamp for this request is outside of the recvWindow.")
        if not verify(raw_query, secret):
            raise SimError(-1022, "Signature for this request is not valid.")
        return key


def _seconds(value: float) -> str:
    value = max(value, 0.0)
    return str(int(value)) if value == int(value) else f"{value:.3f}"


def create_app(sim: Simulator) -> FastAPI:
    app = FastAPI(title="tradingbot Binance USDⓈ-M futures simulator", docs_url=None, redoc_url=None)
    app.state.sim = sim

    @app.exception_handler(SimError)
    async def sim_error(_: Request, exc: SimError) -> JSONResponse:
        return JSONResponse({"code": exc.code, "msg": exc.msg}, status_code=exc.http_status)

    @app.middleware("http")
    async def exchange_envelope(request: Request, call_next: Any) -> Response:
        path = request.url.path
        if path.startswith("/_sim"):
            return await call_next(request)
        stats = sim.stats
        stats.requests_total += 1
        stats.by_endpoint[f"{request.method} {path}"] += 1
        if path in ORDER_PATHS:
            stats.order_requests += 1
        ip = request.client.host if request.client else "unknown"
        params = dict(parse_qsl(request.url.query, keep_blank_values=True))
        weight = request_weight(request.method, path, params)
        refused = sim.charge(ip, weight)
        bad = sim.misbehave if sim.misbehave and path.startswith(sim.misbehave.path_prefix) else None
        if refused is None and bad is not None and bad.mode in ("rate_limit", "ban"):
            state = sim.rates[ip]
            now = time.time()
            if bad.mode == "rate_limit":
                state.blocked_until = now + bad.retry_after_s
                refused = sim._limit_answer(state, now)
            else:
                state.banned_until = now + bad.retry_after_s
                refused = sim._ban_answer(state, now)
            _consume(sim)
        weight_headers = {sim.weight_header: str(sim.used_weight(ip))}
        if refused is not None:
            status, body, headers = refused
            stats.by_status[str(status)] += 1
            return JSONResponse(body, status_code=status, headers={**headers, **weight_headers})
        if sim.config.latency_s:
            await asyncio.sleep(sim.config.latency_s)
        if bad is not None and bad.mode in ("html", "error_5xx"):
            _consume(sim)
            if bad.mode == "html":
                stats.by_status[str(bad.status or 502)] += 1
                html = ("<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway"
                        "</h1></center><hr><center>nginx</center></body></html>")
                return Response(html, status_code=bad.status or 502, media_type="text/html",
                                headers=weight_headers)
            else:
                status = bad.status or 503
                stats.by_status[str(status)] += 1
                return JSONResponse({"code": -1001, "msg": "Internal error; unable to process your request. "
                                     "Please try again."}, status_code=status, headers=weight_headers)
        response = await call_next(request)
        stats.by_status[str(response.status_code)] += 1
        if bad is not None and bad.mode == "delay":
            # The request WAS processed; only the answer is late (a client timing out on an order
            # therefore does not know whether it was placed: the case idempotent orders exist for).
            _consume(sim)
            await asyncio.sleep(bad.delay_s)
        if bad is not None and bad.mode in ("truncated", "missing_fields"):
            _consume(sim)
            raw = b"".join([chunk async for chunk in response.body_iterator])
            if bad.mode == "truncated":
                content = raw[: max(len(raw) // 2, 1)]
            else:
                content = json.dumps(_strip_fields(json.loads(raw))).encode()
            return Response(content, status_code=response.status_code, media_type="application/json",
                            headers=weight_headers)
        response.headers.update(weight_headers)
        if path in ORDER_PATHS:
            response.headers["X-MBX-ORDER-COUNT-10S"] = "1"
            response.headers["X-MBX-ORDER-COUNT-1M"] = "1"
        return response

    # ------------------------------------------------------------------ public
    @app.get("/fapi/v1/ping")
    async def ping() -> dict[str, Any]:
        return {}

    @app.get("/fapi/v1/time")
    async def server_time() -> dict[str, Any]:
        return {"serverTime": sim.server_time_ms()}

    @app.get("/fapi/v1/exchangeInfo")
    async def exchange_info() -> dict[str, Any]:
        return sim.exchange_info()

    @app.get("/fapi/v1/ticker/price")
    async def ticker_price(symbol: str | None = None) -> Any:
        t = sim.now_ms()
        if symbol is not None:
            return sim.ticker_price(sim.symbol_or_error(symbol), t)
        return [sim.ticker_price(s, t) for s in sim.market.series]

    @app.get("/fapi/v1/ticker/24hr")
    async def ticker_24hr(symbol: str | None = None) -> Any:
        t = sim.now_ms()
        if symbol is not None:
            return sim.ticker_24hr(sim.symbol_or_error(symbol), t)
        return [sim.ticker_24hr(s, t) for s in sim.market.series]

    @app.get("/fapi/v1/klines")
    async def klines(symbol: str, interval: str, limit: int = 500, startTime: int | None = None,
                     endTime: int | None = None) -> Any:
        sim.symbol_or_error(symbol)
        if interval not in INTERVALS_MS:
            raise SimError(-1120, "Invalid interval.")
        if not 1 <= limit <= 1500:
            raise SimError(-1130, "Data sent for parameter 'limit' is not valid.")
        return sim.kline_rows(symbol, interval, limit, start=startTime, end=endTime, t=sim.now_ms())

    @app.get("/fapi/v1/depth")
    async def depth(symbol: str, limit: int = 5) -> Any:
        """Top of book only: one level each side at the modelled bid/ask. Quantities are not in the
        data and are reported as the candle's volume share one account may take (derived)."""
        sim.symbol_or_error(symbol)
        t = sim.now_ms()
        bid, ask = sim.paper.bid_ask(symbol, t)
        s = sim.market.series[symbol]
        qty = fmt(float(s.volume[sim.market.locate(t)[0]]) * sim.paper.max_volume_fraction, s.qty_decimals)
        d = s.price_decimals
        return {"lastUpdateId": t, "E": t, "T": t, "bids": [[fmt(bid, d), qty]], "asks": [[fmt(ask, d), qty]]}

    # ------------------------------------------------------------------ signed
    async def signed_params(request: Request) -> tuple[str, dict[str, str]]:
        raw = request.url.query
        body = (await request.body()).decode()
        if body and "signature=" not in raw:
            raw = f"{raw}&{body}" if raw else body
        params = dict(parse_qsl(raw, keep_blank_values=True))
        key = sim.authenticate(request, params, raw)
        return key, params

    @app.get("/fapi/v2/account")
    async def account(request: Request) -> Any:
        key, _ = await signed_params(request)
        t = sim.now_ms()
        sim.paper.sync(key, t)
        return sim.account_json(key, t)

    @app.get("/fapi/v3/positionRisk")
    async def position_risk(request: Request) -> Any:
        key, params = await signed_params(request)
        t = sim.now_ms()
        sim.paper.sync(key, t)
        symbol = params.get("symbol")
        if symbol:
            sim.symbol_or_error(symbol)
        acct = sim.paper.account(key)
        return [sim.position_json(key, s, t) for s, p in acct.positions.items()
                if p.amount and (not symbol or s == symbol)]

    @app.post("/fapi/v1/order")
    async def new_order(request: Request) -> Any:
        key, params = await signed_params(request)
        sim.symbol_or_error(params.get("symbol", ""))
        order = sim.paper.new_order(key, params, sim.now_ms())
        return sim.order_json(order)

    @app.get("/fapi/v1/order")
    async def query_order(request: Request) -> Any:
        key, params = await signed_params(request)
        symbol = sim.symbol_or_error(params.get("symbol", ""))
        sim.paper.sync(key, sim.now_ms())
        order = sim.paper.find(key, symbol, params.get("orderId"), params.get("origClientOrderId"))
        return sim.order_json(order, with_time=True)

    @app.delete("/fapi/v1/order")
    async def cancel_order(request: Request) -> Any:
        key, params = await signed_params(request)
        symbol = sim.symbol_or_error(params.get("symbol", ""))
        order = sim.paper.cancel(key, symbol, params.get("orderId"), params.get("origClientOrderId"), sim.now_ms())
        return sim.order_json(order)

    @app.get("/fapi/v1/openOrders")
    async def open_orders(request: Request) -> Any:
        key, params = await signed_params(request)
        symbol = params.get("symbol") or None
        if symbol:
            sim.symbol_or_error(symbol)
        return [sim.order_json(o, with_time=True) for o in sim.paper.open_orders(key, symbol, sim.now_ms())]

    # ------------------------------------------------------------------ simulator-only
    @app.get("/_sim/stats")
    async def stats() -> dict[str, Any]:
        st = sim.stats
        return {"requests_total": st.requests_total, "by_endpoint": dict(st.by_endpoint),
                "by_status": dict(st.by_status), "weight_total": st.weight_total,
                "answered_429": st.answered_429, "answered_418": st.answered_418,
                "order_requests": st.order_requests, "misbehaved": st.misbehaved,
                "weight_used_window": {ip: r.used for ip, r in sim.rates.items()},
                "sim_time_ms": sim.now_ms()}

    @app.post("/_sim/reset")
    async def reset() -> dict[str, Any]:
        """Forget counters, rate-limit state, bans and misbehaviour (accounts are kept)."""
        sim.stats = Stats()
        sim.rates.clear()
        sim.misbehave = None
        return {"ok": True}

    @app.get("/_sim/clock")
    async def get_clock() -> dict[str, Any]:
        return {"sim_time_ms": sim.now_ms(), "data_start_ms": sim.market.first_open,
                "data_end_ms": sim.market.end_ms}

    @app.post("/_sim/clock")
    async def set_clock(body: ClockRequest) -> dict[str, Any]:
        if body.time_ms is not None:
            sim.clock.set(body.time_ms)
        if body.advance_ms is not None:
            sim.clock.set(sim.clock.now_ms() + body.advance_ms)
        if body.speed is not None and isinstance(sim.clock, ReplayClock):
            sim.clock.speed = body.speed
        return {"sim_time_ms": sim.now_ms()}

    @app.post("/_sim/misbehave")
    async def misbehave(body: MisbehaveRequest) -> dict[str, Any]:
        sim.misbehave = body if body.count > 0 else None
        return {"ok": True}

    return app


def _consume(sim: Simulator) -> None:
    sim.stats.misbehaved += 1
    if sim.misbehave is not None:
        sim.misbehave.count -= 1
        if sim.misbehave.count <= 0:
            sim.misbehave = None


def _strip_fields(body: Any) -> Any:
    """Drop the fields a parser needs most: objects lose their price, id and time keys, kline rows
    are cut to three items."""
    drop = {"price", "lastPrice", "serverTime", "orderId", "symbols", "rateLimits", "totalWalletBalance",
            "positionAmt"}
    if isinstance(body, list):
        return [row[:3] if isinstance(row, list) else _strip_fields(row) for row in body]
    if isinstance(body, dict):
        return {k: v for k, v in body.items() if k not in drop}
    return body
