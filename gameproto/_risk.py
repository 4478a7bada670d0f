"""Pre-trade limits: each order judged before it is sent, against what the account holds.

``RiskLimits`` says what a bot may do; ``RiskBook`` is the account as the
client knows it (``_account.Account``: its trader names, its resting orders
counted as if they filled, its filled net position per contract) with the
best and last traded prices (``_market``). An order is checked and, when accepted, *reserved* in
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
  refreshed before the next order; it keeps its reservation until a listing
  shows it or its late-request window has closed (``_order_life``): a
  request that lands after its call gave up is never left uncounted;
- while the account's trader names are unknown (nothing of it listed, none
  given as ``RiskLimits(traders=[...])``) its trades cannot be told from the
  market's: a net position limit then refuses to trade rather than trade
  blind, as long as the market has traded at all;
- the orders listing is read before the trades, so a fill between the two
  is counted twice (strict), never missed;
- an order created by another thread or task while a refresh reads the
  listing is kept (the listing may be older than it): strict, never missed;
- the best prices for the price band are as old as the book: a fast market
  can move them within ``max_state_age``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, cast

from ._account import Account, Reservation, RestingOrder, check_traders, resting_of
from ._contract import Contract
from ._errors import GameAPIError, OutcomeUnknownError, RiskBreach, RiskLimitError
from ._market import best_prices, last_prices
from ._order_life import RequestWindow
from ._positions import decimal_of
from ._types import LTPEntry, MarketRow

__all__ = [
    "RiskLimits",
    "RiskBook",
    "RiskGuard",
    "RiskBreach",
    "RiskLimitError",
    "Reservation",
    "RestingOrder",
    "shown",
]

_ZERO = Decimal(0)
_LIMIT_NAMES = ("max_order_volume", "max_net_position", "max_open_volume", "price_band")
#: Why a net position limit refuses while the account's names are unknown.
_BLIND = (
    "the account's trader names are unknown (none of its orders is listed), so its filled position cannot be "
    "counted: pass RiskLimits(traders=[...]) with the account's trader names rather than trade blind"
)


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
    - ``traders``: the account's trader names (GAME-API.md), for a bot that
      starts with nothing of its own listed; learnt from its orders otherwise.
    """

    max_order_volume: Optional[Any] = None
    max_net_position: Optional[Any] = None
    max_open_volume: Optional[Any] = None
    price_band: Optional[Any] = None
    max_open_orders: Optional[int] = None
    self_trade_prevention: bool = True
    max_state_age: float = 5.0
    traders: Optional[Sequence[str]] = None

    def __post_init__(self) -> None:
        for name in _LIMIT_NAMES:
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, str) or isinstance(value, bool):
                # As an order's price and volume: a string is refused, not read (README: constructor arguments).
                raise ValueError(f"RiskLimits.{name} must be a number (int, float or Decimal), got {value!r}")
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
        if self.traders is not None:
            object.__setattr__(self, "traders", check_traders(self.traders, "RiskLimits.traders"))

    @property
    def needs_trades(self) -> bool:
        return self.max_net_position is not None

    @property
    def needs_prices(self) -> bool:
        return self.price_band is not None


class RiskBook(Account):
    """The account for its limits, with the market's prices; safe to share between threads and tasks."""

    def __init__(self, limits: RiskLimits, traders: Sequence[str] = ()) -> None:
        if not isinstance(limits, RiskLimits):
            raise ValueError(f"risk must be a RiskLimits, got {type(limits).__name__}")
        super().__init__(list(limits.traders or ()) + [name for name in traders if name not in (limits.traders or ())])
        self.limits = limits
        self._best: Dict[Contract, Dict[str, Decimal]] = {}
        self._last_price: Dict[Contract, Decimal] = {}

    def needs_refresh(self, now: float, max_age: Optional[float] = None) -> bool:
        """Whether the book must be read from the exchange before the next order."""
        return super().needs_refresh(now, self.limits.max_state_age if max_age is None else max_age)

    def refresh(
        self,
        orders: Sequence[Mapping[str, Any]],
        trades: Optional[Sequence[Mapping[str, Any]]],
        market: Optional[Sequence[Mapping[str, Any]]],
        last: Optional[Sequence[Mapping[str, Any]]],
        now: float,
        since: Optional[int] = None,
        exchange_time: Optional[float] = None,
    ) -> None:
        """The account from the exchange (``Account.refresh_orders``), and the prices when given."""
        best = best_prices(cast(Sequence[MarketRow], market)) if market is not None else None
        newest = last_prices(cast(Sequence[LTPEntry], last)) if last is not None else None
        self.refresh_orders(orders, trades, now, since, exchange_time)
        with self._lock:
            if best is not None:
                self._best = best
            if newest is not None:
                self._last_price = newest

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
                held = resting_of(order)
                found = self._breaches(index, held)
                if found:
                    breaches.extend(found)
                    continue
                reservation.keys[index] = self.reserve(order, held)
        return reservation, breaches

    def _breaches(self, index: int, order: RestingOrder) -> List[RiskBreach]:
        """Every limit ``order`` would cross, in the order of ``RiskLimits``' fields."""
        where = f"({order.contract.id} {order.side} {shown(order.remaining)} @ {shown(order.price)})"
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
        return "max_order_volume", order.remaining, allowed, f"volume {shown(order.remaining)} is over {shown(allowed)}"

    def _net_position(self, order: RestingOrder, same: List[RestingOrder]) -> Optional[Tuple[str, Any, Any, str]]:
        """The order's side at its worst: filled, plus every resting order of that side filled, plus this one."""
        allowed = self.limits.max_net_position
        if allowed is None:
            return None
        if not self._names and self.market_traded:
            return "max_net_position", None, allowed, _BLIND
        resting = sum((held.remaining for held in same if held.side == order.side), _ZERO) + order.remaining
        worst = self._filled.get(order.contract, _ZERO) + (resting if order.side == "buy" else -resting)
        if -allowed <= worst <= allowed:
            return None
        return (
            "max_net_position",
            worst,
            allowed,
            f"net position {shown(worst)} if every resting order filled, past +/-{shown(allowed)}",
        )

    def _open_volume(self, order: RestingOrder) -> Optional[Tuple[str, Any, Any, str]]:
        allowed = self.limits.max_open_volume
        if allowed is None:
            return None
        open_volume = sum((held.remaining for held in self._resting.values()), _ZERO) + order.remaining
        if open_volume <= allowed:
            return None
        return "max_open_volume", open_volume, allowed, f"open volume {shown(open_volume)} is over {shown(allowed)}"

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
        shown_price, far = shown(order.price), shown(band)
        return "price_band", order.price, band, f"price {shown_price} is more than {far} from {shown(reference)}"

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
        why = f"would cross the account's own resting {opposite} at {shown(own)}"
        return "self_trade_prevention", order.price, own, why

    def _reference_price(self, contract: Contract, side: str) -> Optional[Decimal]:
        opposite = "sell" if side == "buy" else "buy"
        best = self._best.get(contract, {}).get(opposite)
        return best if best is not None else self._last_price.get(contract)


_SHOWN_PLACES = Decimal("1e-9")


def shown(number: Any) -> str:
    """A number as a message shows it: ``26.93`` for ``26.930000000000007``, no exponent, no trailing zeros.

    The breach's ``value`` and ``allowed`` keep the exact number; only the text is rounded.
    """
    try:
        exact = decimal_of(number, "number")
    except ValueError:
        return str(number)
    try:
        rounded = exact.quantize(_SHOWN_PLACES) if exact.as_tuple().exponent < -9 else exact  # type: ignore[operator]
    except ArithmeticError:  # more digits than the context holds: shown as it is
        rounded = exact
    text = format(rounded, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


class RiskGuard:
    """One ``create_order`` call under limits: the screen handed to the plan, then what came of each order.

    ``window`` gives, when the call ends without an answer, the late-request
    window of its orders (``_order_life.request_window``): they keep their
    reservation until the exchange shows them or it closes.
    """

    def __init__(self, book: RiskBook, window: Optional[Callable[[], RequestWindow]] = None) -> None:
        self.book = book
        self.reservation = Reservation()
        self._window = window

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
        left, as a cancelled task) counts its orders as resting until a
        listing shows them or their late-request window closes; a refusal
        frees them.
        """
        window = self._window() if self._window is not None else None
        partial = getattr(error, "partial_result", None)
        if isinstance(partial, dict):
            for entry in partial.get("created", []):
                self.book.created(self.reservation, entry["index"], entry.get("result") or {})
            for index in partial.get("unknown", []):
                self.book.unknown(self.reservation, index, window)
            self.book.released(self.reservation)
        elif isinstance(error, OutcomeUnknownError) or not isinstance(error, GameAPIError):
            self.book.unknown(self.reservation, None, window)
        else:
            self.book.released(self.reservation)
