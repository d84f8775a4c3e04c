"""Pure policy: adaptive TTL, access rates, GDSF priorities, transition model. No I/O."""

from __future__ import annotations

import pytest

from tradingbot_agents.cache import AccessTracker, TransitionModel, TtlPolicy, gdsf_priority
from tradingbot_agents.cache.policy import key_prefix


def test_adaptive_ttl_grows_with_access_rate_up_to_the_cap() -> None:
    policy = TtlPolicy(min_factor=0.25, max_factor=8.0)
    base = 10.0
    ttls = [policy.ttl_for("klines:BTCUSDT", base, rate) for rate in (0.0, 0.05, 0.1, 0.4, 1.6, 100.0)]
    assert ttls == sorted(ttls), "TTL must not shrink as the key gets hotter"
    assert ttls[0] == pytest.approx(base * 0.25)  # never read: shortest life
    assert ttls[1] == pytest.approx(base * 0.5)  # cold (0.5 reads per TTL): shorter than base
    assert ttls[2] == pytest.approx(base)  # one read per TTL: base
    assert ttls[3] == pytest.approx(base * 3)  # 4 reads per TTL: 1 + log2(4)
    assert ttls[-1] == pytest.approx(base * 8.0)  # capped


def test_max_staleness_per_prefix_beats_heat() -> None:
    policy = TtlPolicy(max_staleness={"ticker:": 2.0, "klines:": 120.0, "klines:1m:": 30.0})
    hot = 1000.0
    assert policy.ttl_for("ticker:BTCUSDT", 60.0, hot) == 2.0
    assert policy.ttl_for("klines:1m:BTCUSDT", 60.0, hot) == 30.0  # longest prefix wins
    assert policy.ttl_for("klines:1h:BTCUSDT", 60.0, hot) == 120.0
    assert policy.ttl_for("exchangeinfo", 60.0, hot) == 60.0 * policy.max_factor  # unbounded prefix
    assert policy.staleness_bound("other:x") is None


def test_access_tracker_measures_and_forgets_rates() -> None:
    tracker = AccessTracker(half_life=10.0)
    now = 0.0
    for _ in range(200):  # one read every 0.5 s for 100 s: about 2 reads/s
        tracker.record("hot", now)
        now += 0.5
    assert tracker.rate("hot", now) == pytest.approx(2.0, rel=0.1)
    assert tracker.rate("never", now) == 0.0
    # Ten half-lives of silence: the key is cold again.
    assert tracker.rate("hot", now + 100.0) < 0.01


def test_access_tracker_is_bounded() -> None:
    tracker = AccessTracker(half_life=10.0, max_keys=100)
    for i in range(1000):
        tracker.record(f"k{i}", float(i))
    assert len(tracker) == 100
    assert tracker.rate("k0", 1000.0) == 0.0  # oldest forgotten
    assert tracker.rate("k999", 1000.0) > 0.0


def test_gdsf_priority_favours_frequent_costly_small() -> None:
    base = gdsf_priority(0.0, 1, 0.01, 1000)
    assert gdsf_priority(0.0, 10, 0.01, 1000) > base  # more frequent
    assert gdsf_priority(0.0, 1, 1.0, 1000) > base  # costlier to refetch
    assert gdsf_priority(0.0, 1, 0.01, 100) > base  # smaller
    assert gdsf_priority(5.0, 1, 0.01, 1000) == pytest.approx(5.0 + base)  # inflation adds
    assert gdsf_priority(0.0, 1, 0.0, 0) > 0  # floors keep it finite and positive


def test_key_prefix() -> None:
    assert key_prefix("ticker:BTCUSDT") == "ticker"
    assert key_prefix("klines:1h:BTCUSDT") == "klines"
    assert key_prefix("plain") == ""


def test_transition_model_predicts_likely_successors_only() -> None:
    model = TransitionModel()
    for _ in range(8):
        model.record("A", "B")
    for _ in range(2):
        model.record("A", "C")
    model.record("A", "A")  # re-reads are not transitions
    assert model.support("A") == 10
    assert model.probability("A", "B") == pytest.approx(0.8)
    assert model.predict("A", threshold=0.5) == [("B", pytest.approx(0.8))]
    assert [k for k, _ in model.predict("A", threshold=0.1)] == ["B", "C"]
    assert model.predict("A", threshold=0.5, min_support=11) == []
    assert model.predict("unknown", threshold=0.0) == []


def test_transition_model_is_bounded() -> None:
    model = TransitionModel(max_sources=10, max_successors=3)
    for i in range(50):
        model.record(f"s{i}", "x")
    for j in range(10):
        model.record("s49", f"y{j}")
    assert len(model._counts) == 10
    assert len(model._counts["s49"]) == 3
    assert model.support("s49") == sum(model._counts["s49"].values())
