"""Positions per pair, built from fills only (pure).

One-way mode, as on the exchange: a fill in the position's direction averages the entry price, a
fill against it realises PnL, a larger one flips it. Fills are applied at most once each (by
``fill_id``), which is what lets a worker rebuild its book from the FILLS stream on start and then
keep following the stream, including its own fills coming back, without counting any twice. A
worker that takes over a pair therefore already knows the position the previous holder left.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tradingbot_agents.messages import FillEvent, Side

EPSILON = 1e-12


@dataclass
class Position:
    amount: float = 0.0  # signed: > 0 long, < 0 short
    entry_price: float = 0.0
    realized_pnl: float = 0.0
    fees: float = 0.0


def realized_on(position: Position, side: Side, quantity: float, price: float) -> float:
    """PnL that a fill would realise against ``position`` (0 if it adds to it)."""
    signed = quantity if side is Side.BUY else -quantity
    if abs(position.amount) < EPSILON or (position.amount > 0) == (signed > 0):
        return 0.0
    closing = min(abs(signed), abs(position.amount))
    return (price - position.entry_price) * closing * (1 if position.amount > 0 else -1)


@dataclass
class PositionBook:
    positions: dict[str, Position] = field(default_factory=dict)
    fills_applied: int = 0
    _seen: set[str] = field(default_factory=set, repr=False)

    def get(self, symbol: str) -> Position:
        return self.positions.get(symbol, Position())

    def apply(self, fill: FillEvent) -> bool:
        """Apply a fill once; False if this fill id was already applied."""
        if fill.fill_id in self._seen:
            return False
        self._seen.add(fill.fill_id)
        pos = self.positions.setdefault(fill.symbol, Position())
        signed = fill.quantity if fill.side is Side.BUY else -fill.quantity
        pos.fees += fill.fee
        if abs(pos.amount) < EPSILON or (pos.amount > 0) == (signed > 0):
            new_amount = pos.amount + signed
            pos.entry_price = (pos.entry_price * abs(pos.amount) + fill.price * abs(signed)) / abs(new_amount)
            pos.amount = new_amount
        else:
            pos.realized_pnl += realized_on(pos, fill.side, fill.quantity, fill.price)
            closing = min(abs(signed), abs(pos.amount))
            pos.amount += signed
            if abs(signed) > closing:
                pos.entry_price = fill.price  # flipped: the rest opens at this fill
            elif abs(pos.amount) < EPSILON:
                pos.amount, pos.entry_price = 0.0, 0.0
        self.fills_applied += 1
        return True

    def open_symbols(self) -> list[str]:
        return sorted(s for s, p in self.positions.items() if abs(p.amount) > EPSILON)

    def net_realized(self) -> float:
        return sum(p.realized_pnl - p.fees for p in self.positions.values())

    def unrealized(self, marks: dict[str, float]) -> float:
        return sum((marks[s] - p.entry_price) * p.amount for s, p in self.positions.items()
                   if abs(p.amount) > EPSILON and s in marks)
