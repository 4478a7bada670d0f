"""``GameAPI``: every public method of the client, written once.

This module is the source of both clients: ``gameproto_sync/_client.py`` is
generated from it by ``python -m tools.unasync`` (``async``/``await`` taken
out, the async names put to their blocking twins), and CI fails when the
generated file is stale. Each method builds a core ``Call`` and runs it; the
driver's own work is ``_drive``: send, sleep, run a flow under the token lock.
"""

from __future__ import annotations  # GENERATED from gameproto_async/_client.py by tools/unasync.py: do not edit.

import logging
import sys
import warnings
from contextlib import contextmanager
from typing import Any, Iterator, Callable, Dict, List, Optional, Tuple, Type, TypeVar, Union, cast, overload

from gameproto import (
    Action,
    Attempt,
    Blocking,
    Call,
    ClientSettings,
    Flow,
    GameAPIError,
    MarketEvent,
    OrderEvent,
    RetryPolicy,
    RunAll,
    RunLocked,
    Send,
    Session,
    Sleep,
    calls,
)
from gameproto.driver import (
    BudgetStore,
    Deliver,
    JournalFlows,
    MarketWatch,
    OrderWatch,
    Trading,
    Watch,
    check_wait,
    one_action,
    settings_from_env,
)
from gameproto.driver import defaults as _constants
from gameproto.journal import (
    OUTCOME_DURABLE_WITHIN,
    JournalError,
    JournalOrder,
    JournalStore,
    JournalTrade,
    Reconciled,
)
from gameproto.risk import CancelAllResult, Positions, RiskLimits
from gameproto.types import (
    BestOffers,
    BulkRequest,
    BulkResult,
    DeleteResult,
    LatestLTP,
    LTPEntry,
    MarketRow,
    Order,
    SpotData,
    SpotStatus,
    Status,
    Trade,
)

from ._borrowed import Sender, borrowed_transport
from ._concurrency import SignalCover, TokenLock, run_all, run_blocking, shielded, sleep
from ._transport import Transport

__all__ = ["GameAPI", "Journal"]

T = TypeVar("T")
E = TypeVar("E")
_Self = TypeVar("_Self", bound="GameAPI")
logger = logging.getLogger("gameproto")


def _made_at() -> Tuple[str, int, str]:
    """Where the caller made the client: the file, line and module of the first frame outside this package."""
    frame = sys._getframe(1)
    while frame.f_back is not None and frame.f_globals.get("__name__", "").startswith(__package__ or "gameproto_sync"):
        frame = frame.f_back
    return frame.f_code.co_filename, frame.f_lineno, frame.f_globals.get("__name__", "")


class Journal:
    """A client's order journal, read back: ``api.journal.orders()``, ``api.journal.trades()``.

    Every order the client sent (its intent written before the request
    left), what came of it, each state change with its time by the
    exchange's clock, its fills; and every trade of the account, once.
    """

    def __init__(self, api: GameAPI, flows: JournalFlows) -> None:
        self._api = api
        self._flows = flows

    @property
    def url(self) -> str:
        """Where the journal is kept (without a password)."""
        return self._flows.store.url

    @property
    def writer(self) -> str:
        """This process's name in the journal."""
        return self._flows.writer

    def orders(
        self, *, state: Optional[str] = None, exchange_id: Union[int, str, None] = None, since: Optional[str] = None
    ) -> List[JournalOrder]:
        """The journal's orders, oldest sent first; optionally in one ``state``, one exchange id, sent ``since``.

        ``exchange_id`` takes the id as ``create_order`` answers it (``"ord_457"``) or its number (``457``).
        """
        return self._api._drive(self._flows.read_orders(state=state, exchange_id=exchange_id, since=since))

    def trades(self, *, since: Optional[str] = None) -> List[JournalTrade]:
        """The account's trades the journal recorded, oldest first; optionally those ``since`` a time (ISO 8601)."""
        return self._api._drive(self._flows.read_trades(since=since))

    def record_trades(self) -> int:
        """Bring the journal's trades up to date from the exchange (before an export); how many were new."""
        return self._api._drive(self._flows.record_trades(self._api._session.run))

    def __repr__(self) -> str:
        return f"<Journal {self.url!r} writer={self.writer!r}>"


class GameAPI:
    """A client of the GAME trading API.

    ``GameAPI(token, base_url)``, then every call of the protocol; use it as
    a context manager to close its connections at the end. ``verify_ssl`` is
    True by default and also takes a CA bundle path. ``timeout`` is each
    call's overall deadline in seconds, retries included. Every argument is
    checked here: a bad one raises ``ValueError`` naming it.

    ``max_response_bytes`` caps the length of an answer (a longer one is a
    ``ProtocolError``, outcome-unknown for an order). With ``trust_env``
    (default) the proxy variables (``HTTPS_PROXY``, ``HTTP_PROXY``,
    ``ALL_PROXY``, ``NO_PROXY``) and the CA bundle variables
    (``REQUESTS_CA_BUNDLE``, ``SSL_CERT_FILE``, ``SSL_CERT_DIR``) are read
    once, here.

    ``requests_per_minute`` paces every request of the client (all its
    threads or tasks, retries included) so that no
    60-second window holds more than the limit: ``"auto"`` starts from the
    advertised 1,000 and follows what the exchange says (``/status``, and a
    429's ``Retry-After`` pauses every caller), a number fixes it, None
    turns pacing off. With ``budget_url`` (``redis://host:6379/0``) the
    budget is shared, through Redis, by every client of every process that
    names the same Redis and ``budget_key`` (by default one key per base URL
    and personal token, never the token itself).

    ``risk=RiskLimits(...)`` judges every order before it is sent (volume,
    net position, open volume, price band, open orders, self-trades): a
    breach raises ``RiskLimitError`` and nothing is sent (docs/risk.md). An
    order whose call ended without an answer stays counted until the exchange
    shows it or ``late_request_grace`` seconds (5) after the call's deadline
    have passed: its request may still land.

    ``journal`` (``"sqlite:///bot.db"``, ``"postgresql://host/db"``) keeps a
    durable record of every order: its intent is committed before the
    request leaves (``JournalError`` and nothing sent when it cannot be),
    its outcome after; fills and trades are recorded once; ``reconcile()``
    settles what a crash left open; the watchers resume. See
    docs/journal.md.

    ``http_client`` borrows the application's own HTTP client (an
    ``httpx.AsyncClient``, or an ``aiohttp.ClientSession`` on asyncio; for
    the blocking client a ``requests.Session`` or an ``httpx.Client``): its
    connections, TLS and proxies, never its headers, timeouts or retries.
    It is left open when this client closes. See docs/embedding.md.
    """

    def __init__(
        self,
        token: str,
        base_url: str = _constants.DEFAULT_BASE_URL,
        verify_ssl: Union[bool, str] = True,
        timeout: float = _constants.DEFAULT_TIMEOUT,
        max_retries: int = _constants.DEFAULT_MAX_RETRIES,
        *,
        connect_timeout: float = _constants.DEFAULT_CONNECT_TIMEOUT,
        read_timeout: float = _constants.DEFAULT_READ_TIMEOUT,
        on_attempt: Optional[Callable[[Attempt], None]] = None,
        allow_non_positive_price: bool = False,
        max_connections: int = _constants.POOL_MAX_CONNECTIONS,
        retry_policy: Optional[RetryPolicy] = None,
        max_response_bytes: int = _constants.DEFAULT_MAX_RESPONSE_BYTES,
        trust_env: bool = True,
        requests_per_minute: Union[int, str, None] = "auto",
        budget_url: Optional[str] = None,
        budget_key: Optional[str] = None,
        risk: Optional[RiskLimits] = None,
        journal: Union[str, JournalStore, None] = None,
        late_request_grace: float = _constants.LATE_REQUEST_GRACE,
        http_client: Optional[object] = None,
    ) -> None:
        self._settings = ClientSettings.from_arguments(
            token,
            base_url,
            verify_ssl,
            timeout,
            max_retries,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            on_attempt=on_attempt,
            allow_non_positive_price=allow_non_positive_price,
            max_connections=max_connections,
            retry_policy=retry_policy,
            max_response_bytes=max_response_bytes,
            trust_env=trust_env,
            requests_per_minute=requests_per_minute,
            budget_url=budget_url,
            budget_key=budget_key,
            risk=risk,
            journal=journal,
            late_request_grace=late_request_grace,
        )
        # Before anything is opened: a client that cannot be borrowed leaves nothing half made.
        self._transport: Sender = (
            Transport(self._settings) if http_client is None else borrowed_transport(http_client, self._settings)
        )
        shared: Optional[BudgetStore] = None
        if self._settings.budget_url is not None:
            from gameproto_redis import budget_for  # redis-py, an extra, is imported only when asked for

            shared = budget_for(self._settings)
        self._session = Session(self._settings, shared_budget=shared)
        self._token_lock = TokenLock()
        self._made_at = _made_at()
        self._closed = False
        # The trading flows of the core: the account (and its limits), the journal.
        self._trading = Trading(self._session)
        self._journal = self._trading.journal

    @classmethod
    def from_env(cls: Type[_Self], dotenv_path: Optional[str] = ".env", **options: Any) -> _Self:
        """A client from ``GAME_API_TOKEN``, ``GAME_API_URL``, ``GAME_API_VERIFY_SSL`` and ``.env``."""
        settings = settings_from_env(dotenv_path=dotenv_path)
        if not settings.token:
            raise ValueError("GAME_API_TOKEN is not set (in the environment or the .env file)")
        if options.get("http_client") is None:
            options.setdefault("verify_ssl", settings.verify_ssl)
        elif settings.verify_ssl is not True:
            # TLS is the borrowed client's (docs/embedding.md); the setting is said, not silently dropped.
            logger.warning("GAME_API_VERIFY_SSL was not applied: with http_client=, TLS is the borrowed client's")
        return cls(settings.token, settings.base_url, **options)

    @property
    def base_url(self) -> str:
        """The exchange's URL, without ``/api/v1`` and without a trailing slash."""
        return self._settings.base_url

    @property
    def verify_ssl(self) -> Union[bool, str]:
        """True, False, or the CA bundle path the TLS certificate is checked against."""
        return self._settings.verify_ssl

    @property
    def timeout(self) -> float:
        """Each call's overall deadline in seconds, retries included."""
        return self._settings.timeout

    @property
    def journal(self) -> Journal:
        """The order journal (``journal=`` given); ``JournalError`` when the client keeps none."""
        if self._journal is None:
            raise JournalError('this client keeps no journal: GameAPI(..., journal="sqlite:///bot.db")')
        return Journal(self, self._journal)

    @property
    def clock_offset(self) -> Optional[float]:
        """The exchange's clock minus the local one, in seconds; None until an answer told it.

        Learnt from every answer's ``Date`` and ``/status``'s ``timestamp``;
        order validation then judges "in the future" by the exchange's clock.
        """
        return self._session.exchange_clock.offset

    def __repr__(self) -> str:
        return f"<gameproto_sync.GameAPI url={self._settings.api_url!r} {self._session!r}>"

    def __enter__(self: _Self) -> _Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the pooled connections. The client cannot be used afterwards."""
        self._closed = True
        if self._session.shared_budget is not None:
            self._session.shared_budget.close()
        if self._journal is not None:
            store = self._journal.store
            # Closing commits the outcomes the store holds (within OUTCOME_DURABLE_WITHIN): off the event loop.
            with shielded():
                run_blocking(lambda time_left: store.close(), 2 * OUTCOME_DURABLE_WITHIN)
        self._transport.close()

    def __del__(self) -> None:
        # As an unclosed file does: its connections are left to the garbage collector.
        if getattr(self, "_closed", True) is False:
            # Shown at the caller's line that made the client, not where the collector ran.
            filename, line, module = self._made_at
            warning = f"unclosed {self!r}: close it, or use it in a block: `with GameAPI(...) as api:`"
            warnings.warn_explicit(warning, ResourceWarning, filename, line, module=module, source=self)

    # -- the driver: run a core flow --------------------------------------------

    def _drive(self, flow: Flow[T]) -> T:
        reply: Any = None
        try:
            while True:
                action = flow.send(reply)
                if type(action) is Send:
                    reply = self._transport.send(action)
                elif type(action) is Sleep:
                    self._pause(action.seconds)
                    reply = None
                elif type(action) is Blocking:
                    reply = run_blocking(action.function, action.time_left)
                elif type(action) is RunAll:
                    reply = run_all(self._drive, action.flows, action.limit)
                else:
                    reply = self._locked(cast(RunLocked, action))
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        finally:
            flow.close()

    def _pause(self, seconds: float) -> None:
        # Every wait of the client (a retry's backoff, the budget, a watcher's interval) passes here:
        # a backtest's client moves its virtual clock instead (gameproto_exchange.Backtest), and against a
        # replay at --speed the host waits that much less (the session's clocks follow the replay's).
        sleep(self._session.host_seconds(seconds))

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` by the client's clock: a bot that waits this way runs unchanged in a backtest.

        On a client of the exchange it sleeps; on a backtest's client
        (``gameproto_exchange.Backtest``) it moves the virtual clock at once.
        """
        self._pause(check_wait(seconds))

    def _locked(self, action: RunLocked) -> Any:
        if not self._token_lock.acquire(action.wait):
            return None
        try:
            return self._drive(action.flow)
        finally:
            self._token_lock.release()

    def _call(self, call: Call[T]) -> Flow[T]:
        # The flow of a call, driven by the method itself: one coroutine less on every resumption.
        if self._closed:
            raise RuntimeError("this GameAPI client is closed; make a new one")
        return self._session.run(call)

    def _run_flow(self, flow: Flow[T]) -> T:
        if self._closed:
            flow.close()
            raise RuntimeError("this GameAPI client is closed; make a new one")
        return self._drive(flow)

    # -- the calls of the protocol -------------------------------------------------

    def get_status(self) -> Status:
        """The exchange's health, version and the caller's rate limit."""
        return self._drive(self._call(calls.get_status()))

    def get_trades(self, direction: Optional[str] = None, duration: Optional[str] = None) -> List[Trade]:
        """Market-wide trades, optionally of one side (``buy``/``sell``) or duration (``15m``)."""
        return self._drive(self._call(calls.get_trades(direction, duration)))

    def get_orders(self, direction: Optional[str] = None) -> List[Order]:
        """The caller's own orders (numeric ``order_id``), optionally of one side."""
        return self._drive(self._call(calls.get_orders(direction)))

    @overload
    def create_order(self, order_data: BulkRequest, *, skip_invalid: bool = False) -> BulkResult: ...

    @overload
    def create_order(self, order_data: Dict[str, Any], *, skip_invalid: bool = False) -> Order: ...

    def create_order(
        self, order_data: Union[BulkRequest, Dict[str, Any]], *, skip_invalid: bool = False
    ) -> Union[Order, BulkResult]:
        """Place one order, or ``{"orders": [...]}`` in bulk (split by 100, indices kept).

        Everything is validated before anything is sent; with ``skip_invalid``
        a bulk's invalid orders are reported in ``failed`` and the rest sent.
        After a part of a split bulk fails no further part is sent, and the
        error carries ``partial_result``.
        """
        return self._run_flow(self._trading.create_order(order_data, skip_invalid))

    def positions(self, traders: Optional[List[str]] = None) -> Positions:
        """The account's positions per contract and per local delivery day, from its trades.

        The caller's trader names are learnt from its own orders (or given as
        ``traders``); ``gameproto.positions(trades, traders)`` is the same, pure.
        """
        return self._run_flow(self._trading.positions(traders))

    def cancel_all_orders(self, contract: Any = None, side: Optional[str] = None) -> CancelAllResult:
        """Delete every resting order of the account (or of ``contract`` and ``side``): the kill switch.

        The deletes go at once (the async client) within the request budget;
        one failure never stops the others, and orders whose delete failed are
        listed and tried again (three rounds). Returns the ids cancelled,
        already gone and failed (with the error); running it twice is harmless.
        """
        return self._run_flow(self._trading.cancel_all(contract, side))

    @contextmanager
    def cancel_all_on_exit(self, contract: Any = None, side: Optional[str] = None) -> Iterator[None]:
        """``with api.cancel_all_on_exit():`` cancels the resting orders when the block ends by an exception.

        Ctrl-C (``KeyboardInterrupt``) and a cancelled task included; the
        exception is raised again afterwards. A block that ends normally
        leaves the orders resting. Entered in the main thread, SIGTERM too:
        the orders are cancelled, then the signal goes to the handler that
        was there before (by default the process ends, status 143), which
        is put back when the block ends. Elsewhere it warns that only
        exceptions are covered.
        """
        with SignalCover() as cover:  # the core's Termination decides; the handler is this driver's
            try:
                yield
            except BaseException:
                self._cancel_all_on_exit(contract, side)
                cover.hand_over()
                raise
            if cover.came:  # the signal came as the block ended: the orders are cancelled all the same
                self._cancel_all_on_exit(contract, side)
                cover.hand_over()

    def _cancel_all_on_exit(self, contract: Any, side: Optional[str]) -> None:
        with shielded():
            try:
                self.cancel_all_orders(contract, side)
            except GameAPIError as failure:
                warnings.warn(f"cancel_all_on_exit could not cancel: {failure}", RuntimeWarning, stacklevel=4)

    def delete_order(self, order_id: Union[int, str]) -> DeleteResult:
        """Delete an order given as ``1234``, ``"1234"`` or ``"ord_1234"``: what is left of it leaves the book.

        An order with nothing left (fully executed, expired, deleted already)
        is not cancellable: the exchange answers 404 and this raises
        ``NotFoundError`` (whose message says which), as for an order that is
        not yours. Trades already made stand.
        """
        return self._run_flow(self._trading.delete_order(order_id))

    def get_market_data(
        self, direction: Optional[str] = None, duration: Optional[str] = None, sort_by_price: bool = False
    ) -> List[MarketRow]:
        """Market rows (order-book levels with best bid and ask), optionally filtered.

        ``sort_by_price`` orders them by contract and side, best price first.
        """
        return self._drive(self._call(calls.get_market_data(direction, duration, sort_by_price)))

    def get_market_ltp(self, market_zone: Optional[str] = None) -> List[LTPEntry]:
        """Last traded prices in a market zone (EIC code, e.g. ``10YCH-SWISSGRIDZ``)."""
        return self._drive(self._call(calls.get_market_ltp(market_zone)))

    def get_latest_available_ltp(self, duration: Optional[str] = None) -> List[LTPEntry]:
        """The latest traded price of each contract, optionally of one duration."""
        return self._drive(self._call(calls.get_latest_available_ltp(duration)))

    def get_spot_data(
        self,
        area_name: Optional[str] = None,
        date_from: Any = None,
        date_to: Any = None,
        limit: Optional[int] = None,
    ) -> List[SpotData]:
        """Spot data, optionally for one area (``CH-SGD``), a date range and a count."""
        return self._drive(self._call(calls.get_spot_data(area_name, date_from, date_to, limit)))

    def get_spot_status(self) -> SpotStatus:
        """The spot feed's state."""
        return self._drive(self._call(calls.get_spot_status()))

    # -- helpers built on those calls ----------------------------------------------

    def test_connection(self) -> bool:
        """True when the exchange answers ``/status`` to our token; never raises for that."""
        return self._drive(self._call(calls.test_connection()))

    def find_order_by_id(self, order_id: Union[int, str]) -> Optional[Order]:
        """The caller's order with that id (``1234``, ``"1234"``, ``"ord_1234"``), or None.

        An id that no order can have (``"some_id"``) is None without a request.
        """
        return self._drive(self._call(calls.find_order_by_id(order_id)))

    def find_matching_orders(self, order: Dict[str, Any]) -> List[Order]:
        """The caller's orders that match ``order`` as it was sent (reconcile after OutcomeUnknownError)."""
        return self._drive(self._call(calls.find_matching_orders(order)))

    def get_market_best_offers(
        self, duration: Optional[str] = None, top_n: Optional[int] = None
    ) -> Dict[str, BestOffers]:
        """Market rows by contract and side, best price first, at most ``top_n`` each (None: all)."""
        return self._drive(self._call(calls.get_market_best_offers(duration, top_n)))

    def get_latest_ltp(self) -> Dict[str, LatestLTP]:
        """The newest traded price of each contract (keyed by contract), with the zones it traded in."""
        return self._drive(self._call(calls.get_latest_ltp()))

    # -- live events, polled within the request budget ------------------------------

    def watch_orders(
        self, interval: float = 1.0, direction: Optional[str] = None, *, existing: bool = False
    ) -> Iterator[OrderEvent]:
        """Events of the caller's orders: ``placed``, ``filled`` (with the new volume), ``gone``.

        Polls ``get_orders`` every ``interval`` seconds until the caller stops
        iterating. The orders listed when the watch starts are its baseline:
        not reported, unless ``existing=True`` (then once, first, as events of
        kind ``"existing"``). A fill is reported once and never missed: the
        volumes of an order's ``filled`` events add up to what it executed
        after the baseline. ``event.order_id`` is the id as ``create_order``
        answers it (``"ord_1234"``). Network errors and 5xx answers are
        waited out; an authentication error ends it.
        """
        return self._watch(OrderWatch(interval, direction, existing=existing, random=self._session.random), True)

    def watch_trades(self, interval: float = 1.0, mine: bool = True, *, existing: bool = False) -> Iterator[Trade]:
        """Each new trade once (by ``trade_id``), as ``get_trades`` gives it; ``mine``: the caller's only.

        The trades listed when the watch starts are its baseline: not
        reported, unless ``existing=True`` (then once, first, each with
        ``"existing": True`` added).
        """
        return self._watch(self._trading.trade_watch(interval, mine, existing=existing), mine)

    def watch_market(
        self, interval: float = 1.0, duration: Optional[str] = None, *, existing: bool = False
    ) -> Iterator[MarketEvent]:
        """A ``MarketEvent`` (contract, bid, ask) whenever a contract's best bid or ask changes.

        The book when the watch starts is its baseline: not reported, unless
        ``existing=True`` (then once, first, an event per contract with
        ``existing`` true).
        """
        return self._watch(MarketWatch(interval, duration, existing=existing, random=self._session.random))

    def _watch(self, watch: Watch[E], journaled: bool = False) -> Iterator[E]:
        # The loop is the core's (Trading.watch): each action answered as in any flow, each Deliver given.
        flow = self._trading.watch(watch, journaled)
        reply: Any = None
        try:
            while True:
                action = flow.send(reply)
                if type(action) is Deliver:
                    yield action.event
                    reply = None
                elif self._closed:
                    raise RuntimeError("this GameAPI client is closed; make a new one")
                else:
                    reply = self._drive(one_action(cast(Action, action)))
        finally:
            flow.close()

    # -- the journal ------------------------------------------------------------------

    def reconcile(self) -> Reconciled:
        """Settle every intent the journal holds without an outcome, against the exchange's listing.

        An intent is matched with a listed order by window, side, price,
        volume and the time it was sent: created (with the exchange's id) or
        not placed. Listed orders the journal does not know are recorded as
        foreign (reported in the answer, not adopted); fills and the
        account's trades are recorded. Returns what it settled and found.
        """
        if self._journal is None:
            raise JournalError('reconcile() needs a journal: GameAPI(..., journal="sqlite:///bot.db")')
        return self._run_flow(self._journal.reconcile(self._session.run))
