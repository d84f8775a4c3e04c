"""Positions derived from fills: pure bookkeeping, no I/O.

One-way mode (Binance's default): one signed quantity per symbol, positive long, negative short.
A fill in the position's direction raises it at a volume-weighted average entry price; a fill
against it closes up to its size at the average entry (realising PnL) and, if larger, opens the
other side at the fill price. Fees are kept apart from realised PnL so both can be shown.

The risk agent computes PnL itself rather than trusting ``FillEvent.realized_pnl``: the broker's
figure may follow another convention (gross or net of fees), and risk must not depend on it.

Why a stream sequence: fills come from a JetStream stream, delivered at least once. The book
remembers the last stream sequence it applied and ignores anything at or below it, so a
redelivery (the ack was lost, or the agent restarted between saving the book and acking) is never
counted twice. The book serialises to a plain dict so it can be saved in a JetStream KV bucket.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tradingbot_agents.messages import FillEvent, Side

_EPSILON = 1e-12


@dataclass
class Position:
    symbol: str
    quantity: float = 0.0
    entry_price: float = 0.0
    realized_pnl: float = 0.0
    fees: float = 0.0
    fills: int = 0

    @property
    def is_open(self) -> bool:
        return abs(self.quantity) > _EPSILON

    def notional(self, mark: float) -> float:
        """Signed notional at ``mark`` (negative for a short)."""
        return self.quantity * mark

    def unrealized_pnl(self, mark: float) -> float:
        return self.quantity * (mark - self.entry_price) if self.is_open else 0.0


class PositionBook:
    def __init__(self) -> None:
        self.positions: dict[str, Position] = {}
        self.last_seq = 0
        self.trades = 0

    # -- applying fills --------------------------------------------------------------------------
    def apply(self, fill: FillEvent, seq: int | None = None) -> bool:
        """Apply one fill. Returns False (and changes nothing) for a stream sequence already applied."""
        if seq is not None:
            if seq <= self.last_seq:
                return False
            self.last_seq = seq
        position = self.positions.setdefault(fill.symbol, Position(fill.symbol))
        delta = fill.quantity if fill.side is Side.BUY else -fill.quantity
        old = position.quantity
        if abs(old) <= _EPSILON or (old > 0) == (delta > 0):
            size = abs(old) + abs(delta)
            position.entry_price = (abs(old) * position.entry_price + abs(delta) * fill.price) / size
            position.quantity = old + delta
        else:
            closed = min(abs(delta), abs(old))
            position.realized_pnl += closed * (fill.price - position.entry_price) * (1 if old > 0 else -1)
            position.quantity = old + delta
            if abs(position.quantity) <= _EPSILON:
                position.quantity = 0.0
                position.entry_price = 0.0
            elif (position.quantity > 0) != (old > 0):
                position.entry_price = fill.price  # flipped: the remainder opened at this fill
        position.fees += fill.fee
        position.fills += 1
        self.trades += 1
        return True

    def after(self, symbol: str, side: Side, quantity: float) -> float:
        """The signed quantity of ``symbol`` if an order of ``quantity`` on ``side`` filled."""
        current = self.positions[symbol].quantity if symbol in self.positions else 0.0
        return current + (quantity if side is Side.BUY else -quantity)

    # -- reading ---------------------------------------------------------------------------------
    def quantity(self, symbol: str) -> float:
        position = self.positions.get(symbol)
        return position.quantity if position else 0.0

    def open_positions(self) -> list[Position]:
        return [p for p in self.positions.values() if p.is_open]

    def symbols(self) -> list[str]:
        return sorted(p.symbol for p in self.open_positions())

    @property
    def realized_pnl(self) -> float:
        return sum(p.realized_pnl for p in self.positions.values())

    @property
    def fees(self) -> float:
        return sum(p.fees for p in self.positions.values())

    def unrealized_pnl(self, marks: Mapping[str, float]) -> float:
        return sum(p.unrealized_pnl(marks.get(p.symbol, p.entry_price)) for p in self.open_positions())

    def pnl(self, marks: Mapping[str, float]) -> float:
        """Total PnL: realised + unrealised at ``marks`` − fees."""
        return self.realized_pnl + self.unrealized_pnl(marks) - self.fees

    def notionals(self, marks: Mapping[str, float]) -> dict[str, float]:
        """Signed notional per open position, at the mark (the entry price if no mark is known)."""
        return {p.symbol: p.notional(marks.get(p.symbol, p.entry_price)) for p in self.open_positions()}

    # -- persistence -----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "last_seq": self.last_seq,
            "trades": self.trades,
            "positions": {s: {"quantity": p.quantity, "entry_price": p.entry_price,
                              "realized_pnl": p.realized_pnl, "fees": p.fees, "fills": p.fills}
                          for s, p in self.positions.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PositionBook:
        book = cls()
        book.last_seq = int(data.get("last_seq", 0))
        book.trades = int(data.get("trades", 0))
        for symbol, values in dict(data.get("positions", {})).items():
            book.positions[symbol] = Position(symbol=symbol, **values)
        return book
