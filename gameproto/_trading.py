"""The trading flows, written once for every driver: orders under limits, deletes, the kill switch, positions.

``Trading`` holds what a client knows beyond one call: the account
(``_account.Account``, or the limits' ``RiskBook`` when ``ClientSettings.risk``
is set) and the journal (``ClientSettings.journal``). Each method is a flow,
as ``Session.run`` is: the driver runs it and answers its actions, the
sub-flows of a ``RunAll`` included (a split bulk's parts, the kill switch's
deletes), and decides nothing.

- ``create_order``: the account read from the exchange when it is stale
  (``refresh``), every order judged and reserved by the limits in one step,
  the journal's write-ahead, the request, then what came of each order. An
  order whose outcome is unknown keeps its reservation until the exchange
  shows it or its late-request window closes (``_order_life``).
- ``delete_order`` and ``cancel_all``: the journal's record of a deletion
  gets at most ``DELETE_RECORD_BUDGET`` (0.5 s); the delete is sent whatever
  came of it, and a record that could not be written is logged as a warning
  (the next ``reconcile()`` completes it). The kill switch never waits on the
  journal.
- ``positions``: the account's trader names (its orders, the limits'
  ``traders``, or the caller's), then its trades.
- ``watch``: a ``watch_*`` loop (``gameproto/_watch.py``'s schedule), with the
  journal's hooks when it is journaled; each event is marked, then handed to
  the caller by a ``Deliver`` action.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, List, Optional, Union, cast

from . import _constants
from ._account import Account, check_traders
from ._arguments import order_number_or_none
from ._boundary import Deliver, Flow, RunAll, Sleep, WatchFlow
from ._bulk import BulkSending, OrderPlan, plan_orders
from ._calls import Call, delete_order, get_latest_available_ltp, get_market_data, get_orders, get_trades
from ._cancel_all import CancelAll, CancelAllResult
from ._errors import GameAPIError, InvalidArgumentError, JournalError, NotFoundError
from ._flow import Session
from ._journal import JournalFlows, JournalStore, Observed, open_flows
from ._order_life import RequestWindow, request_window
from ._positions import Positions, positions, trader_names
from ._risk import RiskBook, RiskGuard
from ._types import BulkResult, DeleteResult, Order, Trade
from ._watch import OrderWatch, TradeWatch, Watch

__all__ = ["Trading", "open_journal_flows"]

logger = logging.getLogger("gameproto.journal")


def open_journal_flows(journal: Any, session: Session) -> Optional[JournalFlows]:
    """The journal's flows for ``ClientSettings.journal`` (a URL, or a store already open), or None.

    The stores live in ``gameproto_journal``, imported only when a journal is
    asked for (as ``.env`` files are read with python-dotenv only when there
    is one): a client without a journal never loads them.
    """
    if journal is None:
        return None
    writer: Optional[str] = None
    if isinstance(journal, str):
        from gameproto_journal import check_journal_url, open_journal, split_writer

        check_journal_url(journal)  # ValueError: a URL that can never name a journal
        writer = split_writer(journal)[1]
        store: JournalStore = open_journal(journal)
    else:
        store = journal
        writer = getattr(journal, "writer", None)
    # Bound to this client's exchange; the writer's name unique to this process unless one is given.
    return open_flows(store, session, session.settings, writer)


class _Records:
    """The journal records of one ``delete_order`` or one kill switch: whether one failed (then none is tried)."""

    __slots__ = ("failed",)

    def __init__(self) -> None:
        self.failed = False


class Trading:
    """The trading flows of one client over its ``session`` (see the module)."""

    def __init__(self, session: Session, journal: Optional[JournalFlows] = None) -> None:
        self.session = session
        self.settings = session.settings
        limits = self.settings.risk
        #: The limits' book (None without ``risk``); it is the account when there is one.
        self.risk: Optional[RiskBook] = RiskBook(limits) if limits is not None else None
        #: What the client knows of its account: trader names, resting orders, fills.
        self.account: Account = self.risk if self.risk is not None else Account()
        #: The journal's flows (``gameproto/_journal.py``), or None.
        self.journal: Optional[JournalFlows] = (
            journal if journal is not None else open_journal_flows(self.settings.journal, session)
        )
        if self.journal is not None:  # the names a journal learnt in earlier runs: the account is known at once
            self.account.learn({"trader": name} for name in sorted(self.journal.traders))

    # -- orders ------------------------------------------------------------------------------

    def create_order(self, order_data: Any, skip_invalid: bool = False) -> Flow[Union[Order, BulkResult]]:
        """One order, or a bulk: under the limits when there are some, with the journal when there is one."""
        book = self.risk
        if book is None:
            plan = self._plan(order_data, skip_invalid, None)
            sent: Union[Order, BulkResult] = yield from self._send(plan)
            # The account's names from its answers, as the limits' book learns them: a trade watch needs them.
            if plan.single is not None:
                self.account.learn([cast(Order, sent)])
            else:
                self.account.learn(entry.get("result") or {} for entry in cast(BulkResult, sent).get("created", []))
            return sent
        if book.needs_refresh(self.session.clock()):
            yield from self.refresh(book)
        screened = self.session.wall_clock()
        guard = RiskGuard(book, window=lambda: self._window(screened))
        try:
            plan = self._plan(order_data, skip_invalid, guard)
            answer: Union[Order, BulkResult] = yield from self._send(plan)
        except BaseException as error:
            guard.failed(error)
            raise
        if plan.single is not None:
            guard.sent_one(cast(Order, answer))
        else:
            guard.sent_bulk(cast(BulkResult, answer))
        return answer

    def _plan(self, order_data: Any, skip_invalid: bool, guard: Optional[RiskGuard]) -> OrderPlan:
        return plan_orders(
            order_data,
            now=self.session.exchange_now(),
            allow_non_positive_price=self.settings.allow_non_positive_price,
            skip_invalid=skip_invalid,
            screen=guard.screen if guard is not None else None,
        )

    def _window(self, sent: float) -> RequestWindow:
        """The late-request window of orders screened at ``sent`` whose call ends now without an answer.

        It closes at the call's deadline plus the grace, as the journal's does,
        even when the call gave up early (a dropped connection): the request
        may be held on its way for as long. A bulk whose parts ran one after
        another ends later: its requests all left by now.
        """
        deadline = max(self.session.wall_clock(), sent + self.settings.timeout)
        offset = self.session.exchange_clock.offset
        return request_window(sent, deadline, offset, grace=self.settings.late_request_grace)

    def _send(self, plan: OrderPlan) -> Flow[Any]:
        if plan.single is not None:
            return (yield from self._send_single(plan.single))
        return (yield from self._send_bulk(plan))

    def _send_single(self, call: Call[Order]) -> Flow[Order]:
        if self.journal is not None:  # the journal's hook: the intent committed first
            return (yield from self.journal.create(self.session.run, call))
        return (yield from self.session.run(call))

    def _send_bulk(self, plan: OrderPlan) -> Flow[BulkResult]:
        sending = BulkSending(plan)

        def part(offset: int, call: Call[BulkResult]) -> Flow[None]:
            if sending.stopped:
                return  # after a failed part no further part is sent
            if self.journal is not None:  # the journal's hook: intents committed first
                outcome = yield from self.journal.create_bulk(self.session.outcome, call)
            else:
                outcome = yield from self.session.outcome(call)
            sending.record(offset, outcome)

        yield RunAll(tuple(part(offset, call) for offset, call in plan.parts), _constants.BULK_CONCURRENCY)
        return sending.result()

    def refresh(self, book: RiskBook) -> Flow[None]:
        """Read the account from the exchange: its orders, then its trades, then the prices the limits need."""
        started = self.session.clock()
        exchange_time = self.session.exchange_clock.exchange_time(self.session.wall_clock())
        since = book.begin_refresh()
        trades = market = last = None
        # The orders before the trades: a fill in between counts twice, never not at all.
        orders: List[Order] = yield from self.session.run(get_orders())
        if book.limits.needs_trades:
            trades = yield from self.session.run(get_trades())
        if book.limits.needs_prices:
            market = yield from self.session.run(get_market_data())
            last = yield from self.session.run(get_latest_available_ltp())
        book.refresh(orders, trades, market, last, now=started, since=since, exchange_time=exchange_time)

    # -- deletes and the kill switch ------------------------------------------------------------

    def delete_order(self, order_id: Any) -> Flow[DeleteResult]:
        """Delete one order (``1234``, ``"1234"``, ``"ord_1234"``); the account is read again before the next order."""
        answer = yield from self._deleting(delete_order(order_id), order_id, _Records())
        self.account.cancelled(order_id)
        return answer

    def _deleting(self, call: Call[DeleteResult], order_id: Any, records: _Records) -> Flow[DeleteResult]:
        """One deletion, ``delete_order`` and the kill switch alike: its record never holds it back."""
        journal, number = self.journal, order_number_or_none(order_id)
        if journal is None or number is None:
            return (yield from self.session.run(call))
        deadline = self.session.clock() + self.settings.timeout
        yield from self._record(records, number, "record the deletion's request", journal.store.delete_requested)
        try:
            answer = yield from self.session.run(call, deadline)
        except NotFoundError:
            yield from self._record(records, number, "record the order gone", self._observed("gone"))
            raise
        yield from self._record(records, number, "record the order deleted", self._observed("deleted"))
        return answer

    def _observed(self, state: str) -> Callable[..., None]:
        store = cast(JournalFlows, self.journal).store

        def observe(number: int, at: str, time_left: float) -> None:
            store.observe([Observed(number, "", state, at)], time_left)

        return observe

    def _record(self, records: _Records, number: int, what: str, function: Callable[..., None]) -> Flow[None]:
        """A deletion's journal record, given at most ``DELETE_RECORD_BUDGET``; a failure is a warning.

        Once a record of one ``delete_order`` or one kill switch failed, the
        rest of its records are not tried: a store that is down would cost
        every delete its budget. The next ``reconcile()`` completes them
        from the exchange (nothing is queued in memory).
        """
        if records.failed:
            return
        journal = cast(JournalFlows, self.journal)
        budget = min(_constants.DELETE_RECORD_BUDGET, self.settings.timeout)
        try:
            yield from journal._step(self.session.clock() + budget, what, function, number, journal.now())
        except JournalError as error:
            records.failed = True
            logger.warning(
                "order %s: %s; the deletes go ahead without journal records (the next reconcile completes them)",
                number,
                error,
            )

    def cancel_all(self, contract: Any = None, side: Optional[str] = None) -> Flow[CancelAllResult]:
        """The kill switch: list, delete every matching resting order at once, list again for what failed."""
        sweep, records = CancelAll(contract, side), _Records()
        while sweep.next_round():
            try:
                listed: List[Order] = yield from self.session.run(get_orders(sweep.side))
            except GameAPIError:
                if sweep.round == 1:
                    raise
                break  # the failed deletes stay reported as failed
            self.account.learn(listed)
            targets = sweep.targets(listed)
            outcomes = yield RunAll(
                tuple(self._delete_outcome(number, records) for number in targets), _constants.BULK_CONCURRENCY
            )
            for number, outcome in zip(targets, outcomes):
                sweep.record(number, outcome)
        self.account.mark_stale()  # read again before the next order
        return sweep.result()

    def _delete_outcome(self, number: int, records: _Records) -> Flow[Union[DeleteResult, GameAPIError]]:
        try:
            return (yield from self._deleting(delete_order(number), number, records))
        except GameAPIError as error:
            return error

    # -- what the watchers list -----------------------------------------------------------------

    def trade_watch(self, interval: Any = 1.0, mine: Any = True, *, existing: Any = False) -> TradeWatch:
        """``watch_trades``' schedule, knowing the account's names already: it lists no orders to learn them."""
        return TradeWatch(interval, mine, traders=self.account.traders, existing=existing, random=self.session.random)

    def watch(self, watch: Watch[Any], journaled: bool = False) -> WatchFlow:
        """A watch's loop: poll, learn, record (``journaled``), then each event marked before it is delivered.

        A failed poll sleeps what the schedule says or ends the watch with its
        error (``Watch.failed``). With a journal, the watch resumes its own
        marks (its kind and filters): what it delivered before is not given
        again after a restart, and the caller is given nothing unmarked.
        """
        journal = self.journal if journaled else None
        first = True
        while True:
            try:
                value = yield from self.session.run(watch.call)
            except GameAPIError as error:
                yield Sleep(watch.failed(error))  # raises what ends the watch
                continue
            self.polled(watch, value)  # the account learns from what the watch listed
            if journal is not None and (yield from journal.polled(watch, value, first=first)):
                first = False
            events, wait = watch.succeeded(value)
            for event in events:
                if journal is not None:
                    yield from journal.event_reported(watch, event)  # marked first: a restart never gives it again
                yield Deliver(event)
            yield Sleep(wait)

    def polled(self, watch: Any, value: Any) -> None:
        """A watch's listing (before ``watch.succeeded``): the account learns its trader names from listed orders."""
        lists_orders = isinstance(watch, OrderWatch) or (isinstance(watch, TradeWatch) and watch.learning_traders)
        if lists_orders and isinstance(value, list):
            self.account.learn(order for order in value if isinstance(order, dict))

    # -- positions ----------------------------------------------------------------------------

    def positions(self, traders: Optional[List[str]] = None) -> Flow[Positions]:
        """The account's positions from its trades; its names from its orders and the limits, or ``traders``."""
        if traders is not None:
            try:
                names = list(check_traders(traders))
            except ValueError as wrong:
                raise InvalidArgumentError(str(wrong)) from None
        else:
            orders: List[Order] = yield from self.session.run(get_orders())
            self.account.learn(orders)
            names = trader_names(orders)
            names += [name for name in self.account.traders if name not in names]
        trades: List[Trade] = yield from self.session.run(get_trades())
        return positions(trades, names)
