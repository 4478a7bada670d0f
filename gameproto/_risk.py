"""Pre-trade limits: each order judged before it is sent, against what the account holds.

``RiskLimits`` says what a bot may do; ``RiskBook`` is what the client knows
of its account: its resting orders (each counted as if it filled), its
filled net position per contract (from its trades), the best prices and the
last traded prices. An order is checked and, when accepted, *reserved* in
the book in one step (no await in between), so that orders sent at once
(a bulk, or tasks and threads sharing the client) are judged against one
another as well.

Where the book comes from, and when it can be wrong
---------------------------------------------------
The book is kept from the client's own answers (an order created, deleted,
refused) and refreshed from the exchange (``GET /orders``, then
``GET /trades``, and the market and last prices when a price band is set)
before an order when it is older than ``max_state_age`` seconds, or after
anything left it uncertain (an order whose outcome is unknown). Between
refreshes:

- a fill moves volume from a resting order to the filled position on the
  same side, so the position counted for a limit (filled plus resting as if
  filled) does not grow: fills can never make the book too lenient;
- an order deleted, expired or filled elsewhere is still counted as resting:
  the book is then stricter than it needs to be until the next refresh;
- orders placed by *another* client on the same account (another process,
  the web screen) are not seen until the next refresh: within
  ``max_state_age`` the book can be too lenient by what they hold. Use one
  client per account, or ``max_state_age=0`` to refresh before every order;
- an order whose outcome is unknown is counted as resting, and the book is
  refreshed before the next order;
- the orders listing is read before the trades, so a fill between the two
  is counted twice (strict), never missed;
- an order created by another thread or task while a refresh reads the
  listing is kept (the listing may be older than it): strict, never missed;
- the best prices for the price band are as old as the book: a fast market
  can move them within ``max_state_age``.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple

from ._contract import Contract
from ._errors import GameAPIError, OutcomeUnknownError, RiskBreach, RiskLimitError
from ._positions import decimal_of, positions, trader_names

__all__ = [
    "RiskLimits",
    "RiskBook",
    "RiskGuard",
    "RiskBreach",
    "RiskLimitError",
    "Reservation",
    "RestingOrder",
    "is_resting",
]

_ZERO = Decimal(0)
_LIMIT_NAMES = ("max_order_volume", "max_net_position", "max_open_volume", "price_band")
_OVER = {"Expired", "Filled", "Cancelled", "Deleted"}


@dataclass(frozen=True)
class RiskLimits:
    """The limits a client holds its orders to; None: no such limit.

    - ``max_order_volume``: the largest volume of one order (MW).
    - ``max_net_position``: the largest net position per contract (MW), long
      or short, counting the resting orders as if they filled.
    - ``max_open_volume``: the largest volume resting in all (MW), all
      contracts and sides, the new order included.
    - ``price_band``: how far (EUR/MWh) an order's price may be from the
      best opposite price of its contract, or its last traded price when
      the book is empty on that side (no reference price: no check).
    - ``max_open_orders``: the most resting orders, the new one included.
    - ``self_trade_prevention``: refuse an order that would cross one of
      the account's own resting orders (a wash trade); on by default.
    - ``max_state_age``: seconds after which the book is read from the
      exchange again before an order (0: before every order).
    """

    max_order_volume: Optional[Any] = None
    max_net_position: Optional[Any] = None
    max_open_volume: Optional[Any] = None
    price_band: Optional[Any] = None
    max_open_orders: Optional[int] = None
    self_trade_prevention: bool = True
    max_state_age: float = 5.0

    def __post_init__(self) -> None:
        for name in _LIMIT_NAMES:
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, str):
                # As an order's price and volume: a string is refused, never read as a number.
                raise ValueError(f"RiskLimits.{name} must be a number (int, float or Decimal), got str {value!r}")
            number = decimal_of(value, f"RiskLimits.{name}")
            if number < 0 or (number == 0 and name != "price_band"):
                raise ValueError(
                    f"RiskLimits.{name} must be {'>= 0' if name == 'price_band' else '> 0'}, got {value!r}"
                )
            object.__setattr__(self, name, number)
        count = self.max_open_orders
        if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
            raise ValueError(f"RiskLimits.max_open_orders must be a whole number >= 1, got {count!r}")
        if not isinstance(self.self_trade_prevention, bool):
            raise ValueError(
                f"RiskLimits.self_trade_prevention must be True or False, got {self.self_trade_prevention!r}"
            )
        age = self.max_state_age
        if isinstance(age, bool) or not isinstance(age, (int, float)) or not 0 <= age < float("inf"):
            raise ValueError(f"RiskLimits.max_state_age must be a number of seconds >= 0, got {age!r}")

    @property
    def needs_trades(self) -> bool:
        return self.max_net_position is not None

    @property
    def needs_prices(self) -> bool:
        return self.price_band is not None


@dataclass(frozen=True)
class RestingOrder:
    """What the book keeps of a resting order: enough to judge the next one."""

    contract: Contract
    side: str
    price: Decimal
    remaining: Decimal


def is_resting(order: Mapping[str, Any]) -> bool:
    """Whether a listed order still rests on the book: something remains, not expired, filled or deleted."""
    state = order.get("state")
    status = order.get("status")
    if state in _OVER or (isinstance(status, str) and status.capitalize() in _OVER):
        return False
    remaining = order.get("remaining_volume", order.get("volume"))
    try:
        return decimal_of(remaining, "remaining_volume") > 0
    except ValueError:
        return False


def _listed(order: Mapping[str, Any]) -> Optional[Tuple[int, RestingOrder]]:
    from ._arguments import order_number_or_none

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


@dataclass
class Reservation:
    """The orders of one ``create_order`` call that passed the limits, by their index in the call."""

    keys: Dict[int, Tuple[str, int]] = field(default_factory=dict)


class RiskBook:
    """What the client knows of its account, for its limits; safe to share between threads and tasks."""

    def __init__(self, limits: RiskLimits) -> None:
        if not isinstance(limits, RiskLimits):
            raise ValueError(f"risk must be a RiskLimits, got {type(limits).__name__}")
        self.limits = limits
        self._lock = threading.Lock()
        self._resting: Dict[Tuple[str, int], RestingOrder] = {}
        self._unknown: Set[Tuple[str, int]] = set()
        self._filled: Dict[Contract, Decimal] = {}
        self._best: Dict[Contract, Dict[str, Decimal]] = {}
        self._last_price: Dict[Contract, Decimal] = {}
        self.traders: List[str] = []
        self._refreshed_at: Optional[float] = None
        self._counter = itertools.count(1)
        # When each entry was added (a number that only grows): a listing read before an
        # entry was added cannot know it, so a refresh keeps what came after it began.
        self._epoch = itertools.count(1)
        self._added: Dict[Tuple[str, int], int] = {}
        self._last_epoch = 0

    # -- freshness ------------------------------------------------------------

    def needs_refresh(self, now: float) -> bool:
        """Whether the book must be read from the exchange before the next order."""
        with self._lock:
            if self._refreshed_at is None or self._unknown:
                return True
            return now - self._refreshed_at >= self.limits.max_state_age

    def mark_stale(self) -> None:
        """Read the book again before the next order."""
        with self._lock:
            self._refreshed_at = None

    def begin_refresh(self) -> int:
        """Mark the moment before the orders are listed; hand the mark to ``refresh``."""
        with self._lock:
            return self._last_epoch

    def _stamp(self, key: Tuple[str, int]) -> None:
        self._last_epoch = next(self._epoch)
        self._added[key] = self._last_epoch

    def refresh(
        self,
        orders: Sequence[Mapping[str, Any]],
        trades: Optional[Sequence[Mapping[str, Any]]],
        market: Optional[Sequence[Mapping[str, Any]]],
        last_prices: Optional[Sequence[Mapping[str, Any]]],
        now: float,
        since: Optional[int] = None,
    ) -> None:
        """Replace the book with the exchange's view (orders listed before trades were read).

        ``since`` is ``begin_refresh()``'s mark, taken before the orders were
        listed: what the book learnt after it (an order created or reserved
        by another thread or task meanwhile) is kept, as the listing may not
        show it yet. Without it the listing is taken as current.
        """
        resting: Dict[Tuple[str, int], RestingOrder] = {}
        for order in orders:
            listed = _listed(order)
            if listed is not None:
                resting[("order", listed[0])] = listed[1]
        with self._lock:
            for name in trader_names(orders):
                if name not in self.traders:
                    self.traders.append(name)
            mark = self._last_epoch if since is None else since
            # Orders still on their way keep their reservation, and what was learnt after the listing
            # began is kept; an outcome unknown before it began is settled by the listing.
            kept = {
                key: held
                for key, held in self._resting.items()
                if (key[0] == "pending" and key not in self._unknown) or self._added.get(key, 0) > mark
            }
            self._resting = {**resting, **kept}
            self._unknown = {key for key in self._unknown if self._added.get(key, 0) > mark}
            self._added = {key: epoch for key, epoch in self._added.items() if key in self._resting}
            if trades is not None:
                held_positions = positions(_readable(trades), self.traders).contracts
                self._filled = {contract: position.net for contract, position in held_positions.items()}
            if market is not None:
                self._best = _best_prices(market)
            if last_prices is not None:
                self._last_price = _last_prices(last_prices)
            self._refreshed_at = now

    # -- what the client's own answers say --------------------------------------

    def created(self, reservation: Reservation, index: int, answer: Mapping[str, Any]) -> None:
        """The order at ``index`` of a call was created: it rests under its number."""
        from ._arguments import order_number_or_none

        with self._lock:
            key = reservation.keys.pop(index, None)
            if key is None:
                return
            held = self._resting.pop(key, None)
            number = order_number_or_none(answer.get("order_id"))
            name = answer.get("trader")
            if isinstance(name, str) and name and name not in self.traders:
                self.traders.append(name)
            if held is None or number is None:
                self._refreshed_at = None  # an answer without an id: ask the exchange
                return
            self._resting.setdefault(("order", number), held)
            self._stamp(("order", number))

    def released(self, reservation: Reservation, index: Optional[int] = None) -> None:
        """The order at ``index`` (every order of the call when None) was refused or never sent."""
        with self._lock:
            indices = list(reservation.keys) if index is None else [index]
            for each in indices:
                key = reservation.keys.pop(each, None)
                if key is not None:
                    self._resting.pop(key, None)
                    self._added.pop(key, None)

    def unknown(self, reservation: Reservation, index: Optional[int] = None) -> None:
        """The order at ``index`` (every one when None) may or may not rest: count it, and refresh first."""
        with self._lock:
            indices = list(reservation.keys) if index is None else [index]
            for each in indices:
                key = reservation.keys.pop(each, None)
                if key is not None:
                    self._unknown.add(key)
            self._refreshed_at = None

    def cancelled(self, order_id: Any) -> None:
        """The order was deleted (or was already gone): read the book again before the next order.

        The order is not simply dropped: part of it may have filled since the
        book last read the trades, and dropping its whole volume would free
        room the fills still hold. It stays counted, as if it could fill,
        until the next refresh replaces it with the exchange's listing and
        the fills with its trades.
        """
        self.mark_stale()

    # -- the limits ---------------------------------------------------------------

    def check(self, orders: Sequence[Tuple[int, Mapping[str, Any]]]) -> Tuple[Reservation, List[RiskBreach]]:
        """Judge validated ``orders`` (each with its index in the call), in order; reserve those that pass.

        Each accepted order is counted before the next is judged. Returns the
        reservation and every breach (an order may breach several limits).
        """
        reservation = Reservation()
        breaches: List[RiskBreach] = []
        with self._lock:
            for index, order in orders:
                held = _resting_of(order)
                found = self._breaches(index, held)
                if found:
                    breaches.extend(found)
                    continue
                key = ("pending", next(self._counter))
                self._resting[key] = held
                self._stamp(key)
                reservation.keys[index] = key
        return reservation, breaches

    def resting(self) -> List[Tuple[Optional[int], RestingOrder]]:
        """The resting orders the book counts (None for an order whose number is not known yet)."""
        with self._lock:
            return [(key[1] if key[0] == "order" else None, held) for key, held in self._resting.items()]

    def filled(self, contract: Contract) -> Decimal:
        """The filled net position of ``contract`` the book knows."""
        with self._lock:
            return self._filled.get(contract, _ZERO)

    def _breaches(self, index: int, order: RestingOrder) -> List[RiskBreach]:
        """Every limit ``order`` would cross, in the order of ``RiskLimits``' fields."""
        where = f"({order.contract.id} {order.side} {_shown(order.remaining)} @ {_shown(order.price)})"
        same = [held for held in self._resting.values() if held.contract == order.contract]
        judged = (
            self._order_volume(order),
            self._net_position(order, same),
            self._open_volume(order),
            self._open_orders(),
            self._price_band(order),
            self._self_trade(order, same),
        )
        return [
            RiskBreach(index, limit, value, allowed, f"{why} {where}")
            for limit, value, allowed, why in (found for found in judged if found is not None)
        ]

    def _order_volume(self, order: RestingOrder) -> Optional[Tuple[str, Any, Any, str]]:
        allowed = self.limits.max_order_volume
        if allowed is None or order.remaining <= allowed:
            return None
        why = f"volume {_shown(order.remaining)} is over {_shown(allowed)}"
        return "max_order_volume", order.remaining, allowed, why

    def _net_position(self, order: RestingOrder, same: List[RestingOrder]) -> Optional[Tuple[str, Any, Any, str]]:
        """The order's side at its worst: filled, plus every resting order of that side filled, plus this one."""
        allowed = self.limits.max_net_position
        if allowed is None:
            return None
        resting = sum((held.remaining for held in same if held.side == order.side), _ZERO) + order.remaining
        worst = self._filled.get(order.contract, _ZERO) + (resting if order.side == "buy" else -resting)
        if -allowed <= worst <= allowed:
            return None
        return (
            "max_net_position",
            worst,
            allowed,
            f"net position {_shown(worst)} if every resting order filled, past +/-{_shown(allowed)}",
        )

    def _open_volume(self, order: RestingOrder) -> Optional[Tuple[str, Any, Any, str]]:
        allowed = self.limits.max_open_volume
        if allowed is None:
            return None
        open_volume = sum((held.remaining for held in self._resting.values()), _ZERO) + order.remaining
        if open_volume <= allowed:
            return None
        return "max_open_volume", open_volume, allowed, f"open volume {_shown(open_volume)} is over {_shown(allowed)}"

    def _open_orders(self) -> Optional[Tuple[str, Any, Any, str]]:
        allowed = self.limits.max_open_orders
        count = len(self._resting) + 1
        if allowed is None or count <= allowed:
            return None
        return "max_open_orders", count, allowed, f"{count} open orders, over {allowed}"

    def _price_band(self, order: RestingOrder) -> Optional[Tuple[str, Any, Any, str]]:
        band = self.limits.price_band
        if band is None:
            return None
        reference = self._reference_price(order.contract, order.side)
        if reference is None or abs(order.price - reference) <= band:
            return None
        why = f"price {_shown(order.price)} is more than {_shown(band)} from {_shown(reference)}"
        return "price_band", order.price, band, why

    def _self_trade(self, order: RestingOrder, same: List[RestingOrder]) -> Optional[Tuple[str, Any, Any, str]]:
        if not self.limits.self_trade_prevention:
            return None
        if order.side == "buy":
            crossed = [held.price for held in same if held.side == "sell" and held.price <= order.price]
        else:
            crossed = [held.price for held in same if held.side == "buy" and held.price >= order.price]
        if not crossed:
            return None
        own = min(crossed) if order.side == "buy" else max(crossed)
        opposite = "sell" if order.side == "buy" else "buy"
        why = f"would cross the account's own resting {opposite} at {_shown(own)}"
        return "self_trade_prevention", order.price, own, why

    def _reference_price(self, contract: Contract, side: str) -> Optional[Decimal]:
        opposite = "sell" if side == "buy" else "buy"
        best = self._best.get(contract, {}).get(opposite)
        return best if best is not None else self._last_price.get(contract)


#: The decimals a number keeps in a message: a float's noise (26.930000000000007) is cut, the value kept exact.
_SHOWN = Decimal("0.000001")


def _shown(number: Any) -> str:
    """``number`` for a message: a Decimal with more than 6 decimals rounded to 6, written without an exponent."""
    if isinstance(number, Decimal) and number.is_finite():
        exponent = number.as_tuple().exponent
        if isinstance(exponent, int) and exponent < -6:
            number = number.quantize(_SHOWN).normalize()
        return format(number, "f")
    return str(number)


def _resting_of(order: Mapping[str, Any]) -> RestingOrder:
    contract = Contract.from_order(order, check_offset=False)
    return RestingOrder(
        contract, str(order["side"]), decimal_of(order["price"], "price"), decimal_of(order["volume"], "volume")
    )


def _readable(trades: Iterable[Mapping[str, Any]]) -> List[Mapping[str, Any]]:
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


def _best_prices(rows: Iterable[Mapping[str, Any]]) -> Dict[Contract, Dict[str, Decimal]]:
    """The best bid (``buy``) and ask (``sell``) of each contract in market rows."""
    best: Dict[Contract, Dict[str, Decimal]] = {}
    for row in rows:
        try:
            contract = Contract.parse(row.get("contract"))  # type: ignore[arg-type]
        except ValueError:
            continue
        quotes: List[Tuple[str, Any]] = [("buy", row.get("bid")), ("sell", row.get("ask"))]
        if row.get("direction") in ("buy", "sell"):
            quotes.append((str(row["direction"]), row.get("price")))
        for side, value in quotes:
            if value is None:
                continue
            try:
                price = decimal_of(value, "price")
            except ValueError:
                continue
            sides = best.setdefault(contract, {})
            held = sides.get(side)
            if held is None or (price > held if side == "buy" else price < held):
                sides[side] = price
    return best


def _last_prices(entries: Iterable[Mapping[str, Any]]) -> Dict[Contract, Decimal]:
    """The newest traded price of each contract in LTP entries."""
    newest: Dict[Contract, Tuple[str, Decimal]] = {}
    for entry in entries:
        try:
            contract = Contract.parse(entry.get("contract"))  # type: ignore[arg-type]
            price = decimal_of(entry.get("price"), "price")
        except ValueError:
            continue
        stamp = str(entry.get("timestamp") or "")
        held = newest.get(contract)
        if held is None or stamp >= held[0]:
            newest[contract] = (stamp, price)
    return {contract: price for contract, (_, price) in newest.items()}


class RiskGuard:
    """One ``create_order`` call under limits: the screen handed to the plan, then what came of each order."""

    def __init__(self, book: RiskBook) -> None:
        self.book = book
        self.reservation = Reservation()

    def screen(self, orders: Sequence[Tuple[int, Mapping[str, Any]]]) -> List[RiskBreach]:
        """Judge and reserve ``orders``; the breaches (``plan_orders`` raises or reports them)."""
        self.reservation, breaches = self.book.check(orders)
        return breaches

    def sent_one(self, answer: Mapping[str, Any]) -> None:
        """The single order was created."""
        self.book.created(self.reservation, 0, answer)

    def sent_bulk(self, result: Mapping[str, Any]) -> None:
        """A bulk was answered: the created orders rest, the refused ones free their reservation."""
        for entry in result.get("created", []):
            self.book.created(self.reservation, entry["index"], entry.get("result") or {})
        self.book.released(self.reservation)

    def failed(self, error: BaseException) -> None:
        """The call ended with ``error``: settle every reservation it still holds.

        An outcome unknown (or a call abandoned while its request may have
        left, as a cancelled task) counts its orders as resting until the
        next refresh; a refusal frees them.
        """
        partial = getattr(error, "partial_result", None)
        if isinstance(partial, dict):
            for entry in partial.get("created", []):
                self.book.created(self.reservation, entry["index"], entry.get("result") or {})
            for index in partial.get("unknown", []):
                self.book.unknown(self.reservation, index)
            self.book.released(self.reservation)
        elif isinstance(error, OutcomeUnknownError) or not isinstance(error, GameAPIError):
            self.book.unknown(self.reservation)
        else:
            self.book.released(self.reservation)
