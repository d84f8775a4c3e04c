"""Weighted aggregation with redistribution and EMA smoothing: pure, exact numbers."""

from __future__ import annotations

import pytest

from tradingbot_agents.sentiment.aggregate import SmoothedHistory, aggregate, effective_weights, ema

WEIGHTS = {"reddit": 0.6, "news": 0.3, "x": 0.1}


def test_all_sources_up_keep_their_weights() -> None:
    assert effective_weights(WEIGHTS, ["reddit", "news", "x"]) == pytest.approx(WEIGHTS)


def test_a_failed_source_weight_goes_to_the_others_in_proportion() -> None:
    w = effective_weights(WEIGHTS, ["reddit", "x"])  # news failed
    assert w == pytest.approx({"reddit": 0.6 / 0.7, "x": 0.1 / 0.7})
    assert w["reddit"] == pytest.approx(0.857142857) and w["x"] == pytest.approx(0.142857143)
    assert sum(w.values()) == pytest.approx(1.0)


def test_only_one_source_left_takes_everything_and_zero_weights_count_equally() -> None:
    assert effective_weights(WEIGHTS, ["news"]) == {"news": 1.0}
    assert effective_weights({"a": 0.0, "b": 0.0}, ["a", "b"]) == {"a": 0.5, "b": 0.5}
    assert effective_weights(WEIGHTS, []) == {}


def test_aggregate_per_symbol_over_the_sources_that_have_data() -> None:
    scores = {
        "reddit": {"BTCUSDT": [0.5, 0.7], "ETHUSDT": [-0.4]},
        "news": {"BTCUSDT": [-0.3]},
        "x": {"BTCUSDT": [0.9], "ETHUSDT": [0.2, 0.0]},
    }
    result = aggregate(scores, WEIGHTS)
    btc = result["BTCUSDT"]
    assert btc.sources == pytest.approx({"reddit": 0.6, "news": -0.3, "x": 0.9})
    assert btc.weights == pytest.approx(WEIGHTS)
    assert btc.raw == pytest.approx(0.6 * 0.6 + 0.3 * -0.3 + 0.1 * 0.9)  # 0.36
    assert btc.samples == 4
    eth = result["ETHUSDT"]  # news said nothing about ETH: its 0.3 goes to reddit and x
    assert eth.weights == pytest.approx({"reddit": 6 / 7, "x": 1 / 7})
    assert eth.raw == pytest.approx(6 / 7 * -0.4 + 1 / 7 * 0.1)  # -0.328571…
    assert eth.samples == 3


def test_failed_source_is_simply_absent_and_redistributed() -> None:
    up = aggregate({"reddit": {"BTCUSDT": [0.5]}, "news": {"BTCUSDT": [-0.5]}}, WEIGHTS)["BTCUSDT"]
    assert up.raw == pytest.approx((0.6 * 0.5 + 0.3 * -0.5) / 0.9)
    down = aggregate({"reddit": {"BTCUSDT": [0.5]}, "news": {}}, WEIGHTS)["BTCUSDT"]
    assert down.raw == pytest.approx(0.5) and down.weights == {"reddit": 1.0}


def test_ema_numbers() -> None:
    assert ema([0.5], 0.3) == 0.5
    assert ema([0.5, -0.5], 0.3) == pytest.approx(0.3 * -0.5 + 0.7 * 0.5)  # 0.2
    assert ema([0.5, -0.5, 1.0], 0.3) == pytest.approx(0.3 * 1.0 + 0.7 * 0.2)  # 0.44
    assert ema([0.2, 0.4], 1.0) == 0.4  # alpha 1: no smoothing


def test_history_is_bounded_and_old_scores_drop_out() -> None:
    history = SmoothedHistory(alpha=0.5, size=3)
    assert history.add("BTCUSDT", 1.0) == 1.0
    assert history.add("BTCUSDT", 0.0) == pytest.approx(0.5)
    assert history.add("BTCUSDT", 0.0) == pytest.approx(0.25)
    # the 1.0 leaves the window: EMA of [0, 0, 0] is 0, not 0.125
    assert history.add("BTCUSDT", 0.0) == 0.0
    assert history.history("BTCUSDT") == [0.0, 0.0, 0.0]
    assert history.smoothed("ETHUSDT") is None
    with pytest.raises(ValueError):
        SmoothedHistory(alpha=0.0, size=3)
