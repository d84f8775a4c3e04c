"""The consumer side of market data: what every other agent uses instead of calling the exchange.

``MarketDataClient`` declares the agent's interest (renewed periodically, so it lapses if the agent
dies), keeps the latest pushed ticker and klines per symbol, and asks the data agents
(request/reply) when it needs something now.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable

from nats.aio.msg import Msg

from tradingbot_agents.bus import Bus
from tradingbot_agents.messages import (
    KlineData,
    KlinesReply,
    KlinesRequest,
    MarketDataInterest,
    Subjects,
    SymbolsReply,
    SymbolsRequest,
    TickerData,
    TickerReply,
    TickerRequest,
)


class MarketDataUnavailable(Exception):
    """The data agents answered, but without the data (the exchange failed or the symbol is unknown)."""


class MarketDataClient:
    def __init__(self, bus: Bus, subjects: Subjects, consumer_id: str, *, renew_every: float = 5.0) -> None:
        self.bus = bus
        self.subjects = subjects
        self.consumer_id = consumer_id
        self.renew_every = renew_every
        self.symbols: list[str] = []
        self.intervals: list[str] = []
        self.tickers: dict[str, TickerData] = {}
        self.klines_pushed: dict[tuple[str, str], KlineData] = {}
        self._renewer: asyncio.Task[None] | None = None
        self._subscribed = False

    async def want(self, symbols: Iterable[str], intervals: Iterable[str] = ()) -> None:
        """Declare (or change) what this consumer needs pushed; starts the renewals."""
        self.symbols = sorted(set(symbols))
        self.intervals = sorted(set(intervals))
        if not self._subscribed:
            await self.bus.subscribe(f"{self.subjects.prefix}.md.ticker.*", TickerData, self._on_ticker)
            await self.bus.subscribe(f"{self.subjects.prefix}.md.kline.>", KlineData, self._on_kline)
            self._subscribed = True
        await self._announce()
        if self._renewer is None:
            self._renewer = asyncio.create_task(self._renew_loop(), name=f"md-interest:{self.consumer_id}")

    async def _announce(self) -> None:
        await self.bus.publish(self.subjects.md_interest, MarketDataInterest(
            consumer_id=self.consumer_id, symbols=self.symbols, intervals=self.intervals))

    async def _renew_loop(self) -> None:
        while True:
            await asyncio.sleep(self.renew_every)
            if self.bus.connected:
                await self._announce()

    async def _on_ticker(self, ticker: TickerData, _msg: Msg) -> None:
        if ticker.symbol in self.symbols:
            self.tickers[ticker.symbol] = ticker

    async def _on_kline(self, data: KlineData, _msg: Msg) -> None:
        if data.symbol in self.symbols and data.interval in self.intervals:
            self.klines_pushed[(data.symbol, data.interval)] = data

    async def ticker(self, symbol: str, *, timeout: float = 2.0) -> TickerData:
        reply = await self.bus.request(self.subjects.md_get_ticker, TickerRequest(symbol=symbol), TickerReply,
                                       timeout=timeout)
        if not reply.ok or reply.ticker is None:
            raise MarketDataUnavailable(reply.error or "no ticker")
        return reply.ticker

    async def klines(self, symbol: str, interval: str = "1h", limit: int = 100, *,
                     timeout: float = 5.0) -> KlineData:
        reply = await self.bus.request(self.subjects.md_get_klines,
                                       KlinesRequest(symbol=symbol, interval=interval, limit=limit),
                                       KlinesReply, timeout=timeout)
        if not reply.ok or reply.klines is None:
            raise MarketDataUnavailable(reply.error or "no klines")
        return reply.klines

    async def list_symbols(self, quote_asset: str | None = None, *, timeout: float = 5.0) -> list[str]:
        """Tradable symbols (status TRADING), optionally only those quoted in ``quote_asset``."""
        reply = await self.bus.request(self.subjects.md_get_symbols, SymbolsRequest(quote_asset=quote_asset),
                                       SymbolsReply, timeout=timeout)
        if not reply.ok:
            raise MarketDataUnavailable(reply.error or "no symbols")
        return reply.symbols

    async def close(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
            self._renewer = None
