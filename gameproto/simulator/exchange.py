"""The GAME exchange as a pure state machine: ``handle(Request) -> Response``.

No sockets, no event loop, no threads: a server or a test hands it requests
and the clock is injected. It speaks the protocol of shared/GAME-API.md:
token exchange, bearer auth, a per-trader rate limit, orders checked with
the same rules as the clients (``gameproto._orders``), price-time matching
(``book``), market data, last traded prices and spot data (``spot``).

A contract closes at its delivery start, as on a real intraday market: its
resting orders expire. An expired order leaves the book and the market data
at once; the trader's order listing still shows it, with state ``Expired``
(and ``status`` ``expired``) and its executed and remaining volumes as they
were, for ``EXPIRED_LISTED_FOR`` seconds; then it is no longer listed.

The exchange's clock may run ahead of or behind the host's (``clock_offset``):
every "now" it uses, for the order rules, token lifetimes, stamps and the
``/status`` timestamp, is ``clock() + clock_offset`` (see ``now``).
"""

from __future__ import annotations

import collections
import datetime as dt
import heapq
import json
import math
import random
import re
import secrets
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable, Deque, Dict, Iterable, List, Mapping, Optional, Tuple, Union

from .. import _constants
from .._arguments import InvalidArgumentError, check_area_name, check_date, check_market_zone
from .._boundary import Request, Response
from .._calls import encode_json
from .._errors import OrderProblem, OrderValidationError
from .._orders import validate_order
from . import spot
from .book import MONEY, BookOrder, Fill, OrderBook, canonical_duration
from .contracts import contract_name, delivery_window, duration_minutes
from .faults import FaultPlan, Reaction, react

__all__ = ["Exchange", "MARKET_MAKERS", "EXPIRED_LISTED_FOR"]

#: The traders ``seed_market`` quotes for; no personal token belongs to them.
MARKET_MAKERS = ("market-maker-1", "market-maker-2")

# The exchange's own limits on top of the order rules: sizes a double and a
# Decimal of modest precision hold exactly, so money never rounds in the book.
_MAX_AMOUNT = Decimal(10**9)
_PLACES = Decimal("1e-20")

#: Seconds an expired order stays in its trader's listing after its delivery start.
EXPIRED_LISTED_FOR = 60.0

_UTC = dt.timezone.utc
_DAY = 86400.0
_QUARTER_HOUR = 900
_ORDER_PATH = re.compile(r"/orders/([^/]+)")
_DIGITS = re.compile(r"[0-9]+")
_LIMIT = re.compile(r"[0-9]{1,7}")
_JSON_HEADERS = {"content-type": "application/json"}
#: Distinct ``DELETE /orders/<id>`` paths counted in ``attempts`` before the rest are
#: counted under one template key: a client must not grow the counter at will.
_DELETE_KEYS_COUNTED = 1000
_DELETE_TEMPLATE = "/orders/{order_id}"
#: Live access tokens one personal token holds; a new exchange beyond that drops the oldest.
_ACCESS_TOKENS_PER_TOKEN = 1000
#: The token exchange body is a token in a JSON object: anything larger is refused unread.
_TOKEN_BODY_MAX = 4096
_CHALLENGE = {"WWW-Authenticate": "Bearer"}

JSONObject = Dict[str, Any]
Loc = List[Union[str, int]]


@dataclass(frozen=True)
class _Context:
    """One authorised request on its way to its handler."""

    request: Request
    trader: str
    now: float
    #: The caller's address as the server saw it; None in memory.
    client: Optional[str] = None

    def param(self, name: str) -> Optional[str]:
        """The last value of a query parameter (as FastAPI reads one), or None."""
        found = None
        for key, value in self.request.query:
            if key == name:
                found = value
        return found


@dataclass
class _Access:
    trader: str
    personal: str
    expires: float


class _Refused(Exception):
    """A request the exchange answers with an error, raised from deep in a handler."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


_Handler = Callable[[_Context], Response]


def _answer(status: int, value: Any, headers: Optional[Mapping[str, str]] = None) -> Response:
    merged = dict(_JSON_HEADERS)
    if headers:
        merged.update(headers)
    return Response(status, merged, encode_json(value))


def _error(status: int, detail: str, headers: Optional[Mapping[str, str]] = None) -> Response:
    return _answer(status, {"detail": detail}, headers)


def _invalid(loc: Loc, msg: str, kind: str = "value_error") -> _Refused:
    return _Refused(_answer(422, {"detail": [{"loc": loc, "msg": msg, "type": kind}]}))


def _more_problems(count: int) -> str:
    return f"... and {count:,} more problem{'s' if count != 1 else ''}"


def _iso(moment: float) -> str:
    return spot.iso_time(dt.datetime.fromtimestamp(moment, _UTC))


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _json_body(request: Request) -> Any:
    """The request body as JSON, floats as Decimal so money stays exact."""
    if not request.body:
        raise _invalid(["body"], "field required", "value_error.missing")
    try:
        return json.loads(request.body, parse_float=Decimal, parse_constant=_refuse_constant)
    except (ValueError, ArithmeticError, RecursionError):  # ArithmeticError: Decimal("1e999999999999")
        raise _invalid(["body", 0], "JSON decode error", "value_error.jsondecode")


def _decimal(value: Any) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))  # the shortest text of the double, as JSON wrote it
    return Decimal(int(value))


def _size_problem(value: Decimal) -> Optional[str]:
    if value.copy_abs() > _MAX_AMOUNT:
        return f"must be at most {_MAX_AMOUNT} in size on this exchange"
    if value.quantize(_PLACES, context=MONEY) != value:
        return "must have at most 20 decimal places on this exchange"
    return None


def _exchange_problems(valid: JSONObject) -> List[OrderProblem]:
    """What this exchange refuses beyond the order rules: sizes it cannot keep exact, options it cannot echo."""
    problems = []
    for name in ("price", "volume"):
        reason = _size_problem(_decimal(valid[name]))
        if reason is not None:
            problems.append(OrderProblem(None, name, reason))
    if "options" in valid:
        try:
            encode_json(valid["options"])
        except (ValueError, ArithmeticError, TypeError, RecursionError):
            problems.append(OrderProblem(None, "options", "must hold numbers within the range of a double"))
    return problems


def _direction(context: _Context) -> Optional[str]:
    direction = context.param("direction")
    if direction is not None and direction not in ("buy", "sell"):
        raise _invalid(["query", "direction"], "must be 'buy' or 'sell'")
    return direction


def _minutes(context: _Context) -> Optional[int]:
    """The ``duration`` filter in minutes (``60m`` and ``1h`` are the same), or None."""
    duration = context.param("duration")
    if duration is None:
        return None
    minutes = duration_minutes(duration)
    if minutes is None:
        raise _invalid(["query", "duration"], "must be a duration like '15m' or '1h'")
    return minutes


def _trade_view(fill: Fill, market_zone: str) -> JSONObject:
    stamp = _iso(fill.time)
    return {
        "trade_id": f"trd_{fill.number}",
        "contract": fill.contract,
        "direction": fill.direction,
        "volume": fill.volume,
        "price": fill.price,
        "timestamp": stamp,
        "buyer": fill.buyer,
        "seller": fill.seller,
        "fees": fill.fee,
        "duration": canonical_duration(fill.minutes),
        "execution_time": stamp,
        "buy_order_id": fill.buy_order,
        "sell_order_id": fill.sell_order,
        "market_zone": market_zone,
    }


def _order_view(order: BookOrder, *, created: bool = False) -> JSONObject:
    details = order.details
    return {
        "order_id": f"ord_{order.number}" if created else order.number,
        "direction": order.side,
        "volume": order.volume,
        "price": order.price,
        "state": "Hidden" if order.hidden else "Displayed",
        "contract": order.contract,
        "trader": order.trader,
        "date": details["date"],
        "start_time": details["start_time"],
        "end_time": details["end_time"],
        "duration": details["duration"],
        "tz_offset_hours": details["tz_offset_hours"],
        "created_at": _iso(order.created),
        "updated_at": _iso(order.updated),
        "executed_volume": order.executed,
        "remaining_volume": order.remaining,
        "average_price": _rounded(order.average_price),
        "execution_count": order.execution_count,
        "total_value": order.total_value,
        "fees": order.fees,
        "metadata": {"options": details["options"]} if "options" in details else {},
        "status": "filled" if order.filled else "active",
    }


def _rounded(value: Optional[Decimal]) -> Optional[Decimal]:
    # A quotient has no exact form; twelve places are finer than any price this exchange takes.
    return None if value is None else value.quantize(_PLACES, context=MONEY)


def _levels(orders: Iterable[BookOrder]) -> List[Tuple[Decimal, Decimal]]:
    """Displayed resting volume per price, in book order; hidden orders never show."""
    levels: List[Tuple[Decimal, Decimal]] = []
    for order in orders:
        if order.hidden:
            continue
        if levels and levels[-1][0] == order.price:
            levels[-1] = (order.price, levels[-1][1] + order.remaining)
        else:
            levels.append((order.price, order.remaining))
    return levels


def _day_figures(fills: List[Fill], now: float) -> JSONObject:
    day = [fill for fill in fills if fill.time > now - _DAY]
    if not day:
        return {"high_24h": None, "low_24h": None, "volume_24h": 0, "change_24h": None, "change_percent_24h": None}
    first, last = day[0].price, day[-1].price
    change = last - first
    return {
        "high_24h": max(fill.price for fill in day),
        "low_24h": min(fill.price for fill in day),
        "volume_24h": sum((fill.volume for fill in day), Decimal(0)),
        "change_24h": change,
        "change_percent_24h": None if first == 0 else (change * 100 / first).quantize(Decimal("0.01")),
    }


def _spot_date(context: _Context, name: str) -> Optional[dt.date]:
    value = context.param(name)
    if value is None:
        return None
    try:
        checked = check_date(value, name)
    except InvalidArgumentError:
        raise _invalid(["query", name], "must be a date YYYY-MM-DD")
    return dt.date.fromisoformat(checked) if checked is not None else None


def _spot_limit(context: _Context) -> int:
    text = context.param("limit")
    if text is None:
        return 24
    if not _LIMIT.fullmatch(text) or not 1 <= int(text) <= spot.MAX_LIMIT:
        raise _invalid(["query", "limit"], f"must be a whole number from 1 to {spot.MAX_LIMIT}")
    return int(text)


class Exchange:
    """The embedded GAME exchange; ``handle`` answers one request, ``react`` adds the fault plan."""

    def __init__(
        self,
        tokens: Union[Iterable[str], Mapping[str, str]] = ("demo-token",),
        *,
        clock: Callable[[], float] = time.time,
        token_lifetime: int = 3600,
        rate_limit_per_minute: int = _constants.RATE_LIMIT_PER_MINUTE,
        allow_non_positive_price: bool = False,
        seed: int = 0,
        fee_per_mwh: Decimal = Decimal("0.05"),
        market_zone: str = "10YCH-SWISSGRIDZ",
        clock_offset: float = 0.0,
        auth_refusals_per_minute: int = _constants.AUTH_REFUSALS_PER_MINUTE,
    ) -> None:
        if (
            isinstance(clock_offset, bool)
            or not isinstance(clock_offset, (int, float))
            or not math.isfinite(clock_offset)
        ):
            raise ValueError(f"clock_offset must be a finite number of seconds, got {clock_offset!r}")
        if isinstance(tokens, str):  # one token, not its characters
            tokens = (tokens,)
        if isinstance(tokens, Mapping):
            self._traders: Dict[str, str] = {str(token): str(name) for token, name in tokens.items()}
        else:
            self._traders = {token: f"trader-{number}" for number, token in enumerate(tokens, 1)}
        self._clock = clock
        self.clock_offset = float(clock_offset)
        self.token_lifetime = token_lifetime
        self.rate_limit_per_minute = rate_limit_per_minute
        self.allow_non_positive_price = allow_non_positive_price
        self.seed = seed
        self.market_zone = market_zone
        self.auth_refusals_per_minute = auth_refusals_per_minute
        self.faults = FaultPlan()
        #: Requests seen per (method, path): routed ones only, and only token exchanges or
        #: requests carrying an access token this exchange issued (so the keys stay few).
        self.attempts: collections.Counter[Tuple[str, str]] = collections.Counter()
        self.exchanges = 0
        #: Exceptions ``handle`` caught (and answered 400): a bug here; tests expect none.
        self.internal_errors: List[str] = []
        self._book = OrderBook(fee_per_mwh)
        self._access: Dict[str, _Access] = {}
        # Access tokens of each personal token, oldest first: purged once expired, at most
        # _ACCESS_TOKENS_PER_TOKEN live, so a loop of valid exchanges cannot grow them for good.
        self._issued: Dict[str, Deque[str]] = {}
        self._windows: Dict[str, Tuple[int, int]] = {}
        # Refused token exchanges per client address in the current one-minute window.
        self._refusals: Dict[str, Tuple[int, int]] = {}
        # Each trader's listed orders per side, oldest first: listing costs what the trader holds.
        self._by_trader: Dict[str, Dict[str, Dict[int, BookOrder]]] = {}
        # Resting orders by delivery start, (start, number): the next to expire first.
        self._closing: List[Tuple[float, int]] = []
        # Expired orders, still listed until EXPIRED_LISTED_FOR after their expiry, oldest first.
        self._expired: Dict[int, float] = {}
        self._started = self.now()
        self._routes: Dict[str, Dict[str, _Handler]] = {
            "/auth/token": {"POST": self._exchange_token},
            "/status": {"GET": self._status},
            "/orders": {"GET": self._list_orders, "POST": self._create_order},
            "/orders/create-bulk": {"POST": self._create_bulk},
            "/trades": {"GET": self._trades},
            "/market": {"GET": self._market},
            "/market/market-ltp": {"GET": self._market_ltp},
            "/market/latest-ltp": {"GET": self._latest_ltp},
            "/spot": {"GET": self._spot},
            "/spot/status": {"GET": self._spot_status},
        }

    # -- the public surface -------------------------------------------------

    def now(self) -> float:
        """The exchange's time, epoch seconds: the host's clock shifted by ``clock_offset``."""
        return self._clock() + self.clock_offset

    def handle(self, request: Request) -> Response:
        """The answer to ``request``; never raises and never answers 5xx.

        Refused token exchanges are limited per client address, which a server
        gives in the ``x-gameproto-client`` header (without it, in memory, never limited).
        """
        try:
            return self._handle(request)
        except _Refused as refused:
            return refused.response
        except Exception as error:  # a bug must not become a 500 or kill the server; it is recorded
            self.internal_errors.append(f"{request.method} {request.path}: {type(error).__name__}: {error}")
            return _error(400, "Bad Request")

    def react(self, request: Request) -> Reaction:
        """What a server does with ``request``: the answer, or the fault the plan injects."""
        self._count_attempt(request)
        return react(self.handle, self.faults, request)

    def screen(self, request: Request) -> Optional[Response]:
        """The refusal a request earns from its head alone (404, 405, 401, 413), or None.

        A server asks before it reads a body, so that a client without a valid
        access token never gets a body buffered. A refusal is counted in
        ``attempts`` as ``react`` would count it; nothing else changes.
        """
        refusal = self._screen(request)
        if refusal is not None:
            self._count_attempt(request)
        return refusal

    def _screen(self, request: Request) -> Optional[Response]:
        methods = self._methods(request.path)
        if not methods:
            return _error(404, "Not Found")
        if request.method not in methods:
            return _error(405, "Method Not Allowed", {"Allow": ", ".join(sorted(methods))})
        if request.path == "/auth/token":
            declared = request.header("Content-Length")
            if declared is not None and (not declared.isdigit() or int(declared) > _TOKEN_BODY_MAX):
                return _error(413, f"a token exchange body is at most {_TOKEN_BODY_MAX} bytes")
            return None
        try:
            self._authenticate(request, self._clock())
        except _Refused as refused:
            return refused.response
        return None

    def expire_access_tokens(self) -> None:
        """Every access token issued so far is expired from now on."""
        now = self._clock()
        for access in self._access.values():
            access.expires = min(access.expires, now)

    def revoke(self, personal_token: str) -> None:
        """No more exchanges for ``personal_token``; its access tokens stop working."""
        self._traders.pop(personal_token, None)
        for key in self._issued.pop(personal_token, ()):
            self._access.pop(key, None)

    @property
    def access_tokens_held(self) -> int:
        """Access tokens the exchange remembers (live ones, and those expired a short while ago)."""
        return len(self._access)

    def orders_of(self, trader: str, direction: Optional[str] = None, now: Optional[float] = None) -> List[JSONObject]:
        """The listing view of a trader's orders, oldest first; one side if given.

        Live orders, and those that expired at their delivery start less than
        ``EXPIRED_LISTED_FOR`` ago (shown as expired).
        """
        moment = self.now() if now is None else now
        self._expire(moment)
        sides = self._by_trader.get(trader, {})
        if direction is not None:
            chosen: Iterable[BookOrder] = sides.get(direction, {}).values()
        else:
            chosen = heapq.merge(*(orders.values() for orders in sides.values()), key=lambda order: order.number)
        listed = []
        for order in chosen:
            if not order.deleted:
                listed.append(_order_view(order))
            elif order.number in self._expired:
                listed.append(dict(_order_view(order), state="Expired", status="expired"))
        return listed

    @property
    def trades(self) -> List[JSONObject]:
        """Every trade, oldest first."""
        return [_trade_view(fill, self.market_zone) for fill in self._book.fills]

    def seed_market(self, *, now: Optional[float] = None, orders: int = 24) -> None:
        """Give a new user a live book: market makers' quotes and a few past trades.

        ``orders`` resting displayed orders, a bid and an ask per quarter hour
        from the next one on, never crossing; before them three trades of
        the last half hour on the first contracts.
        """
        moment = self.now() if now is None else now
        draw = random.Random(self.seed)
        first_slot = (math.floor(moment / _QUARTER_HOUR) + 1) * _QUARTER_HOUR
        buyer, seller = MARKET_MAKERS
        for past in range(3):
            slot = first_slot + _QUARTER_HOUR * past
            price = self._mid_price(slot) + Decimal(past - 1) / 4  # within the quotes' spread: nothing crosses
            volume, at = Decimal(past + 1), moment - 1800 + 600 * past
            self._seed_order(seller, "sell", price, volume, slot, moment, at)
            self._seed_order(buyer, "buy", price, volume, slot, moment, at)
        for index in range(orders):
            quarter, side = divmod(index, 2)
            slot = first_slot + _QUARTER_HOUR * quarter
            half_spread = Decimal("0.50") + Decimal(draw.randint(0, 8)) / 4
            mid = self._mid_price(slot)
            price = mid - half_spread if side == 0 else mid + half_spread
            volume = Decimal(draw.randint(2, 20)) / 2
            maker = MARKET_MAKERS[(quarter + side) % 2]
            self._seed_order(maker, "buy" if side == 0 else "sell", price, volume, slot, moment, moment)

    # -- routing, auth and the rate limit -----------------------------------

    def _count_attempt(self, request: Request) -> None:
        """Count a routed request that is a token exchange or carries an access token issued here."""
        if request.method not in self._methods(request.path):
            return
        if request.path != "/auth/token" and self._access.get(self._bearer(request)) is None:
            return
        key = (request.method, request.path)
        if request.method == "DELETE" and key not in self.attempts and len(self.attempts) >= _DELETE_KEYS_COUNTED:
            key = ("DELETE", _DELETE_TEMPLATE)
        self.attempts[key] += 1

    def _handle(self, request: Request) -> Response:
        methods = self._methods(request.path)
        if not methods:
            return _error(404, "Not Found")
        handler = methods.get(request.method)
        if handler is None:
            return _error(405, "Method Not Allowed", {"Allow": ", ".join(sorted(methods))})
        now = self.now()
        self._expire(now)
        if request.path == "/auth/token":  # the one call without a bearer token, and not rate limited
            return handler(_Context(request, "", now, request.header(_constants.SERVER_CLIENT_HEADER)))
        trader = self._authenticate(request, now)
        self._count_request(trader, now)
        return handler(_Context(request, trader, now))

    def _methods(self, path: str) -> Dict[str, _Handler]:
        methods = dict(self._routes.get(path, {}))
        if _ORDER_PATH.fullmatch(path):
            methods["DELETE"] = self._delete_order
        return methods

    def _exchange_token(self, context: _Context) -> Response:
        body = _json_body(context.request)
        token = body.get("token") if isinstance(body, dict) else None
        if type(token) is not str:
            raise _invalid(["body", "token"], "field required (a string)", "value_error.missing")
        trader = self._traders.get(token)
        if trader is None:
            return self._refused_exchange(context)
        access = secrets.token_urlsafe(32)
        self._access[access] = _Access(trader, token, context.now + self.token_lifetime)
        issued = self._issued.setdefault(token, collections.deque())
        issued.append(access)
        self._purge(issued, context.now)
        self.exchanges += 1
        return _answer(200, {"access_token": access, "token_type": "bearer", "expires_in": self.token_lifetime})

    def _purge(self, issued: Deque[str], now: float) -> None:
        """Forget a personal token's access tokens expired a while ago, and the oldest beyond the cap."""
        while issued:
            access = self._access.get(issued[0])
            stale = access is None or access.expires + _constants.ACCESS_TOKEN_PURGE_AFTER <= now
            if not stale and len(issued) <= _ACCESS_TOKENS_PER_TOKEN:
                break
            self._access.pop(issued.popleft(), None)

    def _refused_exchange(self, context: _Context) -> Response:
        """401 for a wrong personal token; 429 once the address made too many this minute."""
        client = context.client
        if client is None:
            return _error(401, "Invalid token")
        window = math.floor(context.now / 60)
        start, used = self._refusals.get(client, (window, 0))
        if start != window:
            used = 0
        if used >= self.auth_refusals_per_minute:
            wait = max(1, math.ceil((window + 1) * 60 - context.now))
            return _error(429, "Too many refused token exchanges", {"Retry-After": str(wait)})
        if client not in self._refusals and len(self._refusals) >= 1024:
            # Addresses of past minutes hold nothing worth keeping: the table stays small.
            self._refusals = {key: kept for key, kept in self._refusals.items() if kept[0] == window}
        self._refusals[client] = (window, used + 1)
        return _error(401, "Invalid token")

    def _bearer(self, request: Request) -> str:
        scheme, _, value = (request.header("Authorization") or "").strip().partition(" ")
        return value.strip() if scheme.lower() == "bearer" else ""

    def _authenticate(self, request: Request, now: float) -> str:
        """The trader an access token belongs to; 401 when it is missing, unknown or expired."""
        access = self._access.get(self._bearer(request))
        if access is None:
            raise _Refused(_error(401, "Not authenticated", _CHALLENGE))
        if now >= access.expires:
            raise _Refused(_error(401, "Token expired", _CHALLENGE))
        return access.trader

    def _count_request(self, trader: str, now: float) -> None:
        """Count one request in the trader's fixed one-minute window; 429 beyond the limit."""
        window = math.floor(now / 60)
        start, used = self._windows.get(trader, (window, 0))
        if start != window:
            used = 0
        if used >= self.rate_limit_per_minute:
            wait = max(1, math.ceil((window + 1) * 60 - now))
            raise _Refused(_error(429, "Rate limit exceeded", {"Retry-After": str(wait)}))
        self._windows[trader] = (window, used + 1)

    # -- orders --------------------------------------------------------------

    def _place(
        self, raw: Any, trader: str, now: float, at: Optional[float] = None
    ) -> Tuple[Optional[BookOrder], List[OrderProblem], int]:
        """Check one order and put it in the book (matching it); or the problems found and how many more.

        ``now`` is the clock the rules use; ``at`` the time the order and its
        fills are stamped with (``seed_market`` backdates its trades).
        """
        try:
            valid = validate_order(
                raw, now=dt.datetime.fromtimestamp(now, _UTC), allow_non_positive_price=self.allow_non_positive_price
            )
        except OrderValidationError as error:
            return None, error.errors, error.omitted
        problems = _exchange_problems(valid)
        if problems:
            return None, problems, 0
        start, minutes = delivery_window(valid)
        stamp = now if at is None else at
        order = BookOrder(
            number=self._book.next_number(),
            trader=trader,
            side=valid["side"],
            price=_decimal(valid["price"]),
            volume=_decimal(valid["volume"]),
            contract=contract_name(start, minutes),
            minutes=minutes,
            hidden=valid["state"] == "hidden",
            created=stamp,
            details=valid,
        )
        self._by_trader.setdefault(trader, {}).setdefault(order.side, {})[order.number] = order
        self._book.submit(order, stamp)
        if not order.filled:
            heapq.heappush(self._closing, (start.timestamp(), order.number))
        return order, [], 0

    def _expire(self, now: float) -> None:
        """Close every contract whose delivery has started: its resting orders expire.

        An expired order stays listed for ``EXPIRED_LISTED_FOR``, then leaves
        the trader's index, so that nothing grows for good.
        """
        while self._closing and self._closing[0][0] <= now:
            start, number = heapq.heappop(self._closing)
            order = self._book.orders[number]
            if not order.deleted and not order.filled:
                self._book.cancel(number)
                order.updated = start
                self._expired[number] = start
        # Oldest first (dicts keep insertion order, and expiries come in time order).
        while self._expired:
            number, expired = next(iter(self._expired.items()))
            if now < expired + EXPIRED_LISTED_FOR:
                break
            del self._expired[number]
            order = self._book.orders[number]
            self._by_trader.get(order.trader, {}).get(order.side, {}).pop(number, None)

    def _create_order(self, context: _Context) -> Response:
        body = _json_body(context.request)
        order, problems, omitted = self._place(body, context.trader, context.now)
        if order is None:
            shown = problems[: _constants.ORDER_PROBLEMS_SHOWN]
            detail: List[JSONObject] = [
                {"loc": ["body", problem.field], "msg": problem.reason, "type": "value_error"} for problem in shown
            ]
            more = len(problems) - len(shown) + omitted
            if more:  # counted, not listed: the answer stays small whatever the order holds
                detail.append({"loc": ["body"], "msg": _more_problems(more), "type": "value_error.too_many"})
            return _answer(422, {"detail": detail})
        return _answer(200, _order_view(order, created=True))

    def _create_bulk(self, context: _Context) -> Response:
        body = _json_body(context.request)
        orders = body.get("orders") if isinstance(body, dict) else None
        if type(orders) is not list:
            raise _invalid(["body", "orders"], "must be a list of orders")
        if len(orders) > _constants.BULK_LIMIT:
            raise _invalid(["body", "orders"], f"must hold at most {_constants.BULK_LIMIT} orders, got {len(orders)}")
        placed: List[Tuple[int, BookOrder]] = []
        failed: List[JSONObject] = []
        for index, raw in enumerate(orders):
            order, problems, omitted = self._place(raw, context.trader, context.now)
            if order is None:
                shown = problems[: _constants.ORDER_PROBLEMS_SHOWN]
                error = "; ".join(str(OrderProblem(index, problem.field, problem.reason)) for problem in shown)
                more = len(problems) - len(shown) + omitted
                if more:
                    error += "; " + _more_problems(more)
                failed.append({"index": index, "error": error})
            else:
                placed.append((index, order))
        # Rendered after the whole bulk, so an answer shows fills by later orders of the same bulk.
        created = [{"index": index, "result": _order_view(order, created=True)} for index, order in placed]
        return _answer(200, {"requested": len(orders), "created": created, "failed": failed})

    def _list_orders(self, context: _Context) -> Response:
        return _answer(200, self.orders_of(context.trader, _direction(context), context.now))

    def _delete_order(self, context: _Context) -> Response:
        raw = context.request.path[len("/orders/") :]
        if raw.startswith("ord_"):
            raw = raw[len("ord_") :]  # the creation answer's form: accepted, as a trader would expect
        if not _DIGITS.fullmatch(raw):
            raise _invalid(["path", "order_id"], "value is not a valid integer", "type_error.integer")
        number = int(raw) if len(raw) <= 18 else -1  # longer than any id we hand out
        order = self._book.orders.get(number)
        if order is None or order.deleted or order.trader != context.trader:
            return _error(404, "Order not found")
        self._book.cancel(number)
        self._by_trader[order.trader][order.side].pop(number, None)
        return _answer(200, {"status": "deleted", "order_id": number})

    # -- market data ----------------------------------------------------------

    def _trades(self, context: _Context) -> Response:
        direction, minutes = _direction(context), _minutes(context)
        listed = [
            _trade_view(fill, self.market_zone)
            for fill in self._book.fills
            if direction in (None, fill.direction) and minutes in (None, fill.minutes)
        ]
        return _answer(200, listed)

    def _market(self, context: _Context) -> Response:
        direction, minutes = _direction(context), _minutes(context)
        stamp = _iso(context.now)
        rows: List[JSONObject] = []
        for contract in self._book.contracts():
            bids = _levels(self._book.resting(contract, "buy"))
            asks = _levels(self._book.resting(contract, "sell"))
            length = self._contract_minutes(contract)
            if minutes not in (None, length) or not (bids or asks):
                continue
            shown = {"buy": bids, "sell": asks}
            if direction is not None and not shown[direction]:
                continue
            common = {"contract": contract, "duration": canonical_duration(length)}
            rows.append(self._summary(common, bids, asks, context.now, stamp))
            for side, levels in shown.items():
                if direction in (None, side):
                    for price, volume in levels:
                        rows.append(dict(common, direction=side, price=price, volume=volume, timestamp=stamp))
        return _answer(200, rows)

    def _contract_minutes(self, contract: str) -> int:
        for side in ("buy", "sell"):
            for order in self._book.resting(contract, side):
                return order.minutes
        return 0

    def _summary(
        self,
        common: JSONObject,
        bids: List[Tuple[Decimal, Decimal]],
        asks: List[Tuple[Decimal, Decimal]],
        now: float,
        stamp: str,
    ) -> JSONObject:
        """A contract's summary row: no ``direction``, so readers take its bid and ask."""
        bid = bids[0][0] if bids else None
        ask = asks[0][0] if asks else None
        fills = self._book.fills_by_contract.get(str(common["contract"]), [])
        price: Optional[Decimal]
        if fills:
            price = fills[-1].price
        elif bid is not None and ask is not None:
            price = (bid + ask) / 2
        else:
            price = bid if bid is not None else ask
        row: JSONObject = {"timestamp": stamp, **common}
        row.update(
            price=price,
            volume=sum((volume for _, volume in bids + asks), Decimal(0)),
            bid=bid,
            ask=ask,
            spread=None if bid is None or ask is None else ask - bid,
        )
        row.update(_day_figures(fills, now))
        return row

    def _ltp_entries(self, minutes: Optional[int]) -> List[JSONObject]:
        return [
            {
                "market_zone": self.market_zone,
                "contract": contract,
                "price": fills[-1].price,
                "volume": fills[-1].volume,
                "timestamp": _iso(fills[-1].time),
            }
            for contract, fills in sorted(self._book.fills_by_contract.items())
            if minutes in (None, fills[-1].minutes)
        ]

    def _market_ltp(self, context: _Context) -> Response:
        zone = context.param("market_zone")
        try:
            check_market_zone(zone)
        except InvalidArgumentError:
            raise _invalid(["query", "market_zone"], "must be an EIC area code like '10YCH-SWISSGRIDZ'")
        if zone not in (None, self.market_zone):
            return _answer(200, [])  # every trade of this exchange happens in its own zone
        return _answer(200, self._ltp_entries(None))

    def _latest_ltp(self, context: _Context) -> Response:
        return _answer(200, self._ltp_entries(_minutes(context)))

    # -- status and spot ------------------------------------------------------

    def _status(self, context: _Context) -> Response:
        window, used = self._windows.get(context.trader, (math.floor(context.now / 60), 0))
        return _answer(
            200,
            {
                "status": "healthy",
                "version": _constants.VERSION,
                "timestamp": _iso(context.now),
                "services": {name: "operational" for name in ("orders", "trades", "market_data", "spot")},
                "uptime": round(max(0.0, context.now - self._started), 3),
                "response_time_ms": 0,
                "rate_limit": {
                    "requests_per_minute": self.rate_limit_per_minute,
                    "requests_remaining": max(0, self.rate_limit_per_minute - used),
                    "reset_time": _iso((window + 1) * 60),
                },
            },
        )

    def _spot(self, context: _Context) -> Response:
        area = context.param("area_name")
        try:
            check_area_name(area)
        except InvalidArgumentError:
            raise _invalid(["query", "area_name"], "must be an area name like 'CH-SGD'")
        date_from, date_to = _spot_date(context, "date_from"), _spot_date(context, "date_to")
        if date_from is not None and date_to is not None and date_from > date_to:
            raise _invalid(["query", "date_to"], "must not be before date_from")
        try:
            first, count = spot.spot_window(context.now, date_from, date_to, _spot_limit(context))
            rows = spot.spot_rows(self.seed, area or spot.DEFAULT_AREA, first, count)
        except ValueError:
            raise _invalid(["query", "date_from"], "dates outside the calendar")
        return _answer(200, rows)

    def _spot_status(self, context: _Context) -> Response:
        return _answer(200, spot.spot_status(context.now))

    # -- seeding ----------------------------------------------------------------

    def _mid_price(self, slot: float) -> Decimal:
        hour = dt.datetime.fromtimestamp(slot - slot % 3600, _UTC)
        return spot.hourly_point(self.seed, spot.DEFAULT_AREA, hour)[0]

    def _seed_order(
        self, trader: str, side: str, price: Decimal, volume: Decimal, slot: float, now: float, at: float
    ) -> None:
        start = dt.datetime.fromtimestamp(slot, _UTC)
        end = start + dt.timedelta(minutes=15)
        raw = {
            "side": side,
            "price": price,
            "volume": volume,
            "date": start.strftime("%Y-%m-%d"),
            "start_time": start.strftime("%H:%M"),
            "end_time": end.strftime("%H:%M"),
            "duration": "15m",
            "tz_offset_hours": 0,
        }
        order, problems, _ = self._place(raw, trader, now, at)
        if order is None:  # our own orders break no rule; if they do, say so loudly
            raise ValueError(f"seed_market made an invalid order: {'; '.join(map(str, problems))}")
