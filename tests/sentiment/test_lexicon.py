"""The crypto lexicon on top of VADER: pure, no servers."""

from __future__ import annotations

import math

import pytest
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from tradingbot_agents.sentiment.lexicon import CRYPTO_LEXICON, PHRASES, build_analyzer, normalize, score
from tradingbot_agents.sentiment.scoring import MARKET, score_round
from tradingbot_agents.sentiment.symbols import SymbolMapper


@pytest.fixture(scope="module")
def analyzer() -> SentimentIntensityAnalyzer:
    return build_analyzer()


def vader_normalize(total: float, alpha: float = 15.0) -> float:
    """VADER's compound: x / sqrt(x² + alpha) (Hutto & Gilbert 2014, vaderSentiment.normalize)."""
    return total / math.sqrt(total * total + alpha)


def test_single_words_score_their_documented_valence(analyzer: SentimentIntensityAnalyzer) -> None:
    # One lexicon word alone: compound is exactly VADER's normalisation of its valence.
    for word in ("rekt", "moon", "bullish", "rugpull", "hodl"):
        assert score(analyzer, word) == pytest.approx(round(vader_normalize(CRYPTO_LEXICON[word]), 4), abs=1e-4)


def test_crypto_slang_moves_scores_that_stock_vader_leaves_neutral(analyzer: SentimentIntensityAnalyzer) -> None:
    stock = SentimentIntensityAnalyzer()
    text = "BTC is bullish, hodl, we go to the moon"
    assert stock.polarity_scores(text)["compound"] == 0.0
    assert score(analyzer, text) > 0.5
    bad = "Got rekt, the dev did a rug pull and I got liquidated"
    assert stock.polarity_scores(bad)["compound"] == 0.0
    assert score(analyzer, bad) < -0.7


def test_vader_rules_still_apply_to_crypto_words(analyzer: SentimentIntensityAnalyzer) -> None:
    # Negation flips, capitals and "!" intensify: the reason VADER was chosen for social text.
    assert score(analyzer, "not bullish") < 0 < score(analyzer, "bullish")
    assert score(analyzer, "BULLISH!!!") > score(analyzer, "bullish")


def test_phrases_fold_to_one_token() -> None:
    assert normalize("New All-Time High for ETH") == "New ath for ETH"
    assert normalize("another Rug Pull") == "another rugpull"
    assert all(token in CRYPTO_LEXICON for token in PHRASES.values())


def test_scores_stay_in_range(analyzer: SentimentIntensityAnalyzer) -> None:
    text = " ".join(CRYPTO_LEXICON) * 3
    assert -1.0 <= score(analyzer, text) <= 1.0


def test_score_round_maps_texts_to_symbols_and_market(analyzer: SentimentIntensityAnalyzer) -> None:
    texts = {"reddit": ["Bitcoin is bullish", "ETH and BTC got rekt", "lunch was nice"], "x": []}
    result = score_round(analyzer, SymbolMapper(), texts)
    values = [score(analyzer, t) for t in texts["reddit"]]
    assert result["reddit"][MARKET] == values  # every text counts for the overall mood
    assert result["reddit"]["BTCUSDT"] == values[:2]
    assert result["reddit"]["ETHUSDT"] == [values[1]]
    assert result["x"] == {}
