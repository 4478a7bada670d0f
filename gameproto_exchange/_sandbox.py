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
``POST /_sandbox/reset``       empty the book and the trades (and the store)
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
from typing import Any, Callable, Deque, Dict, Optional, Tuple

from gameproto._boundary import Request, Response
from gameproto.simulator import makers
from gameproto.simulator.access import bearer
from gameproto.simulator.answers import JSONObject, answer, error, iso
from gameproto.simulator.exchange import Exchange
from gameproto.simulator.faults import Reaction

from . import _web
from ._clock import ClockRefused, ManualClock, parse_duration, parse_moment
from ._persist import Store

__all__ = ["Sandbox", "SaveFailed", "EMPTY_STATE"]

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
    ) -> None:
        self.exchange = exchange
        self.clock = clock
        self.admin_token = admin_token
        self.store = store
        self.scenario = scenario
        #: Bumped by every change the page shows: order calls, clock moves, quotes, resets.
        self.version = 0
        self.cancels: Deque[JSONObject] = collections.deque(maxlen=_CANCELS_KEPT)
        self._quoted_quarter: Optional[int] = None
        # The latest rendered view, public and admin: (key, JSON, time.monotonic() of the render).
        self._views: Dict[Tuple[bool, int], Tuple[str, bytes, float]] = {}
        self._pages = _web.Views()
        self._cancels_seen = 0
        self.restored = False
        if store is not None:
            saved_clock = store.load(exchange)
            self.restored = saved_clock is not None
            if saved_clock is not None and clock is not None:
                clock.resume(saved_clock)

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
        reaction = self.exchange.react(request)
        if (book.version, len(book.fills), book.last_number) != before:
            try:
                self.changed()
            except SaveFailed as failed:
                return Reaction(failed.response)
            response = reaction.response
            if request.method == "DELETE" and response is not None and response.status == 200:
                self._cancelled(response)
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
        self._quoted_quarter = quarter
        self.exchange.ledger.expire(now)
        makers.quote(self.exchange.desk.place, self.exchange.ledger.book, self.scenario, self.exchange.seed, now)
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

    def _is_admin(self, request: Request) -> Optional[bool]:
        """True for the admin token, False for none, None for a wrong one."""
        given = bearer(request)
        if not given:
            return False
        if self.admin_token is not None and hmac.compare_digest(given.encode(), self.admin_token.encode()):
            return True
        return None

    def _key(self, admin: bool, first: int) -> str:
        """Names what the view shows; no time in it: the page ticks the clock from each answer's ``Date``."""
        if admin:
            return _web.Views.admin_key(self.exchange, first, self.now(), self._cancels_seen)
        return _web.Views.public_key(self.exchange, first)

    def _view(self, request: Request) -> Response:
        if request.method not in _READS:
            return error(405, "Method Not Allowed", {"Allow": "GET, HEAD"})
        admin = self._is_admin(request)
        if admin is None:
            return error(401, "Wrong admin token", {"WWW-Authenticate": "Bearer"})
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
        if self._is_admin(request) is not True:
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

    def _body(self, request: Request, name: str) -> Any:
        try:
            body = json.loads(request.body or b"")
        except ValueError:
            raise ClockRefused("the body must be a JSON object") from None
        if not isinstance(body, dict) or name not in body:
            raise ClockRefused(f"the body must be a JSON object with {name!r}")
        return body[name]

    def _clock_advance(self, request: Request) -> Response:
        if self.clock is None:
            return _not_manual()
        by = self._body(request, "by")
        if isinstance(by, bool) or not isinstance(by, (int, float, str)):
            raise ClockRefused("'by' is a duration like '15m' or a number of seconds")
        self.clock.advance(parse_duration(by) if isinstance(by, str) else float(by))
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
        self.exchange.load(EMPTY_STATE)
        if self.store is not None:
            try:
                self.store.reset(self.exchange, self.now())
            except (sqlite3.Error, OSError) as failure:
                raise self._undo(failure) from None
        self.cancels.clear()
        self.version += 1
        self._quote_after(force=True)
        return answer(200, {"status": "reset", **self._clock_view()})


def _not_manual() -> Response:
    return error(409, "the clock is the host's: start game serve with --clock manual to move it")
