"""The account as the client knows it: its trader names, its resting orders, its filled positions.

One view, fed by the client's own answers (an order created, refused, left
unknown, deleted), by the exchange's listings (``GET /orders`` then
``GET /trades``) and by the watchers; read by the limits (``_risk``), by
``positions()`` and by the kill switch. Safe to share between threads and
tasks: every change is made under one lock.

Trader names (GAME-API.md): the ``trader`` of the orders the account placed;
a trade is the account's when its buyer or seller is one of them. They are
learnt from listings and create answers, and may be given
(``RiskLimits(traders=[...])``). Until one is known, the account's trades
cannot be told from the market's.

Resting orders are counted as if they filled. An order whose request may
still land (its outcome unknown) keeps its reservation until the exchange
shows it (a listed order matching it, created within its late-request
window: ``_reconcile.matches``) or its window has closed
(``_order_life.request_window``); a listing read while the window is open
does not drop it.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple

from ._arguments import order_number_or_none
from ._contract import Contract
from ._order_life import RequestWindow, is_resting
from ._positions import decimal_of, positions, trader_names
from ._reconcile import matches

__all__ = ["Account", "RestingOrder", "Reservation", "check_traders"]

_ZERO = Decimal(0)
Key = Tuple[str, int]


@dataclass(frozen=True)
class RestingOrder:
    """What the account keeps of a resting order: enough to judge the next one."""

    contract: Contract
    side: str
    price: Decimal
    remaining: Decimal


@dataclass
class Reservation:
    """The orders of one ``create_order`` call that passed the limits, by their index in the call."""

    keys: Dict[int, Key] = field(default_factory=dict)


def check_traders(traders: Any, name: str = "traders") -> Tuple[str, ...]:
    """Trader names given by the caller: a list of non-empty strings; ``ValueError`` naming ``name`` otherwise."""
    if isinstance(traders, (str, bytes)) or not isinstance(traders, (list, tuple)):
        raise ValueError(f"{name} must be a list of trader names, got {traders!r}")
    if not all(isinstance(each, str) and each.strip() for each in traders):
        raise ValueError(f"{name} must be a list of trader names (non-empty strings), got {traders!r}")
    return tuple(traders)


def _listed(order: Mapping[str, Any]) -> Optional[Tuple[int, RestingOrder]]:
    number = order_number_or_none(order.get("order_id"))
    if number is None or not is_resting(order):
        return None
    try:
        contract = Contract.from_order(order) if "contract" not in order else Contract.parse(order["contract"])
        side = order.get("direction", order.get("side"))
        price = decimal_of(order.get("price"), "price")
        remaining = decimal_of(order.get("remaining_volume", order.get("volume")), "remaining_volume")
    except ValueError:
        return None
    if side not in ("buy", "sell"):
        return None
    return number, RestingOrder(contract, str(side), price, remaining)


def resting_of(order: Mapping[str, Any]) -> RestingOrder:
    """What rests of a validated order about to be sent (all of it)."""
    contract = Contract.from_order(order, check_offset=False)
    return RestingOrder(
        contract, str(order["side"]), decimal_of(order["price"], "price"), decimal_of(order["volume"], "volume")
    )


def readable_trades(trades: Iterable[Mapping[str, Any]]) -> List[Mapping[str, Any]]:
    """The trades whose contract, volume, price and fees can be read (the rest cannot be counted)."""
    readable = []
    for trade in trades:
        try:
            Contract.parse(trade.get("contract"))  # type: ignore[arg-type]
            decimal_of(trade.get("volume"), "volume")
            decimal_of(trade.get("price"), "price")
            decimal_of(trade.get("fees") or 0, "fees")
        except ValueError:
            continue
        readable.append(trade)
    return readable


class Account:
    """What the client knows of its account (see the module); ``traders`` the names given, if any."""

    def __init__(self, traders: Sequence[str] = ()) -> None:
        self._lock = threading.Lock()
        self._names: List[str] = list(check_traders(list(traders)))
        self._resting: Dict[Key, RestingOrder] = {}
        self._unknown: Set[Key] = set()
        # An unknown order's order as sent and its late-request window (None: settled by the next listing).
        self._pending: Dict[Key, Tuple[Mapping[str, Any], Optional[RequestWindow]]] = {}
        self._sent: Dict[Key, Mapping[str, Any]] = {}
        self._filled: Dict[Contract, Decimal] = {}
        #: Whether the last trades read held any trade (of anyone): with no names known, they cannot be judged.
        self.market_traded = False
        self._refreshed_at: Optional[float] = None
        self._counter = itertools.count(1)
        # When each entry was added (a number that only grows): a listing read before an
        # entry was added cannot know it, so a refresh keeps what came after it began.
        self._epoch = itertools.count(1)
        self._added: Dict[Key, int] = {}
        self._last_epoch = 0

    # -- trader names -----------------------------------------------------------------

    @property
    def traders(self) -> List[str]:
        """The account's trader names known so far (given, then learnt)."""
        with self._lock:
            return list(self._names)

    def learn(self, orders: Iterable[Mapping[str, Any]]) -> None:
        """Learn the trader names the account's own orders (listed, or create answers) carry."""
        with self._lock:
            self._learn(orders)

    def _learn(self, orders: Iterable[Mapping[str, Any]]) -> None:
        for name in trader_names(orders):
            if name not in self._names:
                self._names.append(name)
                if self.market_traded:
                    # The filled positions were counted without this name: read the trades again first.
                    self._refreshed_at = None

    # -- freshness ----------------------------------------------------------------------

    def needs_refresh(self, now: float, max_age: float) -> bool:
        """Whether the account must be read from the exchange before the next order."""
        with self._lock:
            if self._refreshed_at is None or self._unknown:
                return True
            return now - self._refreshed_at >= max_age

    def mark_stale(self) -> None:
        """Read the account again before the next order."""
        with self._lock:
            self._refreshed_at = None

    def begin_refresh(self) -> int:
        """Mark the moment before the orders are listed; hand the mark to ``refresh``."""
        with self._lock:
            return self._last_epoch

    def _stamp(self, key: Key) -> None:
        self._last_epoch = next(self._epoch)
        self._added[key] = self._last_epoch

    def _still_pending(
        self, key: Key, orders: Sequence[Mapping[str, Any]], claimed: Set[int], exchange_time: Optional[float]
    ) -> bool:
        """Whether an unknown order may still land: the listing does not show it and its window is open."""
        sent, window = self._pending.get(key, ({}, None))
        if window is None or exchange_time is None:
            return False  # nothing to bound it by: the listing settles it
        for order in orders:
            number = order_number_or_none(order.get("order_id"))
            if number is not None and number not in claimed and sent and matches(order, sent, window):
                claimed.add(number)
                return False  # shown: the listing counts it (or its fills, when it ended)
        return window.is_open(exchange_time)

    def refresh_orders(
        self,
        orders: Sequence[Mapping[str, Any]],
        trades: Optional[Sequence[Mapping[str, Any]]],
        now: float,
        since: Optional[int] = None,
        exchange_time: Optional[float] = None,
    ) -> None:
        """Replace the account with the exchange's view (orders listed before trades were read).

        ``since`` is ``begin_refresh()``'s mark, taken before the orders were
        listed: what was learnt after it (an order created or reserved by
        another thread or task meanwhile) is kept. ``exchange_time`` is the
        exchange's time when the listing was asked for: an unknown order
        whose late-request window is still open then, and that the listing
        does not show, keeps its reservation.
        """
        resting: Dict[Key, RestingOrder] = {}
        for order in orders:
            listed = _listed(order)
            if listed is not None:
                resting[("order", listed[0])] = listed[1]
        with self._lock:
            self._learn(orders)
            mark = self._last_epoch if since is None else since
            known = {key[1] for key in self._resting if key[0] == "order"}
            claimed = set(known)
            kept: Dict[Key, RestingOrder] = {}
            for key, held in self._resting.items():
                if self._added.get(key, 0) > mark:
                    kept[key] = held  # learnt after the listing began
                elif key in self._unknown:
                    if self._still_pending(key, orders, claimed, exchange_time):
                        kept[key] = held
                elif key[0] == "pending":
                    kept[key] = held  # on its way: its answer settles it
            self._resting = {**resting, **kept}
            self._unknown = {key for key in self._unknown if key in kept}
            self._pending = {key: value for key, value in self._pending.items() if key in self._resting}
            self._sent = {key: value for key, value in self._sent.items() if key in self._resting}
            self._added = {key: epoch for key, epoch in self._added.items() if key in self._resting}
            if trades is not None:
                readable = readable_trades(trades)
                self.market_traded = bool(readable)
                held_positions = positions(readable, self._names).contracts
                self._filled = {contract: position.net for contract, position in held_positions.items()}
            self._refreshed_at = now

    # -- what the client's own answers say --------------------------------------------------

    def reserve(self, order: Mapping[str, Any], held: RestingOrder) -> Key:
        """Count a validated order about to be sent as resting; the key its answer settles."""
        key = ("pending", next(self._counter))
        self._resting[key] = held
        self._sent[key] = order
        self._stamp(key)
        return key

    def created(self, reservation: Reservation, index: int, answer: Mapping[str, Any]) -> None:
        """The order at ``index`` of a call was created: it rests under its number (or ended in its answer)."""
        with self._lock:
            key = reservation.keys.pop(index, None)
            if key is None:
                return
            held = self._resting.pop(key, None)
            self._sent.pop(key, None)
            number = order_number_or_none(answer.get("order_id"))
            self._learn([answer])
            if held is None or number is None:
                self._refreshed_at = None  # an answer without an id: ask the exchange
                return
            held = self._after_answer(held, answer)
            if held is None:
                return  # it ended in its answer (filled entirely): nothing of it rests
            self._resting.setdefault(("order", number), held)
            self._stamp(("order", number))

    def _after_answer(self, held: RestingOrder, answer: Mapping[str, Any]) -> Optional[RestingOrder]:
        """What rests of ``held`` after its create answer; what it executed moves to the filled position."""
        try:
            executed = decimal_of(answer.get("executed_volume") or 0, "executed_volume")
        except ValueError:
            executed = _ZERO
        executed = min(max(executed, _ZERO), held.remaining)
        if executed:
            signed = executed if held.side == "buy" else -executed
            self._filled[held.contract] = self._filled.get(held.contract, _ZERO) + signed
        if not is_resting(answer):
            return None
        return RestingOrder(held.contract, held.side, held.price, held.remaining - executed)

    def released(self, reservation: Reservation, index: Optional[int] = None) -> None:
        """The order at ``index`` (every order of the call when None) was refused or never sent."""
        with self._lock:
            indices = list(reservation.keys) if index is None else [index]
            for each in indices:
                key = reservation.keys.pop(each, None)
                if key is not None:
                    self._resting.pop(key, None)
                    self._sent.pop(key, None)
                    self._added.pop(key, None)

    def unknown(
        self, reservation: Reservation, index: Optional[int] = None, window: Optional[RequestWindow] = None
    ) -> None:
        """The order at ``index`` (every one when None) may or may not rest: count it, and refresh first.

        With its late-request ``window`` it keeps its reservation until a
        listing shows it or the window has closed; without one, the next
        listing settles it.
        """
        with self._lock:
            indices = list(reservation.keys) if index is None else [index]
            for each in indices:
                key = reservation.keys.pop(each, None)
                if key is not None:
                    self._unknown.add(key)
                    self._pending[key] = (self._sent.get(key, {}), window)
            self._refreshed_at = None

    def cancelled(self, order_id: Any) -> None:
        """The order was deleted (or was already gone): read the account again before the next order.

        The order is not simply dropped: part of it may have filled since the
        account last read the trades, and dropping its whole volume would free
        room the fills still hold. It stays counted, as if it could fill,
        until the next refresh replaces it with the exchange's listing.
        """
        self.mark_stale()

    # -- reading it -------------------------------------------------------------------------

    def resting(self) -> List[Tuple[Optional[int], RestingOrder]]:
        """The resting orders counted (None for an order whose number is not known yet)."""
        with self._lock:
            return [(key[1] if key[0] == "order" else None, held) for key, held in self._resting.items()]

    def filled(self, contract: Contract) -> Decimal:
        """The filled net position of ``contract`` known."""
        with self._lock:
            return self._filled.get(contract, _ZERO)
