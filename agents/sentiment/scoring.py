"""Pure scoring of one round: texts per source → text scores per source and symbol.

Every text also counts for :data:`MARKET`, the overall mood of everything read, whether or not it
names a coin; consumers that want a general signal (or a fallback for a coin nobody talks about)
read ``sentiment.MARKET``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from tradingbot_agents.sentiment.lexicon import score
from tradingbot_agents.sentiment.symbols import SymbolMapper

MARKET = "MARKET"


def score_round(
    analyzer: SentimentIntensityAnalyzer, mapper: SymbolMapper, texts: Mapping[str, Sequence[str]]
) -> dict[str, dict[str, list[float]]]:
    """``texts[source]`` → ``result[source][symbol]`` = the scores of that source's texts naming the
    symbol (and ``result[source][MARKET]`` = all of them). CPU-bound: run it in a thread."""
    result: dict[str, dict[str, list[float]]] = {}
    for source, items in texts.items():
        by_symbol: dict[str, list[float]] = {}
        for text in items:
            value = score(analyzer, text)
            by_symbol.setdefault(MARKET, []).append(value)
            for symbol in mapper.symbols_in(text):
                by_symbol.setdefault(symbol, []).append(value)
        result[source] = by_symbol
    return result
