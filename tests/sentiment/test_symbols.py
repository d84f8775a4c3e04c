"""Text → symbol mapping: pure."""

from __future__ import annotations

import pytest

from tradingbot_agents.sentiment.symbols import COINS, SymbolMapper

mapper = SymbolMapper()

KLINES_SYMBOLS = {"BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "XRPUSDT", "DOGEUSDT", "ADAUSDT", "AVAXUSDT",
                  "LINKUSDT", "DOTUSDT", "LTCUSDT", "BCHUSDT", "ATOMUSDT", "NEARUSDT", "UNIUSDT", "AAVEUSDT",
                  "FILUSDT", "ETCUSDT", "SUIUSDT", "APTUSDT"}


def test_table_covers_the_twenty_symbols_of_the_data_set() -> None:
    assert {coin.symbol for coin in COINS} == KLINES_SYMBOLS
    for coin in COINS:  # every coin is reachable by its cashtag and by its pair
        assert mapper.symbols_in(f"watching ${coin.ticker.lower()} today") == {coin.symbol}
        assert mapper.symbols_in(f"long {coin.ticker}/USDT") == {coin.symbol}


@pytest.mark.parametrize(("text", "expected"), [
    ("Bitcoin to the moon!", {"BTCUSDT"}),
    ("BTC and ETH both up", {"BTCUSDT", "ETHUSDT"}),
    ("btcusdt perp funding", {"BTCUSDT"}),
    ("Solana's outage again", {"SOLUSDT"}),
    ("#Blockchain #Cardano #A…", {"ADAUSDT"}),
    # longer names win over the names they contain
    ("Bitcoin Cash forks again", {"BCHUSDT"}),
    ("Ethereum Classic 51% attack", {"ETCUSDT"}),
    # tickers that are English words need a cashtag, a pair or the coin's name
    ("LINK IN BIO, NEAR ME, DOT THE I", set()),
    ("$LINK and $near pumping", {"LINKUSDT", "NEARUSDT"}),
    ("Chainlink oracles", {"LINKUSDT"}),
    ("bread, milk, etc.", set()),
    # ordinary words that are also coin names do not count without a qualifier
    ("An avalanche buried the road; a ripple effect", set()),
    ("Avalanche network upgrade", {"AVAXUSDT"}),
    # lower-case bare tickers are too ambiguous (Spanish "sol")
    ("el sol brilla", set()),
])
def test_mapping(text: str, expected: set[str]) -> None:
    assert mapper.symbols_in(text) == expected
