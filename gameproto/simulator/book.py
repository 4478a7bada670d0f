"""The order book of the embedded exchange: resting orders and price-time matching.

Money and volumes are ``Decimal`` throughout; they become JSON numbers only
when the exchange answers. One contract is one delivery window (start in UTC
plus length); only orders of the same contract meet.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from decimal import Context, Decimal, localcontext
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

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
    #: Out of the book for good: cancelled by its trader, or expired.
    deleted: bool = False
    #: Out of the book because its contract closed (delivery started) with volume left.
    expired: bool = False

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
        #: Each contract's fill times, oldest first (a parallel of ``fills_by_contract``, for bisecting).
        self.fill_times: Dict[str, List[float]] = {}
        self._queues: Dict[Tuple[str, str], List[_Entry]] = {}
        self._last_number = 0
        #: Counts every change of the book; ``versions`` holds each contract's last (version, time).
        #: A view cached at a contract's version is fresh while that version stands.
        self.version = 0
        self.versions: Dict[str, Tuple[int, float]] = {}
        # The public book, kept as orders come and go: each (contract, side)'s displayed levels in
        # book order, [priority key, price, volume, the observer's view of it], and their total volume.
        self._shown: Dict[Tuple[str, str], List[List[Any]]] = {}
        self._shown_total: Dict[Tuple[str, str], Decimal] = {}
        #: Counts every change of the public book (hidden orders never move it); ``shown_versions``
        #: holds each contract's last. A public view keyed on them changes only when what it shows does.
        self.shown_version = 0
        self.shown_versions: Dict[str, int] = {}
        self._public_moved = False
        #: Bumped when a contract starts or stops showing displayed orders (``shown_contracts`` changes).
        self.shown_set_version = 0
        self._shown_contracts: Optional[Tuple[int, List[str]]] = None
        #: Called with (contract, minutes, side, price, displayed volume now) whenever a displayed
        #: level changes; what it returns is kept with the level (``shown_views``).
        self.observer: Optional[Callable[[str, int, str, Decimal, Decimal], Any]] = None
        #: The numbers of the orders changed since a store last took them (``take_changed``), in
        #: change order; None while no store asks, so that an exchange without one keeps nothing.
        self.changed_orders: Optional[Dict[int, None]] = None

    def _changed(self, order: BookOrder) -> None:
        if self.changed_orders is not None:
            self.changed_orders[order.number] = None

    def track_changes(self) -> None:
        """Note every order that changes from now on (a store writes those, and only those)."""
        self.changed_orders = {}

    def take_changed(self) -> List[BookOrder]:
        """The orders changed since the last call (or ``track_changes``), and forget them."""
        if not self.changed_orders:
            return []
        taken = [self.orders[number] for number in self.changed_orders if number in self.orders]
        self.changed_orders = {}
        return taken

    def _touch(self, contract: str, now: float) -> None:
        # The time is when the contract's public book (its displayed levels, its trades) last moved:
        # the market rows carry it, and a hidden order coming or going must not show by moving it.
        self.version += 1
        previous = self.versions.get(contract)
        at = now if self._public_moved or previous is None else previous[1]
        self._public_moved = False
        self.versions[contract] = (self.version, at)

    def _show(self, order: BookOrder, change: Decimal) -> None:
        """Add ``change`` to the displayed volume at the order's price (hidden orders show nothing)."""
        if order.hidden or not change:
            return
        self._public_moved = True
        self.shown_version += 1
        self.shown_versions[order.contract] = self.shown_version
        side = (order.contract, order.side)
        entries = self._shown.setdefault(side, [])
        key = -order.price if order.side == "buy" else order.price
        at = bisect.bisect_left(entries, [key])
        found = at < len(entries) and entries[at][0] == key
        volume = MONEY.add(entries[at][2], change) if found else change
        self._shown_total[side] = MONEY.add(self._shown_total.get(side, _ZERO), change)
        view = None
        if self.observer is not None:
            view = self.observer(order.contract, order.minutes, order.side, order.price, max(volume, _ZERO))
        if volume <= 0:
            del entries[at]
            if not entries:
                del self._shown[side], self._shown_total[side]
                self.shown_set_version += 1
        elif found:
            entries[at][2:] = [volume, view]
        else:
            if not entries:
                self.shown_set_version += 1
            entries.insert(at, [key, order.price, volume, view])

    def shown(self, contract: str, side: str, limit: Optional[int] = None) -> List[Tuple[Decimal, Decimal]]:
        """The displayed levels of one side of a contract, best price first: (price, volume); the best ``limit``."""
        entries = self._shown.get((contract, side), [])
        return [(entry[1], entry[2]) for entry in (entries if limit is None else entries[:limit])]

    def shown_contracts(self) -> List[str]:
        """The contracts with displayed orders, in name order (delivery start first); hidden ones never count."""
        kept = self._shown_contracts
        if kept is None or kept[0] != self.shown_set_version:
            kept = (self.shown_set_version, sorted({contract for contract, _ in self._shown}))
            self._shown_contracts = kept
        return kept[1]

    def best_shown(self, contract: str, side: str) -> Optional[Decimal]:
        """The best displayed price of one side of a contract, None when nothing shows."""
        entries = self._shown.get((contract, side))
        return entries[0][1] if entries else None

    def shown_views(self, contract: str, side: str) -> List[Any]:
        """What the ``observer`` made of each displayed level of one side of a contract, best price first."""
        return [entry[3] for entry in self._shown.get((contract, side), ())]

    def shown_total(self, contract: str, side: str) -> Decimal:
        """The displayed volume of one side of a contract, all levels together."""
        return self._shown_total.get((contract, side), _ZERO)

    @property
    def last_number(self) -> int:
        """The number of the last order taken, 0 before the first."""
        return self._last_number

    def reset(self, orders: List[BookOrder], fills: List[Fill], last_number: int, changed: Dict[str, float]) -> None:
        """Hold these orders and fills (a saved book); the unfilled, undeleted orders rest again.

        ``changed`` is when each contract's book last changed (``versions``' times).
        """
        self.orders = {order.number: order for order in orders}
        self.fills = list(fills)
        self.fills_by_contract = {}
        self.fill_times = {}
        for fill in self.fills:
            self.fills_by_contract.setdefault(fill.contract, []).append(fill)
            self.fill_times.setdefault(fill.contract, []).append(fill.time)
        self._queues = {}
        self._shown = {}
        self._shown_total = {}
        self.shown_versions = {}
        self.shown_set_version += 1  # the counters go on: a view cached before the reset is stale
        for order in self.orders.values():
            if not order.deleted and not order.filled:
                bisect.insort(self._queue(order.contract, order.side), order.priority())
                self._show(order, order.remaining)
        self.versions = {}
        for contract, at in changed.items():
            self._touch(contract, at)  # the counter goes on: a view cached before the reset is stale
        self._public_moved = False  # the saved times stand; the next change sets its own
        self._last_number = last_number
        if self.changed_orders is not None:
            self.changed_orders = {}

    def next_number(self) -> int:
        """The number of the next order, counted from 1 across the exchange."""
        self._last_number += 1
        return self._last_number

    def submit(self, order: BookOrder, now: float) -> List[Fill]:
        """Match ``order`` on arrival, rest what is left, and return its fills."""
        order.updated = now
        self.orders[order.number] = order
        self._changed(order)
        fills = self._match(order, now)
        if not order.filled:
            bisect.insort(self._queue(order.contract, order.side), order.priority())
            self._show(order, order.remaining)
        self._touch(order.contract, now)
        return fills

    def cancel(self, number: int, now: float) -> bool:
        """Take an order out of the book for good at ``now``; False if it is unknown or gone."""
        order = self.orders.get(number)
        if order is None or order.deleted:
            return False
        order.deleted = True
        self._changed(order)
        if not order.filled:
            queue = self._queue(order.contract, order.side)
            at = bisect.bisect_left(queue, order.priority())
            if at < len(queue) and queue[at][1] == number:
                del queue[at]
            self._show(order, -order.remaining)
            self._touch(order.contract, now)
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
        self._public_moved = True  # a trade is public, whoever's orders made it
        self._show(resting, -volume)
        with localcontext(MONEY):
            fee = self.fee_per_mwh * volume
            for order in (incoming, resting):
                order.executed += volume
                order.total_value += resting.price * volume
                order.fees += fee
                order.execution_count += 1
                order.updated = now
        self._changed(resting)
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
        self.fill_times.setdefault(fill.contract, []).append(fill.time)
        return fill
