"""Parsed exchange responses: pydantic models at the boundary.

Binance sends prices and quantities as strings with per-field decimals. Market data become
``float`` (analysis code does arithmetic on them); order, position and balance amounts become
``Decimal`` (money is compared and summed exactly). Unknown fields are ignored so a new field on
the exchange never breaks parsing; a *missing* required field raises, and the client turns that
into :class:`MalformedResponse`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)


class ServerTime(_Model):
    server_time: int = Field(alias="serverTime")


class RateLimit(_Model):
    rate_limit_type: str = Field(alias="rateLimitType")
    interval: str
    interval_num: int = Field(alias="intervalNum")
    limit: int


class SymbolInfo(_Model):
    symbol: str
    status: str
    base_asset: str = Field(alias="baseAsset")
    quote_asset: str = Field(alias="quoteAsset")
    price_precision: int = Field(alias="pricePrecision")
    quantity_precision: int = Field(alias="quantityPrecision")
    filters: list[dict[str, Any]] = Field(default_factory=list)

    def filter(self, filter_type: str) -> dict[str, Any] | None:
        return next((f for f in self.filters if f.get("filterType") == filter_type), None)


class ExchangeInfo(_Model):
    server_time: int = Field(alias="serverTime")
    rate_limits: list[RateLimit] = Field(alias="rateLimits")
    symbols: list[SymbolInfo]

    def symbol(self, name: str) -> SymbolInfo | None:
        return next((s for s in self.symbols if s.symbol == name), None)


class Ticker(_Model):
    symbol: str
    price: float
    time: int | None = None


class Ticker24h(_Model):
    symbol: str
    last_price: float = Field(alias="lastPrice")
    open_price: float = Field(alias="openPrice")
    high_price: float = Field(alias="highPrice")
    low_price: float = Field(alias="lowPrice")
    price_change_percent: float = Field(alias="priceChangePercent")
    volume: float
    quote_volume: float = Field(alias="quoteVolume")
    open_time: int = Field(alias="openTime")
    close_time: int = Field(alias="closeTime")


class Kline(_Model):
    """One kline row: ``[openTime, "open", "high", "low", "close", "volume", closeTime,
    "quoteVolume", trades, "takerBuyBase", "takerBuyQuote", "ignore"]``."""

    open_time: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    close_time: int
    quote_volume: float
    trades: int

    @classmethod
    def from_row(cls, row: Any) -> Kline:
        if not isinstance(row, list) or len(row) < 9:
            raise ValueError(f"kline row must be a list of 12 items, got {type(row).__name__}")
        return cls(open_time=row[0], open=row[1], high=row[2], low=row[3], close=row[4], volume=row[5],
                   close_time=row[6], quote_volume=row[7], trades=row[8])


class Order(_Model):
    order_id: int = Field(alias="orderId")
    symbol: str
    status: str
    client_order_id: str = Field(alias="clientOrderId")
    price: Decimal
    avg_price: Decimal = Field(alias="avgPrice")
    orig_qty: Decimal = Field(alias="origQty")
    executed_qty: Decimal = Field(alias="executedQty")
    cum_quote: Decimal = Field(default=Decimal(0), alias="cumQuote")
    type: str
    side: str
    time_in_force: str = Field(alias="timeInForce")
    reduce_only: bool = Field(default=False, alias="reduceOnly")
    update_time: int = Field(alias="updateTime")


class AccountAsset(_Model):
    asset: str
    wallet_balance: Decimal = Field(alias="walletBalance")
    unrealized_profit: Decimal = Field(alias="unrealizedProfit")
    available_balance: Decimal = Field(alias="availableBalance")


class Account(_Model):
    total_wallet_balance: Decimal = Field(alias="totalWalletBalance")
    total_unrealized_profit: Decimal = Field(alias="totalUnrealizedProfit")
    total_margin_balance: Decimal = Field(alias="totalMarginBalance")
    available_balance: Decimal = Field(alias="availableBalance")
    assets: list[AccountAsset]


class Position(_Model):
    symbol: str
    position_side: str = Field(alias="positionSide")
    position_amt: Decimal = Field(alias="positionAmt")
    entry_price: Decimal = Field(alias="entryPrice")
    mark_price: Decimal = Field(alias="markPrice")
    unrealized_profit: Decimal = Field(alias="unRealizedProfit")
    notional: Decimal = Decimal(0)
    update_time: int = Field(alias="updateTime")
