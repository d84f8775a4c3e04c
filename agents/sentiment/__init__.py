"""Sentiment: sources → VADER + crypto lexicon → per-symbol weighted, smoothed scores on the bus.

The agent class lives in :mod:`tradingbot_agents.sentiment.agent` (imported lazily by the catalog);
the pure parts are importable without NATS or HTTP. (``aggregate()`` is not re-exported here: the
name would shadow the :mod:`~tradingbot_agents.sentiment.aggregate` module.)
"""

from tradingbot_agents.sentiment.aggregate import SmoothedHistory, SymbolAggregate, effective_weights, ema
from tradingbot_agents.sentiment.lexicon import CRYPTO_LEXICON, build_analyzer, score
from tradingbot_agents.sentiment.scoring import MARKET, score_round
from tradingbot_agents.sentiment.symbols import COINS, SymbolMapper

__all__ = [
    "COINS",
    "CRYPTO_LEXICON",
    "MARKET",
    "SmoothedHistory",
    "SymbolAggregate",
    "SymbolMapper",
    "build_analyzer",
    "effective_weights",
    "ema",
    "score",
    "score_round",
]
