"""The order book of the embedded exchange: resting orders and price-time matching.

Money and volumes are ``Decimal`` throughout; they become JSON numbers only
when the exchange answers. One contract is one delivery window (start in UTC
plus length); only orders of the same contract meet.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from decimal import Context, Decimal, localcontext
from typing import Any, Dict, Iterator, List, Optional, Tuple

__all__ = ["BookOrder", "Fill", "OrderBook", "MONEY", "canonical_duration"]

#: Wide enough that sums of price x volume never round for the numbers the
#: exchange accepts (at most 1e9, at most 20 decimal places).
MONEY = Context(prec=80)

_ZERO = Decimal(0)
_SIDES = ("buy", "sell")

# A queue entry: (priority price, order number). Buys are keyed on the negated
# price so that both queues sort best price first, then oldest first.
_Entry = Tuple[Decimal, int]


def canonical_duration(minutes: int) -> str:
    """A window length as the protocol writes it: ``15m``, ``1h``, ``90m``."""
    return f"{minutes // 60}h" if minutes % 60 == 0 else f"{minutes}m"


@dataclass
class BookOrder:
    """One order as the exchange keeps it. ``details`` holds the validated fields."""

    number: int
    trader: str
    side: str
    price: Decimal
    volume: Decimal
    contract: str
    minutes: int
    hidden: bool
    created: float
    details: Dict[str, Any] = field(default_factory=dict)
    updated: float = 0.0
    executed: Decimal = _ZERO
    total_value: Decimal = _ZERO
    fees: Decimal = _ZERO
    execution_count: int = 0
    deleted: bool = False

    @property
    def remaining(self) -> Decimal:
        return MONEY.subtract(self.volume, self.executed)

    @property
    def average_price(self) -> Optional[Decimal]:
        """The volume-weighted price of the fills, None before the first one."""
        if self.executed == 0:
            return None
        return MONEY.divide(self.total_value, self.executed)

    @property
    def filled(self) -> bool:
        return self.executed >= self.volume

    def priority(self) -> _Entry:
        return (-self.price if self.side == "buy" else self.price, self.number)

    def crosses(self, resting_price: Decimal) -> bool:
        """Whether this order, arriving, trades with a resting order at ``resting_price``."""
        return self.price >= resting_price if self.side == "buy" else self.price <= resting_price


@dataclass(frozen=True)
class Fill:
    """One trade: ``direction`` is the incoming order's side, ``fee`` is charged to each side."""

    number: int
    contract: str
    minutes: int
    direction: str
    volume: Decimal
    price: Decimal
    time: float
    buy_order: int
    sell_order: int
    buyer: str
    seller: str
    fee: Decimal


class OrderBook:
    """Every order the exchange took, the queues of the resting ones, and the fills."""

    def __init__(self, fee_per_mwh: Decimal = Decimal("0.05")) -> None:
        self.fee_per_mwh = fee_per_mwh
        self.orders: Dict[int, BookOrder] = {}
        self.fills: List[Fill] = []
        self.fills_by_contract: Dict[str, List[Fill]] = {}
        self._queues: Dict[Tuple[str, str], List[_Entry]] = {}
        self._last_number = 0

    @property
    def last_number(self) -> int:
        """The number of the last order taken, 0 before the first."""
        return self._last_number

    def reset(self, orders: List[BookOrder], fills: List[Fill], last_number: int) -> None:
        """Hold these orders and fills (a saved book); the unfilled, undeleted orders rest again."""
        self.orders = {order.number: order for order in orders}
        self.fills = list(fills)
        self.fills_by_contract = {}
        for fill in self.fills:
            self.fills_by_contract.setdefault(fill.contract, []).append(fill)
        self._queues = {}
        for order in self.orders.values():
            if not order.deleted and not order.filled:
                bisect.insort(self._queue(order.contract, order.side), order.priority())
        self._last_number = last_number

    def next_number(self) -> int:
        """The number of the next order, counted from 1 across the exchange."""
        self._last_number += 1
        return self._last_number

    def submit(self, order: BookOrder, now: float) -> List[Fill]:
        """Match ``order`` on arrival, rest what is left, and return its fills."""
        order.updated = now
        self.orders[order.number] = order
        fills = self._match(order, now)
        if not order.filled:
            bisect.insort(self._queue(order.contract, order.side), order.priority())
        return fills

    def cancel(self, number: int) -> bool:
        """Take an order out of the book for good; False if it is unknown or gone."""
        order = self.orders.get(number)
        if order is None or order.deleted:
            return False
        order.deleted = True
        if not order.filled:
            queue = self._queue(order.contract, order.side)
            at = bisect.bisect_left(queue, order.priority())
            if at < len(queue) and queue[at][1] == number:
                del queue[at]
        return True

    def resting(self, contract: str, side: str) -> Iterator[BookOrder]:
        """The resting orders of one side of a contract, best price first, then oldest."""
        for _, number in self._queues.get((contract, side), ()):
            yield self.orders[number]

    def contracts(self) -> List[str]:
        """The contracts with at least one resting order, in name order."""
        return sorted({contract for (contract, _), queue in self._queues.items() if queue})

    def contract_minutes(self, contract: str) -> int:
        """The delivery length of a contract with resting orders, 0 when none rests."""
        for side in _SIDES:
            for order in self.resting(contract, side):
                return order.minutes
        return 0

    def _queue(self, contract: str, side: str) -> List[_Entry]:
        return self._queues.setdefault((contract, side), [])

    def _match(self, incoming: BookOrder, now: float) -> List[Fill]:
        other = "sell" if incoming.side == "buy" else "buy"
        queue = self._queues.get((incoming.contract, other))
        fills: List[Fill] = []
        at = 0
        while queue is not None and at < len(queue) and not incoming.filled:
            resting = self.orders[queue[at][1]]
            if not incoming.crosses(resting.price):
                break
            fills.append(self._fill(incoming, resting, min(incoming.remaining, resting.remaining), now))
            if resting.filled:
                del queue[at]
        return fills

    def _fill(self, incoming: BookOrder, resting: BookOrder, volume: Decimal, now: float) -> Fill:
        with localcontext(MONEY):
            fee = self.fee_per_mwh * volume
            for order in (incoming, resting):
                order.executed += volume
                order.total_value += resting.price * volume
                order.fees += fee
                order.execution_count += 1
                order.updated = now
        buy, sell = (incoming, resting) if incoming.side == "buy" else (resting, incoming)
        fill = Fill(
            number=len(self.fills) + 1,
            contract=incoming.contract,
            minutes=incoming.minutes,
            direction=incoming.side,
            volume=volume,
            price=resting.price,
            time=now,
            buy_order=buy.number,
            sell_order=sell.number,
            buyer=buy.trader,
            seller=sell.trader,
            fee=fee,
        )
        self.fills.append(fill)
        self.fills_by_contract.setdefault(fill.contract, []).append(fill)
        return fill
