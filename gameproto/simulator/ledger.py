"""The trading state: the book, each trader's orders, and the contracts closing next.

A contract closes at its delivery start, as on a real intraday market: its
resting orders expire. An expired order leaves the book and the market data
at once; the trader's order listing still shows it, with state ``Expired``,
for ``EXPIRED_LISTED_FOR`` seconds; then it is no longer listed.

Everything here is plain data (see ``state.py`` to save and load it); the
clock is whatever ``now`` the caller passes.
"""

from __future__ import annotations

import heapq
from typing import Dict, Iterable, List, Optional, Tuple

from .book import BookOrder, Fill, OrderBook
from .contracts import delivery_window

__all__ = ["Ledger", "EXPIRED_LISTED_FOR"]

#: Seconds an expired order stays in its trader's listing after its delivery start.
EXPIRED_LISTED_FOR = 60.0


class Ledger:
    """The order book and the indexes the exchange keeps beside it."""

    def __init__(self, book: OrderBook) -> None:
        self.book = book
        # Each trader's listed orders per side, oldest first: listing costs what the trader holds.
        self.by_trader: Dict[str, Dict[str, Dict[int, BookOrder]]] = {}
        # Resting orders by delivery start, (start, number): the next to expire first.
        self.closing: List[Tuple[float, int]] = []
        # Expired orders, still listed until EXPIRED_LISTED_FOR after their expiry, oldest first.
        self.expired: Dict[int, float] = {}
        # Each trader's resting orders (in the book, not filled, not cancelled, not expired).
        self.resting: Dict[str, int] = {}
        #: The same orders themselves, per trader, oldest first: a view of a trader's live orders
        #: costs what the trader has resting, never what it had filled.
        self.live: Dict[str, Dict[int, BookOrder]] = {}

    def reset(
        self,
        orders: List[BookOrder],
        fills: List[Fill],
        last_number: int,
        expired: Dict[int, float],
        changed: Dict[str, float],
    ) -> None:
        """Hold a saved book: its orders, fills, the expiries still listed; the indexes are rebuilt."""
        self.book.reset(orders, fills, last_number, changed)
        self.expired = dict(expired)
        self.by_trader = {}
        self.closing = []
        self.resting = {}
        self.live = {}
        for order in self.book.orders.values():
            if order.deleted and order.number not in self.expired:
                continue
            self.by_trader.setdefault(order.trader, {}).setdefault(order.side, {})[order.number] = order
            if not order.deleted and not order.filled:
                self.resting[order.trader] = self.resting.get(order.trader, 0) + 1
                self.live.setdefault(order.trader, {})[order.number] = order
                self.closing.append((delivery_window(order.details)[0].timestamp(), order.number))
        heapq.heapify(self.closing)

    def add(self, order: BookOrder, start: float, stamp: float) -> None:
        """Put a checked order in the book, matching it; it closes at ``start``."""
        sides = self.by_trader.get(order.trader)
        if sides is None:
            sides = self.by_trader[order.trader] = {}
        listed = sides.get(order.side)
        if listed is None:
            listed = sides[order.side] = {}
        listed[order.number] = order
        for fill in self.book.submit(order, stamp):
            other = self.book.orders[fill.sell_order if order.side == "buy" else fill.buy_order]
            if other.filled:
                self._leaves(other)
        if not order.filled:
            self.resting[order.trader] = self.resting.get(order.trader, 0) + 1
            self.live.setdefault(order.trader, {})[order.number] = order
            heapq.heappush(self.closing, (start, order.number))

    def _leaves(self, order: BookOrder) -> None:
        """One fewer resting order for its trader."""
        live = self.live.get(order.trader)
        if live is not None:
            live.pop(order.number, None)
            if not live:
                del self.live[order.trader]
        left = self.resting.get(order.trader, 0) - 1
        if left > 0:
            self.resting[order.trader] = left
        else:
            self.resting.pop(order.trader, None)

    def cancel(self, order: BookOrder, now: float) -> None:
        """Take a trader's resting order out of the book and out of the listing."""
        if not order.filled:
            self._leaves(order)
        self.book.cancel(order.number, now)
        self.by_trader[order.trader][order.side].pop(order.number, None)

    def expire(self, now: float) -> None:
        """Close every contract whose delivery has started: its resting orders expire.

        An expired order stays listed for ``EXPIRED_LISTED_FOR``, then leaves
        the trader's index, so that nothing grows for good.
        """
        while self.closing and self.closing[0][0] <= now:
            start, number = heapq.heappop(self.closing)
            order = self.book.orders[number]
            if not order.deleted and not order.filled:
                self.book.cancel(number, start)
                self._leaves(order)
                order.expired = True
                order.updated = start
                self.expired[number] = start
        # Oldest first (dicts keep insertion order, and expiries come in time order).
        while self.expired:
            number, expired = next(iter(self.expired.items()))
            if now < expired + EXPIRED_LISTED_FOR:
                break
            del self.expired[number]
            order = self.book.orders[number]
            self.by_trader.get(order.trader, {}).get(order.side, {}).pop(number, None)

    def listed(self, trader: str, direction: Optional[str] = None) -> Iterable[BookOrder]:
        """A trader's listed orders, oldest first (live and recently expired); one side if given."""
        sides = self.by_trader.get(trader, {})
        if direction is not None:
            return sides.get(direction, {}).values()
        return heapq.merge(*(orders.values() for orders in sides.values()), key=lambda order: order.number)
