"""The risk agent: positions from fills, VaR/CVaR/Sharpe/Sortino/drawdown/correlation from prices,
the pre-trade check (request/reply) and alerts (JetStream + Telegram).

The pure parts (:mod:`.metrics`, :mod:`.positions`, :mod:`.checks`, :mod:`.alerts`,
:mod:`.snapshot`) import no I/O; :mod:`.agent`, :mod:`.notifier` and :mod:`.telegram` do the I/O.
The agent class itself is imported from :mod:`.agent` (the catalog does it lazily).
"""

from tradingbot_agents.risk.alerts import AlertCandidate, AlertGate, AlertKind, AlertThresholds
from tradingbot_agents.risk.checks import Limits, PortfolioState, check_intent, portfolio_var
from tradingbot_agents.risk.metrics import HOURS_PER_YEAR
from tradingbot_agents.risk.positions import Position, PositionBook
from tradingbot_agents.risk.telegram import TelegramClient, TelegramError

__all__ = [
    "HOURS_PER_YEAR",
    "AlertCandidate",
    "AlertGate",
    "AlertKind",
    "AlertThresholds",
    "Limits",
    "PortfolioState",
    "Position",
    "PositionBook",
    "TelegramClient",
    "TelegramError",
    "check_intent",
    "portfolio_var",
]
