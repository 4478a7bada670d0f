"""Live events from polling: what changed in the orders, the trades and the market.

GAME has no push channel, so a watch polls a listing and diffs it against
the previous one. The diffing lives here, pure; the watch's schedule (which
call next, how long to sleep, which failure ends it) is ``_watch.py``'s, so
that each client's ``watch_*`` is a short loop that runs calls and sleeps.

One rule for every watcher: what is listed when the watch starts (its first
successful listing) is the **baseline**, and events are the changes after it.
The baseline is skipped unless the watch is made with ``existing=True``; then
it is given once, first, in a form a bot tells apart from a change: an
``OrderEvent`` of kind ``"existing"``, a ``MarketEvent`` with ``existing``
true, a trade with the extra key ``"existing": True``.

Orders (``OrderTracker``), per order id, over successive ``get_orders()`` listings:
    ``existing`` an order of the baseline (with ``existing=True`` only); what it
                had executed then is part of the baseline, not a fill;
    ``placed``  the first time an order is listed after the baseline;
    ``filled``  its ``executed_volume`` grew: ``volume`` is the growth, measured
                from the highest executed volume seen before (an order first
                seen partly executed gives ``placed`` then ``filled`` with what
                it had already executed; a volume that shrinks is ignored and
                never counted again);
    ``gone``    it is no longer listed, or listed in a state that ends it
                (``expired``, ``deleted``, ``cancelled``, ``rejected``);
                reported once.
    Over an order's life the ``filled`` volumes add up exactly (in decimal) to
    the highest ``executed_volume`` listed. ``complete`` says nothing is left to
    execute.

Trades (``TradeTracker``): each trade once, deduplicated by ``trade_id``;
with ``mine`` only those where one of the caller's trader names is buyer or
seller. The names come from the caller's own orders (each carries its
``trader``): until one is known, a trade watch lists the orders before the
trades, and new trades wait, unjudged, for a name. The trades listed when the watch starts are history, not news:
they are not reported (``existing=True`` reports them, marked).

Market (``MarketTracker``): a ``MarketEvent(contract, bid, ask)`` when a
contract's best bid or ask changes (the baseline, with ``existing=True``:
every contract listed); a contract that leaves the listing gets one event
with both None.

Every ``OrderEvent`` names its order as ``create_order`` answered it:
``event.order_id`` is ``"ord_1234"`` where the listing says ``1234``, so a bot
compares it with what ``create_order`` gave back, as is.

When a poll fails, the trackers keep their state: the next successful
listing is diffed against the last good one, so a failure neither invents
an event nor loses one (a fill during the outage is reported once, when the
listing comes back). When to poll, and which failure ends a watch, is
``gameproto/_watch.py``'s.
"""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import (
    Any,
    Dict,
    Hashable,
    Iterable,
    List,
    Literal,
    Mapping,
    Optional,
    Sequence,
    Set,
    Tuple,
    Union,
)

from ._arguments import order_id_as_created, order_number_or_none
from ._market import best_offers
from ._order_life import ENDED_STATES, FILLED, nothing_left, order_state
from ._positions import trader_names
from ._types import MarketRow, Number, Order, Trade

__all__ = [
    "OrderEvent",
    "MarketEvent",
    "OrderTracker",
    "TradeTracker",
    "MarketTracker",
    "OrderEventKind",
]

#: The ends of an order that make it ``gone`` while still listed (a filled one ends by its fills).
_GONE_WHILE_LISTED = ENDED_STATES - {FILLED}

#: Orders and trades that left the listing and are remembered, so that one
#: listed again (a flaky listing) is not counted twice. Bounded.
_REMEMBERED = 10_000

Amount = Union[Number, Decimal]
#: What happened to an order.
OrderEventKind = Literal["existing", "placed", "filled", "gone"]


@dataclass(frozen=True)
class OrderEvent:
    """Something happened to one of the caller's orders.

    ``kind`` is ``"existing"`` (listed when the watch started, given only
    with ``existing=True``), ``"placed"``, ``"filled"`` or ``"gone"``;
    ``order`` the latest listing of it, as the exchange answered (for ``gone``
    the last one seen); ``volume`` the newly executed volume (``filled``
    only, else None); ``complete`` whether nothing is left to execute.
    ``order_id`` is the id in the form ``create_order`` answers (``"ord_1234"``).
    """

    kind: OrderEventKind
    order: Order
    volume: Optional[Amount] = None
    complete: bool = False

    @property
    def order_id(self) -> Any:
        """The order's id as ``create_order`` answers it: ``"ord_1234"`` for an order listed as ``1234``."""
        return order_id_as_created(self.order.get("order_id"))

    @property
    def existing(self) -> bool:
        """Whether this is the baseline (the order was listed when the watch started), not a change."""
        return self.kind == "existing"


@dataclass(frozen=True)
class MarketEvent:
    """A contract's best bid or ask changed; None where that side is empty.

    ``existing``: the contract's best prices when the watch started (the
    baseline, given only with ``existing=True``), not a change.
    """

    contract: str
    bid: Optional[Number]
    ask: Optional[Number]
    existing: bool = False


#: The largest decimal exponent of an amount read from an answer: a float's.
#: Past it (``"1e1000000"``) no arithmetic on it is safe, so it says nothing.
_LARGEST_EXPONENT = 308


def _exact(value: Any) -> Optional[Decimal]:
    """A JSON number as the decimal it was written as; None for anything else, or beyond a float's range."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        parsed = Decimal(value)
    elif isinstance(value, float):
        parsed = Decimal(repr(value)) if math.isfinite(value) else Decimal("NaN")
    elif isinstance(value, Decimal):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = Decimal(value.strip())
        except InvalidOperation:
            return None
    else:
        return None
    if not parsed.is_finite() or abs(parsed.adjusted()) > _LARGEST_EXPONENT:
        return None
    return parsed


def _like(amount: Decimal, *examples: Any) -> Amount:
    """``amount`` in the type the exchange used: int for ints, Decimal for Decimals, float otherwise."""
    if all(type(example) is int for example in examples) and amount == amount.to_integral_value():
        return int(amount)
    if any(isinstance(example, Decimal) for example in examples):
        return amount
    return float(amount)


def _order_key(order: Order) -> Hashable:
    raw: Any = order.get("order_id")
    number = order_number_or_none(raw)
    if number is not None:
        return number  # "ord_12", "12" and 12 are one order
    return raw if isinstance(raw, str) else repr(raw)


def _ended(order: Order) -> bool:
    return order_state(order) in _GONE_WHILE_LISTED


def _complete(order: Order) -> bool:
    return nothing_left(order)


class _Remembered:
    """A bounded memory of keys that left a listing, oldest forgotten first."""

    def __init__(self, size: int = _REMEMBERED) -> None:
        self._size = size
        self._items: collections.OrderedDict[Hashable, Any] = collections.OrderedDict()

    def put(self, key: Hashable, value: Any = None) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self._size:
            self._items.popitem(last=False)

    def pop(self, key: Hashable) -> Tuple[bool, Any]:
        if key in self._items:
            return True, self._items.pop(key)
        return False, None

    def __contains__(self, key: Hashable) -> bool:
        return key in self._items


class OrderTracker:
    """Order events from successive ``get_orders()`` listings (see the module for the rule)."""

    def __init__(self, *, existing: bool = False) -> None:
        self._existing = existing
        self._started = False
        self._listed: Dict[Hashable, Order] = {}
        # The highest executed volume counted so far, per listed order.
        self._counted: Dict[Hashable, Decimal] = {}
        self._ended: Set[Hashable] = set()
        self._left = _Remembered()

    def update(self, orders: Sequence[Order]) -> List[OrderEvent]:
        """The events since the previous listing, in listing order, then the orders that left.

        The first listing is the baseline: ``existing`` events if asked, else none.
        """
        if not self._started:
            return self._baseline(orders)
        events: List[OrderEvent] = []
        listed: Dict[Hashable, Order] = {}
        for order in orders:
            key = _order_key(order)
            if key in listed:
                continue  # listed twice in one answer: the first stands
            listed[key] = order
            if key not in self._listed:
                came_back, counted = self._left.pop(key)
                if came_back:
                    self._counted[key] = counted
                    self._ended.add(key)  # it was reported gone; it does not come back to life
                else:
                    events.append(OrderEvent("placed", order, None, _complete(order)))
            events.extend(self._fills(key, order))
            if key not in self._ended and _ended(order):
                self._ended.add(key)
                events.append(OrderEvent("gone", order, None, _complete(order)))
        for key, order in self._listed.items():
            if key not in listed:
                if key not in self._ended:
                    events.append(OrderEvent("gone", order, None, _complete(order)))
                self._left.put(key, self._counted.pop(key, Decimal(0)))
                self._ended.discard(key)
        self._listed = listed
        return events

    def resume(self, reported: Mapping[Hashable, Tuple[Decimal, bool]]) -> None:
        """Start from what a previous run reported (executed volume, ended) by order key, not from a baseline.

        The next listing then gives only what changed since: a fill, an order
        placed or gone while nobody watched.
        """
        for key, (executed, ended) in reported.items():
            if ended:
                self._left.put(key, executed)
            else:
                self._listed[key] = {"order_id": key}  # type: ignore[typeddict-item]
                self._counted[key] = executed
        self._started = True

    def _baseline(self, orders: Sequence[Order]) -> List[OrderEvent]:
        self._started = True
        events: List[OrderEvent] = []
        for order in orders:
            key = _order_key(order)
            if key in self._listed:
                continue
            self._listed[key] = order
            executed = _exact(order.get("executed_volume"))
            if executed is not None and executed > 0:
                self._counted[key] = executed  # executed before the watch: not a fill of it
            if _ended(order):
                self._ended.add(key)
            if self._existing:
                events.append(OrderEvent("existing", order, None, _complete(order)))
        return events

    def _fills(self, key: Hashable, order: Order) -> List[OrderEvent]:
        raw: Any = order.get("executed_volume")
        executed = _exact(raw)
        counted = self._counted.get(key, Decimal(0))
        if executed is None or executed <= counted:
            return []
        self._counted[key] = executed
        growth = executed - counted
        return [OrderEvent("filled", order, _like(growth, raw, order.get("volume")), _complete(order))]


def _trade_key(trade: Trade) -> Hashable:
    trade_id: Any = trade.get("trade_id")
    if isinstance(trade_id, (str, int)) and not isinstance(trade_id, bool):
        return ("id", str(trade_id))
    # No id: the trade's own facts name it.
    fields = ("contract", "timestamp", "price", "volume", "buyer", "seller", "direction")
    return ("facts", *(repr(trade.get(field)) for field in fields))


class TradeTracker:
    """New trades, each once, from successive ``get_trades()`` listings."""

    def __init__(self, *, mine: bool = True, traders: Iterable[str] = (), existing: bool = False) -> None:
        self.mine = mine
        self._traders: Set[str] = {name for name in traders if isinstance(name, str) and name}
        self._seen: Set[Hashable] = set()
        self._left = _Remembered()
        self._existing = existing
        self._started = False
        self._baseline: Set[Hashable] = set()

    @property
    def traders(self) -> Set[str]:
        """The caller's trader names known so far."""
        return set(self._traders)

    @property
    def needs_traders(self) -> bool:
        """Whether ``mine`` is asked and no trader name of the caller is known yet."""
        return self.mine and not self._traders

    def learn_traders(self, orders: Iterable[Order]) -> None:
        """Take the caller's trader names from its own orders (read as the account reads them)."""
        self._traders.update(trader_names(orders))

    def resume(self, reported: Iterable[Hashable]) -> None:
        """Start from the trades a previous run reported (by key), not from a baseline: later ones are news."""
        self._seen.update(reported)
        self._started = True

    def is_mine(self, trade: Trade) -> bool:
        return trade.get("buyer") in self._traders or trade.get("seller") in self._traders

    def update(self, trades: Sequence[Trade]) -> List[Trade]:
        """The trades not reported before, oldest listed first.

        The first listing is the baseline: its trades are reported only with
        ``existing=True``, each a copy with ``"existing": True`` added.

        While ``mine`` is asked and no trader name is known, new trades are
        left unjudged (neither reported nor dismissed): they are judged on a
        later listing, once a name is known.
        """
        new: List[Trade] = []
        listed: Set[Hashable] = set()
        unjudged: Set[Hashable] = set()
        for trade in trades:
            key = _trade_key(trade)
            if key in listed:
                continue
            listed.add(key)
            if not self._started:
                self._baseline.add(key)
            if key in self._seen or key in self._left or (key in self._baseline and not self._existing):
                continue
            if self.needs_traders:
                unjudged.add(key)
            elif not self.mine or self.is_mine(trade):
                new.append(_marked(trade) if key in self._baseline else trade)
        for key in self._seen - listed:
            self._left.put(key)
        self._seen = listed - unjudged
        self._started = True
        return new


def _marked(trade: Trade) -> Trade:
    """A trade of the baseline, told apart from a new one by ``"existing": True``."""
    marked: Dict[str, Any] = dict(trade)
    marked["existing"] = True
    return marked  # type: ignore[return-value]


def _best_price(rows: List[MarketRow]) -> Optional[Number]:
    return rows[0].get("price") if rows else None


class MarketTracker:
    """Best bid and ask changes, from successive ``get_market_data()`` listings."""

    def __init__(self, *, existing: bool = False) -> None:
        self._existing = existing
        self._started = False
        self._best: Dict[str, Tuple[Optional[Number], Optional[Number]]] = {}

    def update(self, rows: Sequence[MarketRow]) -> List[MarketEvent]:
        """One event per contract whose best bid or ask changed, in contract order.

        The first listing is the baseline: every contract listed, marked
        ``existing``, if asked; else none.
        """
        best = {
            contract: (_best_price(sides["buy"]), _best_price(sides["sell"]))
            for contract, sides in best_offers(rows).items()
            if contract
        }
        if not self._started:
            self._started = True
            self._best = best
            if not self._existing:
                return []
            return [MarketEvent(contract, bid, ask, True) for contract, (bid, ask) in sorted(best.items())]
        events = [
            MarketEvent(contract, bid, ask)
            for contract, (bid, ask) in best.items()
            if self._best.get(contract) != (bid, ask)
        ]
        events += [
            MarketEvent(contract, None, None)
            for contract, was in self._best.items()
            if contract not in best and was != (None, None)
        ]
        self._best = best
        events.sort(key=lambda event: event.contract)
        return events
