"""The GAME exchange as a pure state machine: ``handle(Request) -> Response``.

No sockets, no event loop, no threads: a server or a test hands it requests
and the clock is injected. It speaks the protocol of shared/GAME-API.md.
This module wires the parts together; each concern has its module:

=============  ============================================================
``routes``     the one routing table: 404 and 405 are decided there
``access``     personal and access tokens, the rate limits
``trading``    the order calls, checked with the clients' rules (``_orders``)
``ledger``     the book, each trader's orders, contracts closing (expiry)
``book``       price-time matching
``market``     trades, market data, last traded prices, spot data
``views``      what an order, a trade and the public book look like
``seeding``    the market makers' book for a new user
``state``      the trading state as plain data, to save and load
``answers``    JSON answers, errors, the request a handler gets
=============  ============================================================

The exchange's clock may run ahead of or behind the host's (``clock_offset``):
every "now" it uses, for the order rules, token lifetimes, stamps and the
``/status`` timestamp, is ``clock() + clock_offset`` (see ``now``).
"""

from __future__ import annotations

import collections
import math
import secrets
import time
from decimal import Decimal
from typing import Any, Callable, Iterable, List, Mapping, Optional, Tuple, Union

from .. import _constants
from .._boundary import Request, Response
from . import seeding, state
from .access import Access
from .answers import Context, JSONObject, Refused, answer, error, iso
from .book import OrderBook
from .faults import FaultPlan, Reaction, react
from .ledger import EXPIRED_LISTED_FOR, Ledger
from .market import MarketData
from .routes import Router
from .seeding import MARKET_MAKERS
from .trading import Desk
from .views import trade_view

__all__ = ["Exchange", "MARKET_MAKERS", "EXPIRED_LISTED_FOR"]

#: Distinct ``DELETE /orders/<id>`` paths counted in ``attempts`` before the rest are
#: counted under one template key: a client must not grow the counter at will.
_DELETE_KEYS_COUNTED = 1000
#: The token exchange body is a token in a JSON object: anything larger is refused unread.
_TOKEN_BODY_MAX = 4096


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
        max_resting_orders: int = _constants.MAX_RESTING_ORDERS,
    ) -> None:
        if (
            isinstance(clock_offset, bool)
            or not isinstance(clock_offset, (int, float))
            or not math.isfinite(clock_offset)
        ):
            raise ValueError(f"clock_offset must be a finite number of seconds, got {clock_offset!r}")
        self._clock = clock
        self.clock_offset = float(clock_offset)
        self.seed = seed
        self.market_zone = market_zone
        self.faults = FaultPlan()
        #: Requests seen per (method, path): routed ones only, and only token exchanges or
        #: requests carrying an access token this exchange issued (so the keys stay few).
        self.attempts: collections.Counter[Tuple[str, str]] = collections.Counter()
        #: Exceptions ``handle`` caught (and answered 400): a bug here; tests expect none.
        self.internal_errors: List[str] = []
        self.access = Access(
            tokens,
            token_lifetime=token_lifetime,
            rate_limit_per_minute=rate_limit_per_minute,
            auth_refusals_per_minute=auth_refusals_per_minute,
        )
        self.ledger = Ledger(OrderBook(fee_per_mwh))
        self.desk = Desk(
            self.ledger, allow_non_positive_price=allow_non_positive_price, max_resting_orders=max_resting_orders
        )
        self.market = MarketData(self.ledger.book, market_zone=market_zone, seed=seed)
        self._started = self.now()
        #: Names this exchange's state: a new one on every ``load`` of a state without one (a
        #: sandbox's reset) and for every new exchange; a saved state keeps it (``/status`` tells it).
        self.instance = _new_instance()
        self.router = self._router()

    def _router(self) -> Router:
        """The one routing table of the exchange."""
        return Router(
            [
                ("POST", "/auth/token", self.access.exchange_token),
                ("GET", "/status", self._status),
                ("GET", "/orders", self.desk.list_orders),
                ("POST", "/orders", self.desk.create_order),
                ("POST", "/orders/create-bulk", self.desk.create_bulk),
                ("DELETE", "/orders/{order_id}", self.desk.delete_order),
                ("GET", "/trades", self.market.trades),
                ("GET", "/market", self.market.market),
                ("GET", "/market/market-ltp", self.market.market_ltp),
                ("GET", "/market/latest-ltp", self.market.latest_ltp),
                ("GET", "/spot", self.market.spot),
                ("GET", "/spot/status", self.market.spot_status),
            ],
            public=["/auth/token"],
        )

    # -- the clock ---------------------------------------------------------------

    def now(self) -> float:
        """The exchange's time, epoch seconds: the injected clock shifted by ``clock_offset``."""
        return self._clock() + self.clock_offset

    # -- serving -------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        """The answer to ``request``; never raises and never answers 5xx.

        Refused token exchanges are limited per client address, which a server
        gives in the ``x-gameproto-client`` header (without it, in memory, never limited).
        """
        try:
            return self._handle(request)
        except Refused as refused:
            return refused.response
        except Exception as failure:  # a bug must not become a 500 or kill the server; it is recorded
            self.internal_errors.append(f"{request.method} {request.path}: {type(failure).__name__}: {failure}")
            return error(400, "Bad Request")

    def _handle(self, request: Request) -> Response:
        found = self.router.find(request)
        if isinstance(found, Response):
            return found
        route, handler = found
        now = self.now()
        self.ledger.expire(now)
        if route.public:  # the token exchange: no bearer token, not rate limited
            return handler(Context(request, "", now, request.header(_constants.SERVER_CLIENT_HEADER)))
        trader = self.access.authenticate(request, now)
        self.access.count_request(trader, now)
        return handler(Context(request, trader, now))

    def react(self, request: Request, carried_out: Optional[Callable[[Response], None]] = None) -> Reaction:
        """What a server does with ``request``: the answer, or the fault the plan injects.

        ``carried_out``, if given, is told the exchange's own answer when the
        request was carried out, whatever answer a fault puts in its place.
        """
        self._count_attempt(request)
        if carried_out is None:
            return react(self.handle, self.faults, request)

        def handle(request: Request) -> Response:
            response = self.handle(request)
            carried_out(response)
            return response

        return react(handle, self.faults, request)

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
        found = self.router.find(request)
        if isinstance(found, Response):
            return found
        if found[0].public:
            declared = request.header("Content-Length")
            if declared is not None and (not declared.isdigit() or int(declared) > _TOKEN_BODY_MAX):
                return error(413, f"a token exchange body is at most {_TOKEN_BODY_MAX} bytes")
            return None
        try:
            # The exchange's own time, offset included: tokens expire on it (``handle`` checks them so too).
            self.access.authenticate(request, self.now())
        except Refused as refused:
            return refused.response
        return None

    def _count_attempt(self, request: Request) -> None:
        """Count a routed request that is a token exchange or carries an access token issued here."""
        found = self.router.find(request)
        if isinstance(found, Response) or not (found[0].public or self.access.knows(request)):
            return
        key = (request.method, request.path)
        if found[0].template != request.path and key not in self.attempts:
            if len(self.attempts) >= _DELETE_KEYS_COUNTED:
                key = (request.method, found[0].template)
        self.attempts[key] += 1

    def _status(self, context: Context) -> Response:
        _, used = self.access.window(context.trader, context.now)
        limit = self.access.rate_limit_per_minute
        return answer(
            200,
            {
                "status": "healthy",
                "version": _constants.VERSION,
                "timestamp": iso(context.now),
                "services": {name: "operational" for name in ("orders", "trades", "market_data", "spot")},
                "uptime": round(max(0.0, context.now - self._started), 3),
                "response_time_ms": 0,
                "instance": self.instance,
                "rate_limit": {
                    "requests_per_minute": limit,
                    "requests_remaining": max(0, limit - used),
                    "reset_time": iso(context.now + self.access.until_next_window(context.now)),
                },
            },
        )

    # -- the public surface ---------------------------------------------------------

    @property
    def exchanges(self) -> int:
        """Successful token exchanges so far."""
        return self.access.exchanges

    @property
    def rate_limit_per_minute(self) -> int:
        return self.access.rate_limit_per_minute

    @rate_limit_per_minute.setter
    def rate_limit_per_minute(self, value: int) -> None:
        self.access.rate_limit_per_minute = value

    @property
    def access_tokens_held(self) -> int:
        """Access tokens the exchange remembers (live ones, and those expired a short while ago)."""
        return len(self.access.tokens)

    def expire_access_tokens(self) -> None:
        """Every access token issued so far is expired from now on."""
        self.access.expire_all(self.now())

    def revoke(self, personal_token: str) -> None:
        """No more exchanges for ``personal_token``; its access tokens stop working."""
        self.access.revoke(personal_token)

    def orders_of(self, trader: str, direction: Optional[str] = None, now: Optional[float] = None) -> List[JSONObject]:
        """The listing view of a trader's orders, oldest first; one side if given.

        Live orders, and those that expired at their delivery start less than
        ``EXPIRED_LISTED_FOR`` ago (shown as expired).
        """
        self.ledger.expire(self.now() if now is None else now)
        return self.desk.orders_of(trader, direction)

    @property
    def trades(self) -> List[JSONObject]:
        """Every trade, oldest first."""
        return [trade_view(fill, self.market_zone) for fill in self.ledger.book.fills]

    def public_market(self, now: Optional[float] = None) -> List[JSONObject]:
        """What ``GET /market`` answers any trader: the public book of every contract, summaries first."""
        moment = self.now() if now is None else now
        self.ledger.expire(moment)
        return self.market.market_rows(moment)

    def seed_market(self, *, now: Optional[float] = None, orders: int = 24) -> None:
        """Give a new user a live book: market makers' quotes and a few past trades (see ``seeding``)."""
        seeding.seed_market(self.desk.place, self.seed, self.now() if now is None else now, orders)

    def save(self) -> JSONObject:
        """The trading state (orders, fills, expiries) as plain JSON-ready data (see ``state``).

        Tokens are not in it: the personal tokens are the server's
        configuration, and access tokens are exchanged again after a restart.
        """
        return state.dump(self.ledger)

    def load(self, saved: Mapping[str, Any]) -> None:
        """Replace the trading state with one ``save`` gave (its ``instance``, if it names one, too)."""
        state.restore(self.ledger, saved)
        named = saved.get("instance")
        self.instance = named if isinstance(named, str) and named else _new_instance()


def _new_instance() -> str:
    return secrets.token_hex(8)
