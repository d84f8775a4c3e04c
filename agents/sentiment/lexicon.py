"""Text scoring: VADER extended with crypto and trading slang.

Why VADER: it is tuned for short social-media text (capitals, "!!!", emoji, negation, "but"), which
is what Reddit titles, tweets and headlines are, and it ships its lexicon inside the package, so
scoring works offline and is reproducible. Its stock lexicon does not know the words that carry the
mood of a crypto thread ("rekt", "hodl", "moon", "rug"), or scores them as general English ("dump"
as in rubbish): :data:`CRYPTO_LEXICON` adds or overrides those.

Valences use VADER's own scale (−4 … +4, where its stock words sit mostly within ±3: "good" 1.9,
"great" 3.1, "bad" −2.5, "scam" −2.7), so a crypto word weighs about what its plain-English
equivalent weighs. Multi-word phrases are folded into one token before scoring (VADER splits on
whitespace), see :data:`PHRASES`.

Scoring is CPU work (≈50 µs per short text); the agent runs it in a worker thread so a round of a
few thousand texts never stalls the event loop.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

# word → valence on VADER's −4…+4 scale. Each value is a judgement, written down so it can be argued
# with; grouped by the plain-English word it stands next to.
CRYPTO_LEXICON: dict[str, float] = {
    # Strongly positive: price euphoria ("great" 3.1, "win" 2.8).
    "moon": 2.5, "mooning": 2.8, "moonshot": 2.3, "ath": 2.5, "lambo": 2.0, "wagmi": 2.3,
    # Positive: market direction and conviction ("good" 1.9, "gains" 1.4).
    "bullish": 2.5, "bull": 1.5, "bulls": 1.5, "rally": 2.0, "rallies": 2.0, "rallying": 2.0,
    "surge": 2.0, "surges": 2.0, "surging": 2.0, "soar": 2.2, "soars": 2.2, "soaring": 2.2,
    "breakout": 1.8, "pump": 1.5, "pumping": 1.8, "pumped": 1.5, "hodl": 1.5, "hodling": 1.5,
    "btfd": 1.5, "adoption": 1.5, "uptrend": 1.8, "outperform": 1.8,
    # Mildly negative: ordinary downside ("losses" −1.7, "bad" −2.5).
    "bearish": -2.5, "bear": -1.5, "bears": -1.5, "dip": -1.0, "dips": -1.0, "downtrend": -1.8,
    "dump": -2.0, "dumping": -2.3, "dumped": -2.0, "fud": -1.8, "fomo": -0.8, "shill": -1.5,
    "shilling": -1.5, "bagholder": -2.0, "bagholders": -2.0, "underperform": -1.8,
    "plunge": -2.5, "plunges": -2.5, "plunging": -2.5, "plummet": -2.7, "plummets": -2.7,
    "crashed": -2.2, "tank": -1.8, "tanking": -2.2, "tanked": -2.2, "selloff": -2.0,
    # Strongly negative: loss of funds ("scam" −2.7, "bankrupt" −2.6).
    "rekt": -3.0, "rug": -3.0, "rugged": -3.0, "rugpull": -3.5, "liquidated": -2.8,
    "liquidation": -2.2, "liquidations": -2.2, "hack": -2.5, "hacked": -3.0, "exploit": -2.5,
    "exploited": -3.0, "drained": -2.8, "insolvent": -3.0, "insolvency": -3.0, "delisted": -2.5,
    "delisting": -2.2, "depeg": -2.8, "depegged": -3.0, "ngmi": -2.3, "ponzi": -3.0,
}

# Phrases folded to one lexicon token before scoring (lower-case, whitespace-normalised).
PHRASES: dict[str, str] = {
    "all time high": "ath", "all-time high": "ath", "all-time-high": "ath",
    "to the moon": "moon", "rug pull": "rugpull", "rug-pull": "rugpull", "rug pulled": "rugged",
    "buy the dip": "btfd", "sell-off": "selloff", "sell off": "selloff", "de-peg": "depeg",
    "de-pegged": "depegged",
}
_PHRASE_RE = re.compile("|".join(re.escape(p) for p in sorted(PHRASES, key=len, reverse=True)), re.IGNORECASE)


def normalize(text: str) -> str:
    """Fold known multi-word phrases into their lexicon token; everything else is left for VADER
    (which reads capitals and punctuation as intensity, so the text is not lower-cased)."""
    return _PHRASE_RE.sub(lambda m: PHRASES[m.group(0).lower()], text)


def build_analyzer(extra: dict[str, float] | None = None) -> SentimentIntensityAnalyzer:
    """A VADER analyzer with the crypto lexicon merged in (our values win over VADER's)."""
    analyzer = SentimentIntensityAnalyzer()
    analyzer.lexicon.update(CRYPTO_LEXICON)
    if extra:
        analyzer.lexicon.update(extra)
    return analyzer


def score(analyzer: SentimentIntensityAnalyzer, text: str) -> float:
    """VADER's compound score of one text, in [−1, 1]."""
    return float(analyzer.polarity_scores(normalize(text))["compound"])


def score_many(analyzer: SentimentIntensityAnalyzer, texts: Iterable[str]) -> list[float]:
    return [score(analyzer, text) for text in texts]
