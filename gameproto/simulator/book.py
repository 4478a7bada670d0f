"""The order book of the embedded exchange: resting orders and price-time matching.

Money and volumes are ``Decimal`` throughout; they become JSON numbers only
when the exchange answers. One contract is one delivery window (start in UTC
plus length); only orders of the same contract meet.

Each side of a contract is a dict of price levels, each a FIFO queue of
orders, beside a sorted list of its prices (best first): adding to a known
price costs a dict lookup, and only a new or emptied level touches the
sorted list. A cancelled order is taken out of its level's count at once and
out of its queue when it reaches the head (or when the level empties), so a
cancel never scans a queue.
"""

from __future__ import annotations

import bisect
import collections
from dataclasses import dataclass, field
from decimal import Context, Decimal
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

__all__ = ["BookOrder", "Fill", "OrderBook", "MONEY", "canonical_duration"]

#: Wide enough that sums of price x volume never round for the numbers the
#: exchange accepts (at most 1e9, at most 20 decimal places).
MONEY = Context(prec=80)

_ZERO = Decimal(0)
_SIDES = ("buy", "sell")

# A queue entry: (priority price, order number). Buys are keyed on the negated
# price so that both sides sort best price first, then oldest first.
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


# A price level: [live orders, their queue, displayed volume, the observer's view of it (None until
# asked for since the level last changed), price, the contract's delivery length in minutes].
_COUNT, _QUEUE, _SHOWN, _VIEW, _PRICE, _MINUTES = range(6)


class _Side:
    """One side of one contract: its price levels, in price order.

    ``keys`` holds the levels' prices from lowest to highest and ``levels`` the
    levels at the same places, so the best level is the first of the sells and
    the last of the buys (``best``: 0 or -1; taking the best buy off is a pop).
    A price is found by bisecting,
    never by hashing (hashing a Decimal the first time costs more than
    bisecting a hundred levels). A level's queue may still hold orders
    cancelled since they joined it (``deleted``): they are skipped and
    dropped when they reach its head, or go with their level when it empties.
    Hidden orders count in a level but add nothing to its displayed volume.
    """

    __slots__ = ("best", "keys", "levels")

    def __init__(self, best: int) -> None:
        #: Where the best level is: 0 (sells, lowest first) or -1 (buys, highest last).
        self.best = best
        self.keys: List[Decimal] = []
        self.levels: List[List[Any]] = []

    def level(self, key: Decimal, order: BookOrder) -> List[Any]:
        """The level at ``key``, made (empty, at the order's price) if there is none."""
        keys = self.keys
        at = bisect.bisect_left(keys, key)
        if at < len(keys) and keys[at] == key:
            return self.levels[at]
        level = [0, collections.deque(), _ZERO, None, order.price, order.minutes]
        keys.insert(at, key)
        self.levels.insert(at, level)
        return level

    def find(self, key: Decimal) -> int:
        """Where the level at ``key`` is (it must be there)."""
        return bisect.bisect_left(self.keys, key)

    def remove(self, at: int) -> None:
        del self.keys[at], self.levels[at]

    def in_order(self) -> List[List[Any]]:
        """The levels, best first."""
        return self.levels[::-1] if self.best else list(self.levels)

    def orders(self) -> Iterator[BookOrder]:
        """The live orders, best price first, then oldest."""
        for level in self.in_order():
            for order in list(level[_QUEUE]):
                if not order.deleted:
                    yield order

    def displayed(self) -> List[List[Any]]:
        """The levels with a displayed volume, best first."""
        return [level for level in self.in_order() if level[_SHOWN]]


def _new_pair() -> Tuple[_Side, _Side]:
    """A contract's (buys, sells)."""
    return _Side(-1), _Side(0)


_NO_ORDERS: Tuple[()] = ()


class OrderBook:
    """Every order the exchange took, the queues of the resting ones, and the fills."""

    def __init__(self, fee_per_mwh: Decimal = Decimal("0.05")) -> None:
        self.fee_per_mwh = fee_per_mwh
        self.orders: Dict[int, BookOrder] = {}
        self.fills: List[Fill] = []
        self.fills_by_contract: Dict[str, List[Fill]] = {}
        #: Each contract's fill times, oldest first (a parallel of ``fills_by_contract``, for bisecting).
        self.fill_times: Dict[str, List[float]] = {}
        # Each contract's (buy side, sell side).
        self._sides: Dict[str, Tuple[_Side, _Side]] = {}
        self._last_number = 0
        # The number of the last fill. It never goes back (a trade id is never given twice): after a
        # reset it starts from the order count, which no fill number can pass (each fill fills an order).
        self._last_fill = 0
        #: Counts every change of the book; ``versions`` holds each contract's last (version, time).
        #: A view cached at a contract's version is fresh while that version stands.
        self.version = 0
        self.versions: Dict[str, Tuple[int, float]] = {}
        #: Counts every change of the public book (hidden orders never move it); ``shown_versions``
        #: holds each contract's last. A public view keyed on them changes only when what it shows does.
        self.shown_version = 0
        self.shown_versions: Dict[str, int] = {}
        # Whether the public book moved since the last ``_touch`` (a displayed level or a trade).
        self._public_moved = False
        # Each contract's number of levels with a displayed volume (contracts with none are absent).
        self._shown_levels: Dict[str, int] = {}
        #: Bumped when a contract starts or stops showing displayed orders (``shown_contracts`` changes).
        self.shown_set_version = 0
        self._shown_contracts: Optional[Tuple[int, List[str]]] = None
        #: Called with (contract, minutes, side, price, displayed volume) for a displayed level whose
        #: view is asked for (``shown_views``) for the first time since the level changed; what it
        #: returns is kept with the level until it changes again. Orders come in far more often than
        #: views are read: a level that changes ten times between two reads is viewed once.
        self.observer: Optional[Callable[[str, int, str, Decimal, Decimal], Any]] = None
        #: The numbers of the orders changed since a store last took them (``take_changed``), in
        #: change order; None while no store asks, so that an exchange without one keeps nothing.
        self.changed_orders: Optional[Dict[int, None]] = None

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

    def _public(self, contract: str, before: Decimal, after: Decimal) -> None:
        """Note that a displayed level of ``contract`` went from ``before`` to ``after``."""
        self._public_moved = True
        self.shown_version += 1
        self.shown_versions[contract] = self.shown_version
        if not before:
            count = self._shown_levels.get(contract, 0) + 1
            self._shown_levels[contract] = count
            if count == 1:
                self.shown_set_version += 1
        elif not after:
            count = self._shown_levels[contract] - 1
            if count:
                self._shown_levels[contract] = count
            else:
                del self._shown_levels[contract]
                self.shown_set_version += 1

    def _one_side(self, contract: str, side: str) -> Optional[_Side]:
        pair = self._sides.get(contract)
        return None if pair is None else pair[0] if side == "buy" else pair[1]

    def _show(self, order: BookOrder, side: _Side, level: List[Any], change: Decimal) -> None:
        """Add ``change`` to the displayed volume of ``level``, the order's (hidden orders show nothing)."""
        if order.hidden or not change:
            return
        before = level[_SHOWN]
        after = level[_SHOWN] = MONEY.add(before, change)
        level[_VIEW] = None  # made again when next asked for
        self._public(order.contract, before, after)

    def shown(self, contract: str, side: str, limit: Optional[int] = None) -> List[Tuple[Decimal, Decimal]]:
        """The displayed levels of one side of a contract, best price first: (price, volume); the best ``limit``."""
        found = self._one_side(contract, side)
        if found is None:
            return []
        levels = found.displayed()
        return [(level[_PRICE], level[_SHOWN]) for level in (levels if limit is None else levels[:limit])]

    def shown_contracts(self) -> List[str]:
        """The contracts with displayed orders, in name order (delivery start first); hidden ones never count."""
        kept = self._shown_contracts
        if kept is None or kept[0] != self.shown_set_version:
            kept = (self.shown_set_version, sorted(self._shown_levels))
            self._shown_contracts = kept
        return kept[1]

    def best_shown(self, contract: str, side: str) -> Optional[Decimal]:
        """The best displayed price of one side of a contract, None when nothing shows."""
        found = self._one_side(contract, side)
        if found is not None:
            for level in found.in_order():
                if level[_SHOWN]:
                    price: Decimal = level[_PRICE]
                    return price
        return None

    def shown_views(self, contract: str, side: str) -> List[Any]:
        """What the ``observer`` made of each displayed level of one side of a contract, best price first."""
        found = self._one_side(contract, side)
        if found is None:
            return []
        views = []
        for level in found.displayed():
            view = level[_VIEW]
            if view is None and self.observer is not None:
                view = level[_VIEW] = self.observer(contract, level[_MINUTES], side, level[_PRICE], level[_SHOWN])
            views.append(view)
        return views

    def shown_total(self, contract: str, side: str) -> Decimal:
        """The displayed volume of one side of a contract, all levels together."""
        found = self._one_side(contract, side)
        if found is None:
            return _ZERO
        # Summed when asked (a /market answer is made once per change of the book), not kept up to date.
        total = _ZERO
        for level in found.levels:
            total = MONEY.add(total, level[_SHOWN])
        return total

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
        self._sides = {}
        self._shown_levels = {}
        self.shown_versions = {}
        self.shown_set_version += 1  # the counters go on: a view cached before the reset is stale
        # Oldest first, so that each level's queue is in time order.
        for order in sorted(self.orders.values(), key=lambda order: order.number):
            if not order.deleted and not order.filled:
                self._rest(order, order.remaining)
        self.versions = {}
        for contract, at in changed.items():
            self._touch(contract, at)  # the counter goes on: a view cached before the reset is stale
        self._public_moved = False  # the saved times stand; the next change sets its own
        self._last_number = last_number
        if self.changed_orders is not None:
            self.changed_orders = {}
        self._last_fill = max((fill.number for fill in self.fills), default=last_number)

    def _rest(self, order: BookOrder, left: Decimal) -> None:
        pair = self._sides.get(order.contract)
        if pair is None:
            pair = self._sides[order.contract] = _new_pair()
        side = pair[0] if order.side == "buy" else pair[1]
        level = side.level(order.price, order)
        level[_COUNT] += 1
        level[_QUEUE].append(order)
        self._show(order, side, level, left)

    def next_number(self) -> int:
        """The number of the next order, counted from 1 across the exchange."""
        self._last_number += 1
        return self._last_number

    def submit(self, order: BookOrder, now: float) -> List[Fill]:
        """Match ``order`` on arrival, rest what is left, and return its fills."""
        order.updated = now
        self.orders[order.number] = order
        if self.changed_orders is not None:
            self.changed_orders[order.number] = None
        contract = order.contract
        pair = self._sides.get(contract)
        if pair is None:
            pair = self._sides[contract] = _new_pair()
        key = order.price
        if order.side == "buy":
            mine, other = pair
            crosses = other.keys and other.keys[0] <= key  # the lowest sell
        else:
            other, mine = pair
            crosses = other.keys and other.keys[-1] >= key  # the highest buy
        if crosses:
            fills = self._match(order, other, now)
            left = MONEY.subtract(order.volume, order.executed)
        else:
            fills = []
            left = order.volume
        if left > 0:
            keys = mine.keys
            at = bisect.bisect_left(keys, key)
            if at < len(keys) and keys[at] == key:
                level = mine.levels[at]
                level[_COUNT] += 1
                level[_QUEUE].append(order)
            else:
                level = [1, collections.deque((order,)), _ZERO, None, order.price, order.minutes]
                keys.insert(at, key)
                mine.levels.insert(at, level)
            if not order.hidden:
                before = level[_SHOWN]
                after = level[_SHOWN] = MONEY.add(before, left)
                level[_VIEW] = None
                self._public(contract, before, after)
        self._touch(contract, now)
        return fills

    def cancel(self, number: int, now: float) -> bool:
        """Take an order out of the book for good at ``now``; False if it is unknown or gone."""
        order = self.orders.get(number)
        if order is None or order.deleted:
            return False
        order.deleted = True
        if self.changed_orders is not None:
            self.changed_orders[number] = None
        left = MONEY.subtract(order.volume, order.executed)
        if left > 0:
            pair = self._sides[order.contract]
            side = pair[0] if order.side == "buy" else pair[1]
            at = side.find(order.price)
            level = side.levels[at]
            self._show(order, side, level, -left)
            level[_COUNT] -= 1
            if not level[_COUNT]:  # its queue goes with it; otherwise it lets go of the order at its head
                side.remove(at)
            self._touch(order.contract, now)
        return True

    def resting(self, contract: str, side: str) -> Iterator[BookOrder]:
        """The resting orders of one side of a contract, best price first, then oldest."""
        found = self._one_side(contract, side)
        return found.orders() if found is not None else iter(_NO_ORDERS)

    def contracts(self) -> List[str]:
        """The contracts with at least one resting order, in name order."""
        return sorted(contract for contract, (buys, sells) in self._sides.items() if buys.keys or sells.keys)

    def contract_minutes(self, contract: str) -> int:
        """The delivery length of a contract with resting orders, 0 when none rests."""
        pair = self._sides.get(contract)
        if pair is not None:
            for side in pair:
                for level in side.levels:
                    if level[_COUNT]:  # a level keeps its contract's length: no queue is walked
                        minutes: int = level[_MINUTES]
                        return minutes
        return 0

    def _match(self, incoming: BookOrder, other: _Side, now: float) -> List[Fill]:
        """Trade ``incoming`` against the other side's best levels while their prices cross its own."""
        fills: List[Fill] = []
        levels, best = other.levels, other.best
        price, buying = incoming.price, incoming.side == "buy"
        while levels:
            level = levels[best]
            if (level[_PRICE] > price) if buying else (level[_PRICE] < price):
                break
            queue = level[_QUEUE]
            while queue[0].deleted:  # cancelled while queued: its count went with the cancel
                queue.popleft()
            resting = queue[0]
            left = MONEY.subtract(incoming.volume, incoming.executed)
            other_left = MONEY.subtract(resting.volume, resting.executed)
            volume = left if left < other_left else other_left
            self._show(resting, other, level, -volume)
            fills.append(self._fill(incoming, resting, volume, now))
            if resting.executed >= resting.volume:
                queue.popleft()
                level[_COUNT] -= 1
                if not level[_COUNT]:
                    other.remove(best)
            if incoming.executed >= incoming.volume:
                break
        return fills

    def _fill(self, incoming: BookOrder, resting: BookOrder, volume: Decimal, now: float) -> Fill:
        self._public_moved = True  # a trade is public, whoever's orders made it
        if self.changed_orders is not None:
            self.changed_orders[resting.number] = None
        fee = MONEY.multiply(self.fee_per_mwh, volume)
        value = MONEY.multiply(resting.price, volume)
        for order in (incoming, resting):
            order.executed = MONEY.add(order.executed, volume)
            order.total_value = MONEY.add(order.total_value, value)
            order.fees = MONEY.add(order.fees, fee)
            order.execution_count += 1
            order.updated = now
        buy, sell = (incoming, resting) if incoming.side == "buy" else (resting, incoming)
        self._last_fill += 1
        # A frozen dataclass's __init__ sets each field through object.__setattr__, which costs
        # more than the rest of a fill together: a fill is made by filling its __dict__ at once.
        fill: Fill = object.__new__(Fill)
        fill.__dict__.update(
            number=self._last_fill,
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
        found = self.fills_by_contract.get(fill.contract)
        if found is None:
            self.fills_by_contract[fill.contract] = [fill]
            self.fill_times[fill.contract] = [now]
        else:
            found.append(fill)
            self.fill_times[fill.contract].append(now)
        return fill
