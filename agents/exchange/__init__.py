"""Binance USDⓈ-M futures REST access: client, rate limiting, circuit breaking, typed errors.

The simulator (:mod:`tradingbot_agents.exchange.simulator`) is imported separately so that an agent
that only trades never loads FastAPI.
"""

from tradingbot_agents.exchange.breaker import BreakerState, CircuitBreaker
from tradingbot_agents.exchange.client import ExchangeClient, new_client_order_id
from tradingbot_agents.exchange.errors import (
    CircuitOpen,
    ExchangeAPIError,
    ExchangeConnectionError,
    ExchangeError,
    ExchangeTimeout,
    InvalidSignature,
    InvalidSymbol,
    IPBanned,
    MalformedResponse,
    RateLimited,
    ServerError,
    TimestampOutsideRecvWindow,
    TooManyRequests,
    UnknownOrder,
)
from tradingbot_agents.exchange.limiter import (
    InMemoryWeightBudget,
    RateLimitConfig,
    RateLimiter,
    WeightBudget,
)
from tradingbot_agents.exchange.models import Account, ExchangeInfo, Kline, Order, Position, Ticker, Ticker24h
from tradingbot_agents.exchange.redis_budget import RedisWeightBudget

__all__ = [
    "Account", "BreakerState", "CircuitBreaker", "CircuitOpen", "ExchangeAPIError", "ExchangeClient",
    "ExchangeConnectionError", "ExchangeError", "ExchangeInfo", "ExchangeTimeout", "IPBanned",
    "InMemoryWeightBudget", "InvalidSignature", "InvalidSymbol", "Kline", "MalformedResponse", "Order",
    "Position", "RateLimitConfig", "RateLimited", "RateLimiter", "RedisWeightBudget", "ServerError",
    "Ticker", "Ticker24h",
    "TimestampOutsideRecvWindow", "TooManyRequests", "UnknownOrder", "WeightBudget", "new_client_order_id",
]
