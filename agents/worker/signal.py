"""From indicators, sentiment and RL advice to one score in [-1, 1] and an action (pure).

Components, each in [-1, 1] (positive = buy):

* ``trend``: EMA crossover, ``(ema_fast - ema_slow) / ema_slow`` scaled so that a 1 % gap is a
  full signal (clipped);
* ``rsi``: mean reversion, +1 at or below ``rsi_oversold``, -1 at or above ``rsi_overbought``,
  linear through 0 at RSI 50;
* ``sentiment``: the sentiment agent's smoothed score, if one newer than ``max_age`` arrived;
* ``rl``: the RL agent's advice, ``+confidence`` for buy, ``-confidence`` for sell, 0 for hold.

Weights: ``sentiment_weight`` and ``rl_weight`` from config; the technical part gets the rest,
``1 - sentiment_weight - rl_weight`` (at least 0), split equally between trend and RSI. A missing
input (no sentiment yet, no RL agent running) does not vote: the weights of the present inputs are
renormalised to sum to 1, so a bot without an RL agent still trades on what it has instead of
having every signal shrunk towards zero. The action is ``buy`` when the score reaches
``signal_threshold``, ``sell`` at ``-signal_threshold``, else ``hold``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tradingbot_agents import indicators

TREND_FULL_SCALE = 0.01  # a 1 % gap between the EMAs is a full-strength trend


@dataclass(frozen=True)
class SignalSettings:
    fast_ema: int
    slow_ema: int
    rsi_period: int
    rsi_overbought: float
    rsi_oversold: float
    sentiment_weight: float
    rl_weight: float
    signal_threshold: float


@dataclass(frozen=True)
class Signal:
    score: float
    action: str
    components: dict[str, float]


def _clip(value: float) -> float:
    return max(-1.0, min(1.0, value))


def trend_component(closes: Sequence[float], fast: int, slow: int) -> float:
    fast_v, slow_v = indicators.ema(closes, fast)[-1], indicators.ema(closes, slow)[-1]
    return _clip((fast_v - slow_v) / slow_v / TREND_FULL_SCALE) if slow_v else 0.0


def rsi_component(value: float, oversold: float, overbought: float) -> float:
    if value <= 50:
        return _clip((50 - value) / (50 - oversold))
    return _clip(-(value - 50) / (overbought - 50))


def rl_component(action: str, confidence: float) -> float:
    return {"buy": confidence, "sell": -confidence}.get(action, 0.0)


def combine(closes: Sequence[float], settings: SignalSettings, *, sentiment: float | None = None,
            rl: float | None = None) -> Signal:
    """The signal for one pair; ``closes`` oldest first, at least ``slow_ema`` of them."""
    if len(closes) < max(settings.slow_ema, settings.rsi_period + 1):
        raise ValueError(f"need at least {max(settings.slow_ema, settings.rsi_period + 1)} closes")
    rsi_value = indicators.rsi(closes, settings.rsi_period)[-1]
    technical = max(0.0, 1.0 - settings.sentiment_weight - settings.rl_weight)
    votes: dict[str, tuple[float, float]] = {
        "trend": (trend_component(closes, settings.fast_ema, settings.slow_ema), technical / 2),
        "rsi": (rsi_component(rsi_value, settings.rsi_oversold, settings.rsi_overbought), technical / 2),
    }
    if sentiment is not None:
        votes["sentiment"] = (_clip(sentiment), settings.sentiment_weight)
    if rl is not None:
        votes["rl"] = (_clip(rl), settings.rl_weight)
    total = sum(weight for _, weight in votes.values())
    score = _clip(sum(value * weight for value, weight in votes.values()) / total) if total else 0.0
    if score >= settings.signal_threshold:
        action = "buy"
    elif score <= -settings.signal_threshold:
        action = "sell"
    else:
        action = "hold"
    components = {name: round(value, 6) for name, (value, _) in votes.items()}
    components["rsi_value"] = round(rsi_value, 4)
    return Signal(score=round(score, 6), action=action, components=components)
