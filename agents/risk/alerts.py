"""Which risk conditions deserve a human's attention, and how often: pure, no I/O.

Alert floods teach people to mute the channel (Hummingbot sent rate-limit warnings to Telegram
twice a minute). So:

* only risk conditions become alerts (VaR, drawdown, exposure, leverage over their limits);
  operational noise (a data agent slow, Telegram down) stays in logs, health and metrics;
* an alert is keyed by (kind, subject), e.g. ``("exposure_limit", "BTCUSDT")``, and fires at most
  once per ``alert_cooldown_minutes`` for that key while the condition lasts: a condition seen on
  every check round produces one message, not one per round.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tradingbot_agents.messages import RiskSnapshot

PORTFOLIO = "portfolio"


class AlertKind(enum.StrEnum):
    VAR_LIMIT = "var_limit"
    DRAWDOWN = "drawdown"
    EXPOSURE_LIMIT = "exposure_limit"
    POSITION_LIMIT = "position_limit"
    LEVERAGE_LIMIT = "leverage_limit"


@dataclass(frozen=True)
class AlertCandidate:
    kind: AlertKind
    subject: str
    message: str
    severity: str = "warning"
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AlertThresholds:
    max_portfolio_var: float
    max_drawdown: float
    max_total_exposure: float
    max_position_notional: float
    max_leverage: float


def evaluate(snapshot: RiskSnapshot, thresholds: AlertThresholds, *, current_drawdown: float) -> list[AlertCandidate]:
    """Every alertable condition in ``snapshot``; the gate decides which of them are sent."""
    found: list[AlertCandidate] = []
    var = snapshot.var_95_historical
    if var is not None and var > thresholds.max_portfolio_var:
        found.append(AlertCandidate(
            AlertKind.VAR_LIMIT, PORTFOLIO, severity="critical",
            message=f"Portfolio 1h VaR(95%) is {var:.2%} of equity, above the limit "
                    f"{thresholds.max_portfolio_var:.2%}. New exposure is being rejected; consider reducing "
                    "positions.",
            data={"var_95": var, "limit": thresholds.max_portfolio_var}))
    if current_drawdown > thresholds.max_drawdown:
        found.append(AlertCandidate(
            AlertKind.DRAWDOWN, PORTFOLIO, severity="critical",
            message=f"Equity is {current_drawdown:.2%} below its peak (alert threshold "
                    f"{thresholds.max_drawdown:.2%}); equity now {snapshot.equity:,.2f} USDT.",
            data={"drawdown": current_drawdown, "threshold": thresholds.max_drawdown, "equity": snapshot.equity}))
    if snapshot.exposure_total > thresholds.max_total_exposure:
        found.append(AlertCandidate(
            AlertKind.EXPOSURE_LIMIT, PORTFOLIO,
            message=f"Total exposure is {snapshot.exposure_total:,.2f} USDT, above the limit "
                    f"{thresholds.max_total_exposure:,.2f} USDT (prices moved since the orders were approved).",
            data={"exposure_total": snapshot.exposure_total, "limit": thresholds.max_total_exposure}))
    for symbol, notional in sorted(snapshot.exposure_by_symbol.items()):
        if abs(notional) > thresholds.max_position_notional:
            found.append(AlertCandidate(
                AlertKind.POSITION_LIMIT, symbol,
                message=f"{symbol} position is {abs(notional):,.2f} USDT notional, above the limit "
                        f"{thresholds.max_position_notional:,.2f} USDT.",
                data={"notional": notional, "limit": thresholds.max_position_notional}))
    if snapshot.leverage > thresholds.max_leverage:
        found.append(AlertCandidate(
            AlertKind.LEVERAGE_LIMIT, PORTFOLIO,
            message=f"Leverage is {snapshot.leverage:.2f}x equity, above the limit {thresholds.max_leverage:g}x.",
            data={"leverage": snapshot.leverage, "limit": thresholds.max_leverage}))
    return found


class AlertGate:
    """Cooldown and de-duplication by (kind, subject). The clock is injected so tests need no sleep."""

    def __init__(self, cooldown_s: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._last: dict[tuple[str, str], float] = {}
        self.suppressed = 0

    def admit(self, kind: str, subject: str) -> bool:
        """True if an alert for this key may fire now (and records that it did)."""
        now = self._clock()
        key = (str(kind), subject)
        last = self._last.get(key)
        if last is not None and now - last < self.cooldown_s:
            self.suppressed += 1
            return False
        self._last[key] = now
        return True

    def forget(self, kind: str, subject: str) -> None:
        """Undo an admission whose alert could not be delivered, so the next round retries it."""
        self._last.pop((str(kind), subject), None)
