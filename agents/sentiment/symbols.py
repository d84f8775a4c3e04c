"""Which tradable symbol a text talks about.

A text counts for a symbol when it names the coin ("Bitcoin", "Solana"), writes its ticker in
capitals as a word ("BTC"), with a cashtag ("$btc", "$BTC") or as a pair ("BTCUSDT", "btc/usdt",
"ETH-PERP"). Some tickers are also ordinary words or abbreviations (LINK, DOT, NEAR, UNI, ATOM, ETC,
FIL, APT, SUI): for those a bare capitalised word is not enough (headlines in capitals would map
"NEAR" and "LINK" everywhere), only the cashtag, the pair or the coin's name counts. Likewise names
that are ordinary words ("avalanche", "ripple", "cosmos") need a qualifier ("Avalanche network").

Longer matches win: "Bitcoin Cash" counts for BCH only, "Ethereum Classic" for ETC only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Coin:
    symbol: str  # the exchange symbol, e.g. "BTCUSDT"
    ticker: str  # the base asset, e.g. "BTC"
    names: tuple[str, ...] = ()  # matched case-insensitively as whole words
    ambiguous_ticker: bool = False  # a bare "TICKER" is a common word: require $ or a pair form


# The 20 symbols of data/klines/ (Binance USDⓈ-M perpetuals quoted in USDT).
COINS: tuple[Coin, ...] = (
    Coin("BTCUSDT", "BTC", ("bitcoin", "bitcoins", "xbt")),
    Coin("ETHUSDT", "ETH", ("ethereum", "ether")),
    Coin("BNBUSDT", "BNB", ("binance coin",)),
    Coin("SOLUSDT", "SOL", ("solana",)),
    Coin("XRPUSDT", "XRP", ("xrp ledger",)),
    Coin("DOGEUSDT", "DOGE", ("dogecoin",)),
    Coin("ADAUSDT", "ADA", ("cardano",)),
    Coin("AVAXUSDT", "AVAX", ("avalanche network", "avalanche blockchain")),
    Coin("LINKUSDT", "LINK", ("chainlink",), ambiguous_ticker=True),
    Coin("DOTUSDT", "DOT", ("polkadot",), ambiguous_ticker=True),
    Coin("LTCUSDT", "LTC", ("litecoin",)),
    Coin("BCHUSDT", "BCH", ("bitcoin cash",)),
    Coin("ATOMUSDT", "ATOM", ("cosmos hub", "cosmos network"), ambiguous_ticker=True),
    Coin("NEARUSDT", "NEAR", ("near protocol",), ambiguous_ticker=True),
    Coin("UNIUSDT", "UNI", ("uniswap",), ambiguous_ticker=True),
    Coin("AAVEUSDT", "AAVE", ("aave",)),
    Coin("FILUSDT", "FIL", ("filecoin",), ambiguous_ticker=True),
    Coin("ETCUSDT", "ETC", ("ethereum classic",), ambiguous_ticker=True),
    Coin("SUIUSDT", "SUI", ("sui network", "sui blockchain"), ambiguous_ticker=True),
    Coin("APTUSDT", "APT", ("aptos",), ambiguous_ticker=True),
)

_QUOTES = "USDT|USDC|USD|PERP|BUSD"


def _words(name: str) -> str:
    """A multi-word name matching any run of spaces or hyphens between its words."""
    return r"[\s\-]+".join(re.escape(word) for word in name.split())


@dataclass
class SymbolMapper:
    """Finds the symbols a text mentions. Built once; :meth:`symbols_in` is pure and thread-safe."""

    coins: tuple[Coin, ...] = COINS
    _pattern: re.Pattern[str] = field(init=False, repr=False)
    _by_group: dict[str, str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        alternatives: list[tuple[int, str]] = []  # (match length hint, pattern) – longest first
        self._by_group = {}
        for index, coin in enumerate(self.coins):
            group = f"c{index}"
            self._by_group[group] = coin.symbol
            t = re.escape(coin.ticker)
            parts = [
                rf"(?i:\${t})",  # cashtag
                rf"(?i:{t}[/\-]?(?:{_QUOTES}))",  # pair: BTCUSDT, btc/usdt, ETH-PERP
                *(rf"(?i:{_words(name)})" for name in coin.names),
            ]
            if not coin.ambiguous_ticker:
                parts.append(t)  # bare capitalised ticker (case-sensitive)
            for part in parts:
                alternatives.append((len(part), rf"(?P<{group}_{len(alternatives)}>{part})"))
        alternatives.sort(key=lambda item: item[0], reverse=True)
        body = "|".join(pattern for _, pattern in alternatives)
        self._pattern = re.compile(rf"(?<![\w$])(?:{body})(?!\w)")

    def symbols_in(self, text: str) -> set[str]:
        found: set[str] = set()
        for match in self._pattern.finditer(text):
            group = match.lastgroup or ""
            found.add(self._by_group[group.rsplit("_", 1)[0]])
        return found

    @property
    def symbols(self) -> list[str]:
        return [coin.symbol for coin in self.coins]
