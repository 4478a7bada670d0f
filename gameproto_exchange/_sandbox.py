"""The sandbox ``game serve`` runs: the exchange plus a web view, a test clock, a store and moving makers.

It is what the server serves (a reactor): API requests go to the exchange;
every other path is answered here (``outside_api``):

=============================  =====================================================
``GET /``, ``/static/<file>``  the web page (``_web``)
``GET /_view?known=KEY``       the page's data; 204 while KEY is still current.
                               With ``Authorization: Bearer <admin token>``: the
                               admin view (every trader's orders and positions)
``GET /_sandbox/clock``        the exchange's time and the clock's kind
``POST /_sandbox/clock/advance``  ``{"by": "15m"}`` (or seconds): manual clock only
``POST /_sandbox/clock/set``   ``{"to": "2030-01-15T13:59Z"}``: manual clock only
``POST /_sandbox/reset``       empty the book and the trades (and the store); a new instance,
                               ids counting on
=============================  =====================================================

The ``/_sandbox/`` endpoints exist only when the sandbox has an admin token
(404 otherwise) and each needs it (401 without it). Whatever changes the
trading state (an order call, a clock move, the makers' quotes, a reset) is
saved before the answer leaves (``_persist``).
"""

from __future__ import annotations

import collections
import hmac
import json
import logging
import math
import sqlite3
import time
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple, Union

from gameproto._boundary import Request, Response
from gameproto._constants import SERVER_CLIENT_HEADER
from gameproto.simulator import makers
from gameproto.simulator.access import bearer
from gameproto.simulator.answers import JSONObject, answer, error, iso
from gameproto.simulator.exchange import Exchange
from gameproto.simulator.faults import Reaction

from . import _web
from ._clock import ClockRefused, ManualClock, parse_moment, step_seconds
from ._persist import Store

__all__ = ["Sandbox", "SaveFailed", "EMPTY_STATE", "admin_token_problem", "stateless_first_number"]

logger = logging.getLogger("gameproto.sandbox")

#: The trading state of an empty exchange, as ``Exchange.load`` takes it.
EMPTY_STATE: JSONObject = {"format": 1, "last_number": 0, "orders": [], "fills": [], "expired": []}
_QUARTER_HOUR = 900
#: The shortest time between two renders of the page's view.
VIEW_EVERY = 0.25
_CANCELS_KEPT = 20
#: Rendered views kept (per admin or not, per first contract shown); past it they are all dropped.
_VIEWS_KEPT = 64
_READS = ("GET", "HEAD")
_TOKEN_PATH = "/auth/token"
# The page may load its own files and call its own server, nothing else.
_PAGE_HEADERS = {
    "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "cache-control": "no-store",
    "referrer-policy": "no-referrer",
}


class SaveFailed(Exception):
    """A change the state file could not take, undone; ``response`` is the request's answer (503)."""

    def __init__(self, path: str, failure: BaseException) -> None:
        super().__init__(f"the state file {path} could not be saved: {failure}")
        self.response = error(
            503,
            f"the sandbox could not save this change to its state file ({failure}): nothing of it was done",
        )


def _page(status: int, body: bytes, content_type: str) -> Response:
    return Response(status, dict(_PAGE_HEADERS, **{"content-type": content_type}), body)


def admin_token_problem(token: str) -> Optional[str]:
    """Why ``token`` cannot be an admin token, or None.

    It travels in an ``Authorization`` header, which carries Latin-1 bytes: a
    token with another character, a space or a control character could be
    given at start and never sent back.
    """
    if not token:
        return "the admin token is empty"
    for position, character in enumerate(token, 1):
        if not ("\x21" <= character <= "\x7e" or "\xa1" <= character <= "\xff"):
            return (
                f"the admin token cannot be sent in an HTTP header: character {position} ({character!r}) is not a "
                "printable Latin-1 character (use letters, digits and punctuation, no spaces)"
            )
    return None


class Sandbox:
    """An exchange served with the sandbox's extras; ``exchange`` stays the pure engine."""

    def __init__(
        self,
        exchange: Exchange,
        *,
        clock: Optional[ManualClock] = None,
        admin_token: Optional[str] = None,
        store: Optional[Store] = None,
        scenario: Optional[makers.Scenario] = None,
        first_number: int = 0,
    ) -> None:
        problem = admin_token_problem(admin_token) if admin_token is not None else None
        if problem is not None:
            raise ValueError(problem)
        self.exchange = exchange
        self.clock = clock
        self.admin_token = admin_token
        self.store = store
        self.scenario = scenario
        #: Whether the scenario's prices reach zero or below: then every trader may use such prices.
        self.non_positive_prices = scenario is not None and scenario.lowest_price() <= 0
        if self.non_positive_prices:
            exchange.desk.allow_non_positive_price = True
        #: Bumped by every change the page shows: order calls, clock moves, quotes, resets.
        self.version = 0
        self.cancels: Deque[JSONObject] = collections.deque(maxlen=_CANCELS_KEPT)
        self._quoted_quarter: Optional[int] = None
        # The latest rendered view, public and admin: (key, JSON, time.monotonic() of the render).
        self._views: Dict[Tuple[bool, int], Tuple[str, bytes, float]] = {}
        self._pages = _web.Views()
        self._cancels_seen = 0
        self.restored = False
        #: The host's clock the rate-limit windows of a manual clock follow (with the clock's moves).
        self.real_time: Callable[[], float] = time.time
        if clock is not None:
            if exchange.clock_offset:
                # A manual clock's offset is where it starts, applied once: ``clock set T`` then shows T,
                # and a restart from a saved clock does not add it again.
                clock.resume(clock() + exchange.clock_offset)
                exchange.clock_offset = 0.0
            # A manual clock stands still between moves: the rate-limit windows follow real time, so that a
            # 429's Retry-After tells the truth, plus the clock's moves, so that a recorder driving the clock
            # (whose request budget counts the time it drives) gets a new minute for each minute it moves it.
            exchange.access.window_clock = self._window_time
        if first_number:
            # Order and trade numbers start past ``first_number`` (a saved state brings its own).
            exchange.load(dict(EMPTY_STATE, last_number=first_number))
        if store is not None:
            saved_clock = store.load(exchange)
            self.restored = saved_clock is not None
            if saved_clock is not None and clock is not None:
                clock.resume(saved_clock)

    def _window_time(self) -> float:
        return self.real_time() + (self.clock.moved if self.clock is not None else 0.0)

    # -- the reactor the server serves ------------------------------------------------

    def now(self) -> float:
        """The exchange's time: what the ``Date`` header and ``/status`` say."""
        return self.exchange.now()

    def screen(self, request: Request) -> Optional[Response]:
        return self.exchange.screen(request)

    def react(self, request: Request) -> Reaction:
        """The exchange's reaction to an API request; a change is saved before it is returned.

        Only a request that changed the trading state is saved (a refused one,
        401, 404, 405, 422 or 429, writes nothing and leaves the view as it
        was). A change that cannot be saved is undone: the exchange is put
        back as the file has it and the request answers 503.
        """
        try:
            self.quote()
        except SaveFailed as failed:
            return Reaction(failed.response)
        book = self.exchange.ledger.book
        self.exchange.ledger.expire(self.now())  # what time alone closes is not this request's change
        before = (book.version, len(book.fills), book.last_number)
        # The exchange's own answer, not the one an injected fault (``not_json``, say) puts in its place.
        answered: List[Response] = []
        reaction = self.exchange.react(request, answered.append)
        if (book.version, len(book.fills), book.last_number) != before:
            try:
                self.changed()
            except SaveFailed as failed:
                return Reaction(failed.response)
            if request.method == "DELETE" and answered and answered[0].status == 200:
                self._cancelled(answered[0])
        return reaction

    def _cancelled(self, response: Response) -> None:
        try:
            number = json.loads(response.body).get("order_id")
        except (ValueError, AttributeError):  # an injected fault's body: the cancel is not shown
            return
        order = self.exchange.ledger.book.orders.get(number) if isinstance(number, int) else None
        if order is not None:
            self._cancels_seen += 1
            self.cancels.append(
                {"order_id": number, "trader": order.trader, "contract": order.contract, "time": iso(self.now())}
            )

    def changed(self) -> None:
        """Something the page shows changed: a new version, saved to the store first.

        Raises ``SaveFailed`` when the store cannot take it, after putting the
        exchange (and a manual clock) back as the store has them: a change
        that is not on disk is not in force.
        """
        if self.store is not None:
            try:
                self.store.save(self.exchange, self.now())
            except (sqlite3.Error, OSError) as failure:
                raise self._undo(failure) from None
        self.version += 1

    def _undo(self, failure: BaseException) -> SaveFailed:
        assert self.store is not None
        logger.error("the state file %s could not be saved: %s", self.store.path, failure)
        try:
            saved_clock = self.store.restore_saved(self.exchange)
        except Exception as again:  # the file cannot be read either: serve what memory holds, loudly
            logger.error("the state file %s could not be read back: %s", self.store.path, again)
        else:
            if saved_clock is not None and self.clock is not None:
                self.clock.resume(saved_clock)
            self._quoted_quarter = None
        self.version += 1
        return SaveFailed(self.store.path, failure)

    def quote(self, force: bool = False) -> None:
        """Let the makers top up their quotes, once per quarter hour of the exchange's clock."""
        if self.scenario is None:
            return
        now = self.now()
        quarter = math.floor(now / _QUARTER_HOUR)
        if quarter == self._quoted_quarter and not force:
            return
        # The quarters the clock jumped over get their makers' trades too, so that the trades do not
        # depend on how the clock was moved (none at start: what happened before it is not made up).
        missed = range(self._quoted_quarter + 1, quarter) if self._quoted_quarter is not None else range(0)
        self._quoted_quarter = quarter
        desk, book = self.exchange.desk, self.exchange.ledger.book
        self.exchange.ledger.expire(now)
        makers.catch_up(desk.place, book, self.scenario, self.exchange.seed, missed)
        makers.quote(desk.place, book, self.scenario, self.exchange.seed, now, desk.full)
        self.changed()  # on SaveFailed the quotes are undone, and quoted again at the next call

    # -- everything outside the API prefix -----------------------------------------------

    def outside_api(self, request: Request) -> Response:
        """The answer to a request whose path is not under the API prefix."""
        path = request.path
        if path == "/" or path.startswith("/static/"):
            if request.method not in _READS:
                return error(405, "Method Not Allowed", {"Allow": "GET, HEAD"})
            name = "index.html" if path == "/" else path[len("/static/") :]
            body = _web.static_file(name)
            if body is None:
                return error(404, "Not Found")
            return _page(200, body, _web.content_type(name))
        if path == "/_view":
            return self._view(request)
        if path == "/_sandbox" or path.startswith("/_sandbox/"):
            return self._admin(request)
        return error(404, "Not Found")

    def _is_admin(self, request: Request, refusal: Response) -> Union[bool, Response]:
        """True for the admin token, False for none; ``refusal`` for a wrong one, 429 while the address waits.

        Wrong admin tokens are limited per client address by the rule (and the
        count) of wrong personal tokens. While an address waits, the right token
        waits too: otherwise a 200 among the 429s would still tell a guesser
        when it found it. The wait ends in real time.
        """
        given = bearer(request)
        if not given:
            return False
        client = request.header(SERVER_CLIENT_HEADER)
        access = self.exchange.access
        now = self.now()
        if client is not None:
            wait = access.refusal_wait(client, now)
            if wait is not None:
                return error(429, "Too many wrong admin tokens from this address", {"Retry-After": wait})
        if self.admin_token is not None and hmac.compare_digest(given.encode(), self.admin_token.encode()):
            return True
        if client is not None:
            access.note_refusal(client, now)
        return refusal

    def _key(self, admin: bool, first: int) -> str:
        """Names what the view shows; no time in it: the page ticks the clock from each answer's ``Date``."""
        if admin:
            return _web.Views.admin_key(self.exchange, first, self.now(), self._cancels_seen)
        return _web.Views.public_key(self.exchange, first)

    def _view(self, request: Request) -> Response:
        if request.method not in _READS:
            return error(405, "Method Not Allowed", {"Allow": "GET, HEAD"})
        admin = self._is_admin(request, error(401, "Wrong admin token", {"WWW-Authenticate": "Bearer"}))
        if isinstance(admin, Response):
            return admin
        query = dict(request.query)
        first = query.get("first", "0")
        if not first.isdigit() or len(first) > 6:
            return error(422, "first is the index of the first contract shown: a whole number from 0")
        try:
            self.quote()
        except SaveFailed:  # undone; the page shows the book as it stands
            pass
        self.exchange.ledger.expire(self.now())  # a contract closed since: gone from the view
        key, body = self._rendered(admin, int(first))
        if query.get("known") == key:
            return Response(204, {"cache-control": "no-store"}, b"")
        return Response(200, {"content-type": "application/json", "cache-control": "no-store"}, body)

    def _rendered(self, admin: bool, first: int) -> Tuple[str, bytes]:
        """The latest view (its key and JSON), rendered only when what it shows changed, and at most
        every ``VIEW_EVERY`` seconds.

        However many pages poll and however fast the traders change the book,
        the view costs the server a few renders a second: a page is at most
        ``VIEW_EVERY`` behind, and its next poll brings it up to date.
        """
        first = _web.Views.window(self.exchange, first)[0]
        key = self._key(admin, first)
        kept = self._views.get((admin, first))
        moment = time.monotonic()
        if kept is not None and (kept[0] == key or moment - kept[2] < VIEW_EVERY):
            return kept[0], kept[1]
        body = self._pages.render(self.exchange, self.now(), key, admin=admin, cancels=self.cancels, first=first)
        if len(self._views) >= _VIEWS_KEPT:
            self._views.clear()
        self._views[(admin, first)] = (key, body, moment)
        return key, self._views[(admin, first)][1]

    # -- /_sandbox/: the admin endpoints -------------------------------------------------

    def _admin(self, request: Request) -> Response:
        if self.admin_token is None:
            return error(404, "Not Found: the /_sandbox/ endpoints need game serve --admin-token")
        routes: Dict[str, Dict[str, Callable[[Request], Response]]] = {
            "/_sandbox/clock": {"GET": self._clock_show},
            "/_sandbox/clock/advance": {"POST": self._clock_advance},
            "/_sandbox/clock/set": {"POST": self._clock_set},
            "/_sandbox/reset": {"POST": self._reset},
        }
        methods = routes.get(request.path)
        if methods is None:
            return error(404, "Not Found")
        handler = methods.get(request.method)
        if handler is None:
            return error(405, "Method Not Allowed", {"Allow": ", ".join(methods)})
        # A wrong token is told from none (the CLI then says to check the token it was given).
        admin = self._is_admin(request, error(401, "Wrong admin token", {"WWW-Authenticate": "Bearer"}))
        if isinstance(admin, Response):
            return admin
        if not admin:
            return error(401, "The /_sandbox/ endpoints need the admin token", {"WWW-Authenticate": "Bearer"})
        try:
            return handler(request)
        except ClockRefused as refused:
            return error(422, str(refused))
        except SaveFailed as failed:
            return failed.response

    def _clock_view(self) -> JSONObject:
        return {"now": iso(self.now()), "clock": "manual" if self.clock is not None else "real"}

    def _clock_show(self, request: Request) -> Response:
        return answer(200, self._clock_view())

    def _body(self, request: Request, name: Optional[str]) -> Any:
        """The value of the body's one field ``name`` (None: the body is empty or ``{}``); a 422 otherwise.

        Unknown fields are refused, as the API refuses them: a misspelt field must not pass unnoticed.
        """
        wanted = f"a JSON object with {name!r}" if name is not None else "empty, or the JSON object {}"
        if name is None and not (request.body or b"").strip():
            return None
        try:
            body = json.loads(request.body or b"")
        except (ValueError, RecursionError):  # RecursionError: arrays nested thousands deep
            raise ClockRefused(f"the body must be {wanted}: it is no JSON") from None
        if not isinstance(body, dict) or (name is not None and name not in body):
            raise ClockRefused(f"the body must be {wanted}")
        unknown = sorted(key for key in body if key != name)
        if unknown:
            shown = ", ".join(repr(key if len(key) <= 40 else key[:37] + "...") for key in unknown[:5])
            raise ClockRefused(f"the body must be {wanted}; unknown field{'s' * (len(unknown) > 1)}: {shown}")
        return body[name] if name is not None else None

    def _clock_advance(self, request: Request) -> Response:
        if self.clock is None:
            return _not_manual()
        self.clock.advance(step_seconds(self._body(request, "by")))
        return self._moved()

    def _clock_set(self, request: Request) -> Response:
        if self.clock is None:
            return _not_manual()
        to = self._body(request, "to")
        if not isinstance(to, str):
            raise ClockRefused("'to' is an ISO 8601 time like '2030-01-15T13:59Z'")
        self.clock.set(parse_moment(to))
        return self._moved()

    def _moved(self) -> Response:
        self.exchange.ledger.expire(self.now())
        self.changed()
        self._quote_after()
        return answer(200, self._clock_view())

    def _quote_after(self, force: bool = False) -> None:
        """The makers' quotes after a saved move: should they fail to save, they are undone and come again later."""
        try:
            self.quote(force)
        except SaveFailed:
            pass

    def _reset(self, request: Request) -> Response:
        self._body(request, None)
        # Empty, but counting on: an id a bot still holds never names a new order or trade.
        self.exchange.load(dict(EMPTY_STATE, last_number=self.exchange.ledger.book.last_number))
        if self.store is not None:
            try:
                self.store.reset(self.exchange, self.now())
            except (sqlite3.Error, OSError) as failure:
                raise self._undo(failure) from None
        self.cancels.clear()
        self.version += 1
        self._quote_after(force=True)
        return answer(200, {"status": "reset", **self._clock_view()})


def stateless_first_number(now: float) -> int:
    """Where a server without ``--state`` starts numbering its orders and trades: past every id a
    previous run gave, unless that run gave more than ten thousand a second over its whole life.

    Ten thousand numbers a second since 2023-11-14, to the tenth of a millisecond (so that two starts
    in one second differ): about 10**12 in 2026, far below 2**53.
    """
    return max(0, int((now - 1_700_000_000) * 10_000))


def _not_manual() -> Response:
    return error(409, "the clock is the host's: start game serve with --clock manual to move it")
