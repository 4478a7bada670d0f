"""The order journal's flows: what both clients run around an order call, a reconcile and a watch.

GAME has no client order id, so a bot that must survive its own crash
writes down what it is about to send before it sends it (the *intent*, under
a UUID of ours), and the outcome once the answer came: created with the
exchange's id, refused with the reason, or unknown. On restart,
``reconcile`` settles every intent left without an outcome against what the
exchange shows (its listing and its trades), within the intent's
late-request window (``_order_life``); orders the exchange holds that the
journal does not know are recorded as *foreign*.

The journal is in modules by concern: the records and the storage
interface (``_journal_records``), the order's life as the journal records
it and reconciliation's matching (``_journal_life``), the watchers' marks
(``_journal_resume``), and here the flows. Everything is pure: the flows
reach the store through the ``Blocking`` action, so the blocking client
calls it in place and the async client in a worker thread; each store
method is given the call's time left and returns by then.

- ``create`` / ``create_bulk`` / ``delete``: the write-ahead step around an
  order call (the client's hook): the intents committed before the request
  leaves, one commit for an order or a bulk part; the outcomes handed to the
  store, which reads them back at once and commits them with its next write
  or its group commit within ``OUTCOME_DURABLE_WITHIN`` (``_outcomes``);
- ``observe_orders`` / ``observe_trades``: fills and trades, each once;
- ``reconcile``: list orders and trades, match, settle, record foreigners;
- ``polled`` / ``event_reported``: a watch resumes its own marks.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Set, Tuple, TypeVar, cast

from . import _order_life as life
from ._boundary import Blocking, Flow, Unanswered
from ._calls import Call, get_orders, get_status, get_trades
from ._errors import GameAPIError, JournalError
from ._journal_life import (
    LIVE,
    answered_outcome,
    bulk_outcomes,
    ended_while_away,
    exchange_id_of,
    executed_by_order,
    failed_outcome,
    foreign_record,
    match_listing,
    match_trades,
    observe_listing,
    trade_records,
    traders_of,
    window_of,
)
from ._journal_records import (
    CREATED,
    DELETED,
    DELETING,
    EXPIRED,
    FILLED,
    FOREIGN,
    GONE,
    INTENT,
    NOT_PLACED,
    REFUSED,
    SCHEMA_VERSION,
    STATES,
    UNKNOWN,
    UNSETTLED,
    ExchangeIdentity,
    Intent,
    JournalFill,
    JournalOrder,
    JournalStore,
    JournalTrade,
    Observed,
    Outcome,
    Reconciled,
    SettlesSoon,
    StateChange,
    canonical,
    check_exchange,
    contract_of,
    default_writer,
    delivery_times,
    exchange_id_argument,
    intent_uuid,
    iso,
    normalise_base_url,
    sent_orders,
)
from ._journal_resume import baseline_marks, event_marks, listing_keys, resume_watch, stream_of
from ._types import BulkResult, Order, Trade
from ._watch import OrderWatch, TradeWatch, Watch

__all__ = [
    "JournalOrder",
    "JournalFill",
    "JournalTrade",
    "StateChange",
    "Intent",
    "Outcome",
    "Observed",
    "Reconciled",
    "ExchangeIdentity",
    "JournalStore",
    "SettlesSoon",
    "JournalFlows",
    "STATES",
    "UNSETTLED",
    "SCHEMA_VERSION",
    "CREATED",
    "DELETED",
    "DELETING",
    "EXPIRED",
    "FILLED",
    "FOREIGN",
    "GONE",
    "INTENT",
    "NOT_PLACED",
    "REFUSED",
    "UNKNOWN",
    "OUTCOME_BUDGET",
    "canonical",
    "contract_of",
    "delivery_times",
    "intent_uuid",
    "match_listing",
    "foreign_record",
    "trade_records",
    "default_writer",
    "open_flows",
    "check_exchange",
    "sent_orders",
]

logger = logging.getLogger("gameproto.journal")

T = TypeVar("T")
#: How a journal flow runs the order call it wraps: ``Session.run`` or ``Session.outcome`` with a deadline.
Runner = Callable[[Call[Any], float], Flow[Any]]

#: Seconds an outcome's write may take past the call's deadline: a call that timed out still
#: records ``unknown`` rather than leave its intent ``intent``.
OUTCOME_BUDGET = 1.0


class JournalFlows:
    """A client's journal: the store, this process's writer name, and the flows both clients run.

    ``exchange_now`` is the exchange's time (the session's estimate), ``clock``
    the monotonic clock of deadlines, ``random`` the session's randomness
    (intent ids), ``timeout`` the call's deadline, ``grace`` the late-request
    grace (``ClientSettings.late_request_grace``). ``writer`` names this
    process in the journal; the default is unique to the process. Before an
    intent's window closes only its own process settles it, and only from
    what the exchange shows; after, any process (a restarted bot included).
    ``base_url`` is the exchange the journal belongs to (``bind``).
    """

    def __init__(
        self,
        store: JournalStore,
        *,
        exchange_now: Callable[[], Optional[dt.datetime]],
        wall_clock: Callable[[], float],
        clock: Callable[[], float],
        random: Callable[[], float],
        timeout: float,
        writer: Optional[str] = None,
        base_url: str = "",
        grace: float = life.LATE_REQUEST_GRACE,
    ) -> None:
        self.store = store
        #: The store's ``settle_soon`` when it holds outcomes to commit later (``SettlesSoon``), else None.
        self._settle_soon: Optional[Callable[[Sequence[Outcome]], None]] = getattr(store, "settle_soon", None)
        self._exchange_now = exchange_now
        self._wall_clock = wall_clock
        self.clock = clock
        self.random = random
        self.timeout = timeout
        self.writer = writer or default_writer(random)
        self.grace = grace
        self.exchange = ExchangeIdentity(normalise_base_url(base_url)) if base_url else None
        #: Whether the exchange's instance (``/status``) was compared with the journal's in this process.
        self._instance_checked = self.exchange is None
        #: This process's intents whose answer has not come yet.
        self.in_flight: Set[str] = set()
        self.traders: Set[str] = set()
        self._last: Optional[dt.datetime] = None
        #: What this process last recorded of the orders (executed, state) and trades its last listing showed.
        self._observed: Dict[int, Tuple[str, str]] = {}
        self._traded: Set[Tuple[str, str]] = set()

    # -- the exchange the journal belongs to ------------------------------------------------

    def bind(self, time_left: float = 10.0) -> None:
        """Record (or compare) the exchange's base URL and the account's trader names; when the journal is opened."""
        if self.exchange is None:
            return
        held = self.store.bind(ExchangeIdentity(self.exchange.base_url), time_left)
        check_exchange(held, self.exchange, self.store.url)
        self.traders |= set(held.traders)

    def _exchange_checked(self, run: Runner) -> Flow[None]:
        """Once a process: the instance ``/status`` names (a sandbox reset changes it) against the journal's."""
        if self._instance_checked or self.exchange is None:
            return
        try:
            status = yield from run(get_status(), self._deadline())
        except GameAPIError as error:
            status = error  # a bulk's runner returns its error rather than raise it
        if isinstance(status, GameAPIError):
            logger.info("journal: /status did not answer (%s); its instance is compared on the next call", status)
            return
        instance = status.get("instance") if isinstance(status, dict) else None
        self._instance_checked = True
        if not isinstance(instance, (str, int)) or isinstance(instance, bool) or str(instance) == "":
            return
        wanted = ExchangeIdentity(self.exchange.base_url, str(instance))
        held = yield from self._step(self._deadline(), "record the exchange", self.store.bind, wanted)
        check_exchange(held, wanted, self.store.url)

    def _learn_traders(self, names: Set[str]) -> Flow[None]:
        """Keep the account's trader names in the journal: a restarted bot reads its trades before any listing."""
        new = names - self.traders
        self.traders |= names
        if new and self.exchange is not None:
            identity = ExchangeIdentity(self.exchange.base_url, traders=tuple(sorted(new)))
            try:
                yield from self._step(self._deadline(), "record the trader names", self.store.bind, identity)
            except JournalError as error:
                logger.warning("%s", error)

    # -- the clock --------------------------------------------------------------------------------

    def _now(self) -> dt.datetime:
        """The exchange's time (the session's estimate); the local clock before any answer told it."""
        moment = self._exchange_now()
        if moment is None:
            moment = dt.datetime.fromtimestamp(self._wall_clock(), dt.timezone.utc)
        return moment

    def now(self) -> str:
        """The exchange's time as the journal writes it; never earlier than the last stamp of this process."""
        moment = self._now()
        if self._last is not None and moment <= self._last:
            moment = self._last + dt.timedelta(microseconds=1)
        self._last = moment
        return iso(moment, "microseconds")

    # -- one store step, through the driver's Blocking ----------------------------------

    def _step(self, deadline: float, what: str, function: Callable[..., T], *args: Any) -> Flow[T]:
        """Run ``function(*args, time_left)`` where blocking is allowed; a store failure is a JournalError."""
        time_left = deadline - self.clock()
        if time_left <= 0:
            raise JournalError(f"journal: no time left to {what} (the call's deadline passed)")
        outcome = yield Blocking(functools.partial(_guarded, function, *args), time_left)
        if isinstance(outcome, Unanswered):
            raise JournalError(f"journal ({self.store.url}): could not {what}: {outcome.detail}")
        return outcome  # type: ignore[no-any-return]

    def _deadline(self) -> float:
        return self.clock() + self.timeout

    def _outcome_deadline(self, deadline: float) -> float:
        """An outcome's own budget: what is left of the call, and at least ``OUTCOME_BUDGET`` past now."""
        return max(deadline, self.clock() + OUTCOME_BUDGET)

    # -- write-ahead: around an order call ---------------------------------------------------

    def _intents(self, orders: Sequence[Mapping[str, Any]], deadline: float) -> List[Intent]:
        sent = self.now()
        ends = iso(self._now() + dt.timedelta(seconds=max(0.0, deadline - self.clock())), "microseconds")
        now = self._wall_clock()  # time-ordered ids: the journal's indexes of intents grow at their end
        return [Intent(intent_uuid(self.random, now), order, sent, self.writer, ends) for order in orders]

    def _commit(self, intents: List[Intent], deadline: float, what: str) -> Flow[None]:
        """Commit ``intents``; when that fails, nothing is sent, and a commit landing late is settled not placed."""
        try:
            yield from self._step(deadline, what, self.store.add_intents, intents)
        except JournalError:
            reason = "nothing was sent: the intent could not be committed in time"
            now = self.now()
            outcomes = [Outcome(intent.intent_id, NOT_PLACED, now, reason=reason) for intent in intents]
            yield from self._settle_quietly(outcomes, self._outcome_deadline(deadline), log=False)
            raise

    def create(self, run: Runner, call: Call[Order]) -> Flow[Order]:
        """One order: commit its intent, send (``run(call, deadline)``), write the outcome."""
        yield from self._exchange_checked(run)
        deadline = self._deadline()
        (intent,) = self._intents(sent_orders(call), deadline)
        yield from self._commit([intent], deadline, "commit the order's intent")
        self.in_flight.add(intent.intent_id)
        try:
            try:
                answer = yield from run(call, deadline)
            except GameAPIError as error:
                yield from self._outcomes([failed_outcome(intent.intent_id, error, self.now())], deadline)
                raise
            yield from self._outcomes([answered_outcome(intent.intent_id, answer, self.now())], deadline)
            yield from self._learn_traders(traders_of([answer]))
            return cast(Order, answer)
        finally:
            self.in_flight.discard(intent.intent_id)

    def create_bulk(self, run: Runner, call: Call[BulkResult]) -> Flow[Any]:
        """One part of a bulk: commit every order's intent, send, write each outcome by index.

        Returns the part's ``BulkResult`` or the ``GameAPIError`` it met, a
        ``JournalError`` included (a bulk's parts return their error rather
        than raise it): ``run`` is ``Session.outcome``.
        """
        try:
            yield from self._exchange_checked(run)
        except JournalError as error:
            return error
        deadline = self._deadline()
        intents = self._intents(sent_orders(call), deadline)
        try:
            yield from self._commit(intents, deadline, "commit the orders' intents")
        except JournalError as error:
            return error
        ids = [intent.intent_id for intent in intents]
        self.in_flight.update(ids)
        try:
            result = yield from run(call, deadline)
            if isinstance(result, GameAPIError):
                outcomes = [failed_outcome(one, result, self.now()) for one in ids]
            else:
                outcomes = bulk_outcomes(ids, result, self.now())
                answers = [entry.get("result") for entry in result.get("created", [])]
                yield from self._learn_traders(
                    traders_of(cast(Order, answer) for answer in answers if isinstance(answer, dict))
                )
            yield from self._outcomes(outcomes, deadline)
            return result
        finally:
            self.in_flight.difference_update(ids)

    def _outcomes(self, outcomes: Sequence[Outcome], deadline: float) -> Flow[None]:
        """What came of an order call: handed to the store at once, committed by its next write or group commit.

        Only the intent must be durable before the request leaves; an outcome
        lost with the process is recovered by ``reconcile`` from the listing.
        So an order costs one commit: its outcome rides on the next write's
        commit, or the store's group commit within ``OUTCOME_DURABLE_WITHIN``;
        the store's reads answer with it at once. A store that cannot hold
        outcomes commits them now, within the outcome's own budget.
        """
        if self._settle_soon is not None:
            self._settle_soon(outcomes)  # in memory, under no database lock: never blocks
            return
        yield from self._settle_quietly(outcomes, self._outcome_deadline(deadline))

    def _settle_quietly(self, outcomes: Sequence[Outcome], deadline: float, *, log: bool = True) -> Flow[None]:
        """Write outcomes; a failure leaves the intents for ``reconcile`` (the order itself stands)."""
        try:
            yield from self._step(deadline, "write the outcome", self.store.settle, outcomes)
        except JournalError as error:
            if log:
                logger.warning("%s; reconcile() will settle the intent", error)

    # -- fills and trades ---------------------------------------------------------------------

    def observe_orders(self, listing: Sequence[Order]) -> Flow[None]:
        """Record what a watch's listing of our orders shows that changed since its last: fills and states.

        What this process last recorded of each listed order is remembered (for
        the orders of the last listing only), so a poll where nothing changed
        neither reads nor writes the journal.
        """
        yield from self._learn_traders(traders_of(listing))
        observed = observe_listing(listing, self.now())
        last = self._observed
        changed = [item for item in observed if last.get(item.exchange_id) != (item.executed_volume, item.state)]
        if changed:
            yield from self._step(self._deadline(), "record fills", self.store.observe, changed)
        self._observed = {item.exchange_id: (item.executed_volume, item.state) for item in observed}

    def observe_trades(self, trades: Sequence[Trade]) -> Flow[int]:
        """Record the account's trades among ``trades`` not recorded by the last listing; how many were new."""
        records = trade_records(trades, self.traders)
        keys = {(record.trade_id, record.side) for record in records}
        new = [record for record in records if (record.trade_id, record.side) not in self._traded]
        added = (yield from self._step(self._deadline(), "record trades", self.store.add_trades, new)) if new else 0
        self._traded = keys  # the trades of this listing: a trade listed again is not written again
        return added

    def record_trades(self, run: Runner) -> Flow[int]:
        """Bring the journal's trades up to date (an export's first step): list them, record the account's."""
        if not self.traders:
            listing = yield from run(get_orders(), self._deadline())
            yield from self._learn_traders(traders_of(listing))
        if not self.traders:
            return 0
        trades = yield from run(get_trades(), self._deadline())
        return (yield from self.observe_trades(trades))

    # -- reconciliation -----------------------------------------------------------------------

    def _window(self, intent: JournalOrder) -> Optional[life.RequestWindow]:
        return window_of(intent, grace=self.grace)

    def reconcile(self, run: Runner) -> Flow[Reconciled]:
        """List our orders and trades; settle unsettled intents; record foreigners, fills, trades and ends."""
        yield from self._exchange_checked(run)
        listing: List[Order] = yield from run(get_orders(), self._deadline())
        yield from self._learn_traders(traders_of(listing))
        trades: List[Trade] = []
        if self.traders:
            trades = yield from run(get_trades(), self._deadline())
        deadline = self._deadline()
        stamp, moment = self.now(), self._now()
        ours = trade_records(trades, self.traders)
        listed_ids = {number for number in map(exchange_id_of, listing) if number is not None}
        traded_ids = {trade.exchange_id for trade in ours if trade.exchange_id is not None}
        unsettled = yield from self._step(deadline, "read the journal", self.store.unsettled)
        known = yield from self._step(deadline, "read the journal", self.store.known, sorted(listed_ids | traded_ids))
        known_ids = {order.exchange_id for order in known if order.exchange_id is not None}
        unknown = [listed for listed in listing if exchange_id_of(listed) not in known_ids]
        outcomes, foreign, in_flight = match_listing(
            unknown,
            unsettled,
            window=self._window,
            mine=lambda intent: intent.writer == self.writer,
            waiting=lambda intent: intent.intent_id in self.in_flight,
            now=moment,
            stamp=stamp,
        )
        orphans = [trade for trade in ours if trade.exchange_id not in known_ids | listed_ids]
        outcomes, in_flight = match_trades(
            outcomes,
            in_flight,
            unsettled,
            orphans,
            window=self._window,
            settles=lambda intent: intent.writer == self.writer and intent.intent_id not in self.in_flight,
            stamp=stamp,
        )
        if outcomes:
            yield from self._step(deadline, "settle intents", self.store.settle, outcomes)
        foreigners = [foreign_record(listed, stamp) for listed in foreign]
        if foreigners:
            yield from self._step(deadline, "record foreign orders", self.store.add_foreign, foreigners)
        new_trades = (yield from self._step(deadline, "record trades", self.store.add_trades, ours)) if ours else 0
        observed = observe_listing(listing, stamp)
        live = yield from self._step(deadline, "read the journal", self.store.in_states, list(LIVE))
        observed += ended_while_away(live, listed_ids, executed_by_order(ours), stamp)
        if observed:
            yield from self._step(deadline, "record fills and ends", self.store.observe, observed)
        settled = yield from self._read_settled([outcome.intent_id for outcome in outcomes], deadline)
        return Reconciled(tuple(settled), tuple(foreigners), tuple(in_flight), new_trades)

    def _read_settled(self, intent_ids: List[str], deadline: float) -> Flow[List[JournalOrder]]:
        if not intent_ids:
            return []
        store = self.store

        def read(time_left: float) -> List[JournalOrder]:
            return store.orders(intent_ids=intent_ids, time_left=time_left)

        return (yield from self._step(deadline, "read the journal", read))

    # -- reading the journal back ----------------------------------------------------------------

    def read_orders(
        self, *, state: Optional[str] = None, exchange_id: Any = None, since: Optional[str] = None
    ) -> Flow[List[JournalOrder]]:
        store = self.store
        number = exchange_id_argument(exchange_id)

        def read(time_left: float) -> List[JournalOrder]:
            return store.orders(state=state, exchange_id=number, since=since, time_left=time_left)

        return (yield from self._step(self._deadline(), "read the journal", read))

    def read_trades(self, *, since: Optional[str] = None) -> Flow[List[JournalTrade]]:
        store = self.store

        def read(time_left: float) -> List[JournalTrade]:
            return store.trades(since=since, time_left=time_left)

        return (yield from self._step(self._deadline(), "read the journal", read))

    # -- the watchers resume --------------------------------------------------------------------

    def polled(self, watch: Watch[Any], value: Any, *, first: bool) -> Flow[bool]:
        """Record what a watch's poll listed (fills, trades) and, on its first listing, resume its marks.

        A watch that ran before is seeded with its own marks (its kind and
        filters: ``stream_of``), read for what the listing shows and the
        orders still open; one that never ran marks its baseline, so that a
        restart does not give it as news. Returns False for a trade watch's
        poll of the caller's orders (its trader names), True otherwise.
        """
        if isinstance(watch, TradeWatch) and watch.learning_traders:
            yield from self._learn_traders(traders_of(value))
            watch.tracker.learn_traders(value)
            return False
        if isinstance(watch, OrderWatch):
            yield from self.observe_orders(value)
        elif isinstance(watch, TradeWatch):
            yield from self.observe_trades(value)
        if first:
            stream = stream_of(watch)
            keys = listing_keys(watch, value)
            marks = yield from self._step(self._deadline(), "read what was reported", self.store.reported, stream, keys)
            if not resume_watch(watch, marks):
                yield from self.reported(stream, baseline_marks(watch, value))
        return True

    def event_reported(self, watch: Watch[Any], event: Any) -> Flow[None]:
        """Mark one event reported before the caller takes it, so that a restart does not give it again."""
        yield from self.reported(stream_of(watch), event_marks(watch, event))

    def reported(self, stream: str, items: Mapping[str, str]) -> Flow[None]:
        """Mark events as reported, so that a restart does not report them again."""
        yield from self._step(self._deadline(), "mark events reported", self.store.mark_reported, stream, items)


def open_flows(store: JournalStore, session: Any, settings: Any, writer: Optional[str] = None) -> JournalFlows:
    """A client's journal flows on ``store``, bound to the client's exchange (``JournalError`` for another's).

    ``session`` is the client's ``Session`` (its clocks and randomness),
    ``settings`` its ``ClientSettings`` (timeout, base URL, late-request
    grace). A store that cannot be read to bind is a ``JournalError``.
    """
    flows = JournalFlows(
        store,
        exchange_now=session.exchange_now,
        wall_clock=session.wall_clock,
        clock=session.clock,
        random=session.random,
        timeout=settings.timeout,
        writer=writer,
        base_url=settings.base_url,
        grace=getattr(settings, "late_request_grace", life.LATE_REQUEST_GRACE),
    )
    try:
        flows.bind(max(settings.timeout, 10.0))
    except JournalError:
        store.close()
        raise
    except Exception as error:
        store.close()
        raise JournalError(f"journal ({store.url}): could not read it: {type(error).__name__}: {error}") from None
    return flows


def _guarded(function: Callable[..., T], *args: Any) -> Any:
    """``function(*args, time_left)``; a failure returned as ``Unanswered`` (the flow raises JournalError)."""
    try:
        return function(*args)
    except Exception as error:  # a store failure of any kind
        return Unanswered(f"{type(error).__name__}: {error}")
