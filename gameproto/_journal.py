"""The order journal's logic: records, the write-ahead steps of an order call, reconciliation.

GAME has no client order id, so a bot that must survive its own crash
writes down what it is about to send before it sends it (the *intent*, under
a UUID of ours), and the outcome once the answer came: created with the
exchange's id, refused with the reason, or unknown. On restart,
``reconcile`` settles every intent left without an outcome against the
exchange's own listing, by the window, side, price, volume and the time it
was sent; orders the exchange holds that the journal does not know are
recorded as *foreign* (placed by another tool: reported, not adopted).

Everything here is pure. The storage is a ``JournalStore`` (a Protocol):
``gameproto_journal`` holds SQLite and PostgreSQL. The flows below reach the
store through the ``Blocking`` action, so the blocking client calls it in
place and the async client in a worker thread; each store method is given
the call's time left and never waits longer.

Every step is decided here once, for both clients:
- ``JournalFlows.create`` / ``create_bulk`` / ``delete``: the write-ahead
  step around an order call (the client's hook);
- ``JournalFlows.observe_orders`` / ``observe_trades``: fills and trades,
  each recorded once (the store's constraints, not luck, make it once);
- ``JournalFlows.reconcile``: list, match, settle, record foreigners;
- ``resume_order_watch`` / ``resume_trade_watch``: the watchers pick up
  where the last run stopped.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import math
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    List,
    Mapping,
    Optional,
    Protocol,
    Sequence,
    Set,
    Tuple,
    TypeVar,
    cast,
)

from ._arguments import order_number_or_none
from ._boundary import Blocking, Flow, Unanswered
from ._calls import Call, get_orders, get_trades
from ._errors import (
    GameAPIError,
    JournalError,
    NetworkError,
    NotFoundError,
    OutcomeUnknownError,
)
from ._events import OrderTracker, OrderWatch, TradeTracker, TradeWatch, Watch, _order_key, _trade_key
from ._types import BulkResult, DeleteResult, Order, Trade

__all__ = [
    "JournalOrder",
    "JournalFill",
    "JournalTrade",
    "StateChange",
    "Intent",
    "Outcome",
    "Observed",
    "Reconciled",
    "JournalStore",
    "JournalFlows",
    "STATES",
    "UNSETTLED",
    "intent_uuid",
    "match_listing",
    "delivery_times",
    "canonical",
]

logger = logging.getLogger("gameproto.journal")

T = TypeVar("T")
#: How a journal flow runs the order call it wraps: ``Session.run`` or ``Session.outcome`` with a deadline.
Runner = Callable[[Call[Any], float], Flow[Any]]

#: An intent committed, its answer not yet come (or the process died waiting).
INTENT = "intent"
#: The answer could not say whether the exchange placed the order.
UNKNOWN = "unknown"
CREATED = "created"
REFUSED = "refused"
#: Nothing was sent (the connection failed first), or reconcile found no such order.
NOT_PLACED = "not_placed"
FOREIGN = "foreign"
FILLED = "filled"
DELETING = "delete_requested"
DELETED = "deleted"
EXPIRED = "expired"
#: No longer listed, for a reason the journal did not see.
GONE = "gone"
#: Every state an order of the journal can be in.
STATES = (INTENT, UNKNOWN, CREATED, REFUSED, NOT_PLACED, FOREIGN, FILLED, DELETING, DELETED, EXPIRED, GONE)
#: The states of an intent whose outcome is not settled.
UNSETTLED = (INTENT, UNKNOWN)
#: States after which the listing says nothing more.
_FINAL = frozenset({REFUSED, NOT_PLACED, DELETED, EXPIRED, GONE})
#: How far apart the exchange's stamp of an order and our own "sent at" may be (clock estimate error).
CLOCK_TOLERANCE = 5.0


def canonical(value: Any) -> str:
    """A number as the decimal text the journal keeps (exact, no exponent, no trailing zeros)."""
    if isinstance(value, bool):
        raise ValueError(f"not a number: {value!r}")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"not a finite number: {value!r}")
        number = Decimal(repr(value))
    else:
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            raise ValueError(f"not a number: {value!r}") from None
    if not number.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    if number == number.to_integral_value():
        return str(number.quantize(Decimal(1)))
    return format(number.normalize(), "f")


def intent_uuid(random: Callable[[], float]) -> str:
    """A version-4 UUID made from ``random`` (the session's, so a test's seed makes it repeatable)."""
    import uuid  # here, not at the top: on Python 3.8 it loads platform, subprocess and select

    bits = 0
    for _ in range(4):
        bits = (bits << 32) | (int(random() * 2**32) & 0xFFFFFFFF)
    return str(uuid.UUID(int=bits, version=4))


def foreign_uuid(exchange_id: int) -> str:
    """The intent id a foreign order gets: the same in every process, so two recorders make one row."""
    import uuid  # here, not at the top: on Python 3.8 it loads platform, subprocess and select

    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"gameproto-journal:foreign:{exchange_id}"))


def _iso(moment: dt.datetime, timespec: str = "milliseconds") -> str:
    return moment.astimezone(dt.timezone.utc).isoformat(timespec=timespec).replace("+00:00", "Z")


def parse_time(text: Any) -> Optional[dt.datetime]:
    """An ISO 8601 stamp (``Z`` or an offset) as an aware datetime; None when it is not one."""
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.timezone.utc)


def delivery_times(order: Mapping[str, Any]) -> Tuple[str, str]:
    """The delivery start and end of an order as sent, ISO 8601 in UTC."""
    try:
        day = dt.date.fromisoformat(str(order["date"]))
        offset = dt.timezone(dt.timedelta(hours=int(order.get("tz_offset_hours") or 0)))
        start_h, start_m = (int(part) for part in str(order["start_time"]).split(":"))
        end_h, end_m = (int(part) for part in str(order["end_time"]).split(":"))
    except (KeyError, ValueError, TypeError):
        return "", ""
    start = dt.datetime(day.year, day.month, day.day, start_h, start_m, tzinfo=offset)
    end = dt.datetime(day.year, day.month, day.day, end_h, end_m, tzinfo=offset)
    if end <= start:  # "00:00": midnight at the end of the day
        end += dt.timedelta(days=1)
    return _iso(start), _iso(end)


def contract_of(order: Mapping[str, Any]) -> str:
    """The contract name of a delivery window, as the exchange writes it (``2025-01-15T14:00:00Z/PT15M``)."""
    start, end = delivery_times(order)
    if not start:
        return ""
    minutes = int((parse_time(end) - parse_time(start)).total_seconds() // 60)  # type: ignore[operator]
    hours, rest = divmod(minutes, 60)
    length = "PT" + (f"{hours}H" if hours else "") + (f"{rest}M" if rest or not hours else "")
    return start[:19] + "Z/" + length


# -- the records -------------------------------------------------------------------


@dataclass(frozen=True)
class StateChange:
    """One change of an order's state, with its time by the exchange's clock."""

    state: str
    at: str
    detail: str = ""


@dataclass(frozen=True)
class JournalFill:
    """One growth of an order's executed volume: ``volume`` more, ``executed_volume`` in all, at ``at``."""

    exchange_id: int
    volume: Decimal
    executed_volume: Decimal
    at: str


@dataclass(frozen=True)
class JournalOrder:
    """An order as the journal knows it.

    ``intent_id`` is ours (a UUID written before the request left; a foreign
    order gets one too). ``exchange_id`` is the exchange's numeric id once
    known. ``state`` is one of ``STATES``; ``changes`` every state change in
    order, each with its time by the exchange's clock; ``fills`` the growths
    of ``executed_volume`` (they add up to it).
    """

    intent_id: str
    exchange_id: Optional[int]
    origin: str
    side: str
    price: Decimal
    volume: Decimal
    contract: str
    delivery_start: str
    delivery_end: str
    state: str
    executed_volume: Decimal
    sent_at: str
    writer: str
    reason: str = ""
    order: Mapping[str, Any] = field(default_factory=dict)
    changes: Tuple[StateChange, ...] = ()
    fills: Tuple[JournalFill, ...] = ()

    @property
    def settled(self) -> bool:
        """Whether the outcome of the intent is known."""
        return self.state not in UNSETTLED


@dataclass(frozen=True)
class JournalTrade:
    """One trade of the account: recorded once, whoever saw it first."""

    trade_id: str
    side: str
    exchange_id: Optional[int]
    contract: str
    price: Decimal
    volume: Decimal
    at: str
    buyer: str = ""
    seller: str = ""


@dataclass(frozen=True)
class Intent:
    """What is committed before an order request leaves."""

    intent_id: str
    order: Mapping[str, Any]
    sent_at: str
    writer: str


@dataclass(frozen=True)
class Outcome:
    """What the answer said of one intent: ``state`` CREATED (``exchange_id``), REFUSED, UNKNOWN or NOT_PLACED."""

    intent_id: str
    state: str
    at: str
    exchange_id: Optional[int] = None
    reason: str = ""
    executed_volume: Optional[str] = None
    #: The exchange's own answer (True) may overwrite a reconciliation's "not placed"; a reconciliation's may not.
    authoritative: bool = True


@dataclass(frozen=True)
class Observed:
    """An order as a listing showed it: its executed volume and the state the journal gives it."""

    exchange_id: int
    executed_volume: str
    state: str
    at: str


@dataclass(frozen=True)
class Reconciled:
    """What ``reconcile()`` did: the intents it settled and the foreign orders it recorded."""

    settled: Tuple[JournalOrder, ...] = ()
    foreign: Tuple[JournalOrder, ...] = ()
    #: Unsettled intents left alone: still in flight in a live process (not this one's, not stale).
    in_flight: Tuple[str, ...] = ()
    trades: int = 0

    def __bool__(self) -> bool:
        return bool(self.settled or self.foreign)


class JournalStore(Protocol):
    """The storage of a journal. Every method commits before it returns, or raises.

    ``time_left`` is what remains of the calling call's deadline, in seconds:
    a store waits no longer (SQLite's busy timeout, PostgreSQL's statement
    timeout). Writes are idempotent by the store's constraints: an intent id,
    an exchange id, a fill (exchange id and executed volume) and a trade id
    are each recorded once, however many writers race.
    """

    url: str

    def add_intents(self, intents: Sequence[Intent], time_left: float) -> None: ...

    def settle(self, outcomes: Sequence[Outcome], time_left: float) -> None: ...

    def observe(self, observed: Sequence[Observed], time_left: float) -> None: ...

    def add_foreign(self, orders: Sequence[JournalOrder], time_left: float) -> None: ...

    def add_trades(self, trades: Sequence[JournalTrade], time_left: float) -> int: ...

    def delete_requested(self, exchange_id: int, at: str, time_left: float) -> None: ...

    def snapshot(self, time_left: float) -> List[JournalOrder]:
        """In one read: every order with an exchange id, and every unsettled intent."""
        ...

    def orders(
        self,
        *,
        state: Optional[str] = None,
        exchange_id: Optional[int] = None,
        since: Optional[str] = None,
        time_left: float = 30.0,
    ) -> List[JournalOrder]: ...

    def trades(self, *, since: Optional[str] = None, time_left: float = 30.0) -> List[JournalTrade]: ...

    def reported(self, stream: str, time_left: float) -> Dict[str, str]: ...

    def mark_reported(self, stream: str, items: Mapping[str, str], time_left: float) -> None: ...

    def close(self) -> None: ...


# -- matching a listing against the journal ------------------------------------------


def _same(a: Any, b: Any) -> bool:
    try:
        return canonical(a) == canonical(b)
    except ValueError:
        return False


def _listing_matches(listed: Order, sent: Mapping[str, Any]) -> bool:
    if listed.get("direction") != sent.get("side"):
        return False
    if not (_same(listed.get("price"), sent.get("price")) and _same(listed.get("volume"), sent.get("volume"))):
        return False
    for key in ("date", "start_time", "end_time", "duration"):
        if listed.get(key) is not None and listed.get(key) != sent.get(key):
            return False
    if listed.get("tz_offset_hours") is not None and listed.get("tz_offset_hours") != sent.get("tz_offset_hours", 0):
        return False
    state = str(sent.get("state") or "displayed").lower()
    shown = listed.get("state")
    return not (isinstance(shown, str) and shown.lower() in ("displayed", "hidden") and shown.lower() != state)


def _distance(listed: Order, sent_at: str) -> float:
    """How far the exchange's creation stamp is from the time we sent; inf when it cannot be."""
    created, sent = parse_time(listed.get("created_at")), parse_time(sent_at)
    if created is None or sent is None:
        return 0.0
    gap = (created - sent).total_seconds()
    return abs(gap) if gap >= -CLOCK_TOLERANCE else math.inf


def exchange_id_of(order: Mapping[str, Any]) -> Optional[int]:
    """The numeric id of a listed or created order (``31``, ``"31"``, ``"ord_31"``)."""
    return order_number_or_none(order.get("order_id"))


def match_listing(
    listing: Sequence[Order],
    known: Sequence[JournalOrder],
    *,
    settleable: Callable[[JournalOrder], bool],
    now: str,
) -> Tuple[List[Outcome], List[Order], List[str]]:
    """Settle unsettled intents against the exchange's listing.

    Returns the outcomes (created with the id of the listed order matched,
    or not placed), the listed orders that are foreign (unknown to the
    journal, matching no unsettled intent), and the intents left in flight.
    Each listed order settles at most one intent: among identical orders the
    one stamped closest to the time the intent was sent.
    """
    known_ids = {order.exchange_id for order in known if order.exchange_id is not None}
    free = [order for order in listing if exchange_id_of(order) not in known_ids and exchange_id_of(order) is not None]
    unsettled = sorted((order for order in known if not order.settled), key=lambda order: order.sent_at)
    taken: Set[int] = set()
    outcomes: List[Outcome] = []
    in_flight: List[str] = []
    reserved: Set[int] = set()
    for intent in unsettled:
        candidates = [
            (distance, exchange_id_of(listed) or 0)
            for listed in free
            if exchange_id_of(listed) not in taken
            and _listing_matches(listed, intent.order)
            and (distance := _distance(listed, intent.sent_at)) < math.inf
        ]
        candidates.sort()
        if not settleable(intent):
            in_flight.append(intent.intent_id)
            reserved.update(number for _, number in candidates)  # may be its order: not foreign yet
            continue
        if candidates:
            number = candidates[0][1]
            taken.add(number)
            outcomes.append(
                Outcome(
                    intent.intent_id,
                    CREATED,
                    now,
                    exchange_id=number,
                    reason="settled by reconcile",
                    authoritative=False,
                )
            )
        else:
            reason = "settled by reconcile: no such order in the exchange's listing"
            outcomes.append(Outcome(intent.intent_id, NOT_PLACED, now, reason=reason, authoritative=False))
    foreign = [listed for listed in free if exchange_id_of(listed) not in taken | reserved]
    return outcomes, foreign, in_flight


def observed_state(listed: Order) -> str:
    """The journal's state of an order as a listing shows it."""
    fields: Dict[str, Any] = dict(listed)
    for key in ("state", "status"):
        value = fields.get(key)
        if isinstance(value, str):
            word = value.strip().lower()
            if word in ("expired",):
                return EXPIRED
            if word in ("deleted", "cancelled", "canceled"):
                return DELETED
            if word == "filled":
                return FILLED
    remaining = fields.get("remaining_volume")
    try:
        if remaining is not None and Decimal(str(remaining)) <= 0:
            return FILLED
    except InvalidOperation:
        pass
    return CREATED


def observe_listing(listing: Sequence[Order], now: str) -> List[Observed]:
    """What a listing says of each order: executed volume and state, stamped by the exchange."""
    observed = []
    for listed in listing:
        number = exchange_id_of(listed)
        if number is None:
            continue
        try:
            executed = canonical(listed.get("executed_volume") or 0)
        except ValueError:
            continue
        stamp = listed.get("updated_at")
        observed.append(Observed(number, executed, observed_state(listed), stamp if isinstance(stamp, str) else now))
    return observed


def foreign_record(listed: Order, now: str) -> JournalOrder:
    """A listed order the journal did not know, recorded as foreign."""
    number = exchange_id_of(listed) or 0
    sent = {key: listed.get(key) for key in ("date", "start_time", "end_time", "duration", "tz_offset_hours")}
    sent.update(side=listed.get("direction"), price=listed.get("price"), volume=listed.get("volume"))
    start, end = delivery_times(sent)
    stamp = listed.get("created_at")
    return JournalOrder(
        intent_id=foreign_uuid(number),
        exchange_id=number,
        origin="foreign",
        side=str(listed.get("direction") or ""),
        price=Decimal(canonical(listed.get("price") or 0)),
        volume=Decimal(canonical(listed.get("volume") or 0)),
        contract=str(listed.get("contract") or contract_of(sent)),
        delivery_start=start,
        delivery_end=end,
        state=FOREIGN,
        executed_volume=Decimal(canonical(listed.get("executed_volume") or 0)),
        sent_at=stamp if isinstance(stamp, str) else now,
        writer="",
        reason="held by the exchange, unknown to the journal (placed by another tool)",
        order=sent,
    )


def trade_records(trades: Iterable[Trade], traders: Set[str]) -> List[JournalTrade]:
    """The account's trades (one of ``traders`` buys or sells), one record per side that is ours."""
    records = []
    for trade in trades:
        fields: Dict[str, Any] = dict(trade)
        key: Any = _trade_key(trade)
        trade_id = fields.get("trade_id")
        name = str(trade_id) if trade_id is not None else "|".join(str(part) for part in key)
        for side, who, order_key in (("buy", "buyer", "buy_order_id"), ("sell", "seller", "sell_order_id")):
            if fields.get(who) not in traders:
                continue
            try:
                price, volume = Decimal(canonical(fields.get("price"))), Decimal(canonical(fields.get("volume")))
            except ValueError:
                continue
            stamp = fields.get("timestamp") or fields.get("execution_time") or ""
            records.append(
                JournalTrade(
                    trade_id=name,
                    side=side,
                    exchange_id=order_number_or_none(fields.get(order_key)),
                    contract=str(fields.get("contract") or ""),
                    price=price,
                    volume=volume,
                    at=str(stamp),
                    buyer=str(fields.get("buyer") or ""),
                    seller=str(fields.get("seller") or ""),
                )
            )
    return records


def traders_of(listing: Iterable[Order]) -> Set[str]:
    """The caller's trader names, from its own orders."""
    names = set()
    for listed in listing:
        name: Any = listed.get("trader")
        if isinstance(name, str) and name:
            names.add(name)
    return names


# -- the flows: what the clients run ------------------------------------------------------


def _reason(error: GameAPIError) -> str:
    return str(error)[:500]


class JournalFlows:
    """A client's journal: the store, this process's writer name, and the flows both clients run.

    ``exchange_now`` is the exchange's time (the session's estimate), ``clock`` the
    monotonic clock of deadlines, ``random`` the session's randomness (intent
    ids), ``timeout`` the call's deadline. ``writer`` names this process in
    the journal (default ``"default"``): on restart under the same name,
    its intents left in flight are its own and settled at once; another
    writer's are settled once older than ``stale_after`` seconds.
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
        writer: str = "default",
    ) -> None:
        self.store = store
        self._exchange_now = exchange_now
        self._wall_clock = wall_clock
        self.clock = clock
        self.random = random
        self.timeout = timeout
        self.writer = writer
        self.stale_after = 2 * timeout + 2 * CLOCK_TOLERANCE
        #: This process's intents whose answer has not come yet.
        self.in_flight: Set[str] = set()
        self.traders: Set[str] = set()
        self._last: Optional[dt.datetime] = None

    def _now(self) -> dt.datetime:
        """The exchange's time (the session's estimate); the local clock before any answer told it."""
        moment = self._exchange_now()
        if moment is None:
            moment = dt.datetime.fromtimestamp(self._wall_clock(), dt.timezone.utc)
        return moment

    def now(self) -> str:
        """The exchange's time as the journal writes it; never earlier than the last stamp of this process.

        The estimate of the exchange's clock moves as answers come: a stamp
        that went back would put this process's records out of order.
        """
        moment = self._now()
        if self._last is not None and moment <= self._last:
            moment = self._last + dt.timedelta(microseconds=1)
        self._last = moment
        return _iso(moment, "microseconds")

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

    # -- write-ahead: around an order call ---------------------------------------------------

    def _intents(self, orders: Sequence[Mapping[str, Any]]) -> List[Intent]:
        now = self.now()
        return [Intent(intent_uuid(self.random), order, now, self.writer) for order in orders]

    def create(self, run: Runner, call: Call[Order]) -> Flow[Order]:
        """One order: commit its intent, send (``run(call, deadline)``), write the outcome."""
        deadline = self._deadline()
        (intent,) = self._intents(sent_orders(call))
        yield from self._step(deadline, "commit the order's intent", self.store.add_intents, [intent])
        self.in_flight.add(intent.intent_id)
        try:
            try:
                answer = yield from run(call, deadline)
            except GameAPIError as error:
                yield from self._settle_quietly([self._failed(intent.intent_id, error)], deadline)
                raise
            number = exchange_id_of(answer)
            outcome = Outcome(
                intent.intent_id,
                CREATED if number is not None else UNKNOWN,
                self.now(),
                exchange_id=number,
                executed_volume=_executed(answer),
            )
            yield from self._settle_quietly([outcome], deadline)
            return cast(Order, answer)
        finally:
            self.in_flight.discard(intent.intent_id)

    def create_bulk(self, run: Runner, call: Call[BulkResult]) -> Flow[Any]:
        """One part of a bulk: commit every order's intent, send, write each outcome by index.

        Returns the part's ``BulkResult`` or the ``GameAPIError`` it met, a
        ``JournalError`` included (a bulk's parts return their error rather
        than raise it): ``run`` is ``Session.outcome``.
        """
        deadline = self._deadline()
        intents = self._intents(sent_orders(call))
        try:
            yield from self._step(deadline, "commit the orders' intents", self.store.add_intents, intents)
        except JournalError as error:
            return error
        ids = [intent.intent_id for intent in intents]
        self.in_flight.update(ids)
        try:
            result = yield from run(call, deadline)
            if isinstance(result, GameAPIError):
                outcomes = [self._failed(one, result) for one in ids]
            else:
                outcomes = self._bulk_outcomes(ids, result)
            yield from self._settle_quietly(outcomes, deadline)
            return result
        finally:
            self.in_flight.difference_update(ids)

    def _bulk_outcomes(self, ids: Sequence[str], result: BulkResult) -> List[Outcome]:
        now = self.now()
        outcomes: Dict[int, Outcome] = {}
        for entry in result.get("created", []):
            index, answer = entry.get("index"), entry.get("result")
            if isinstance(index, int) and 0 <= index < len(ids) and isinstance(answer, dict):
                number = exchange_id_of(answer)
                outcomes[index] = Outcome(
                    ids[index],
                    CREATED if number is not None else UNKNOWN,
                    now,
                    exchange_id=number,
                    executed_volume=_executed(answer),
                )
        for failure in result.get("failed", []):
            index = failure.get("index")
            if isinstance(index, int) and 0 <= index < len(ids):
                outcomes[index] = Outcome(ids[index], REFUSED, now, reason=str(failure.get("error", ""))[:500])
        return [outcomes.get(index, Outcome(one, UNKNOWN, now)) for index, one in enumerate(ids)]

    def _failed(self, intent_id: str, error: GameAPIError) -> Outcome:
        now = self.now()
        if isinstance(error, OutcomeUnknownError):
            return Outcome(intent_id, UNKNOWN, now, reason=_reason(error))
        if isinstance(error, NetworkError):
            # The flow names a failure that may have reached the exchange
            # OutcomeUnknown; a plain network error sent nothing.
            return Outcome(intent_id, NOT_PLACED, now, reason=_reason(error))
        if error.status_code is not None and 400 <= error.status_code < 500:
            return Outcome(intent_id, REFUSED, now, reason=_reason(error))
        return Outcome(intent_id, UNKNOWN, now, reason=_reason(error))

    def _settle_quietly(self, outcomes: Sequence[Outcome], deadline: float) -> Flow[None]:
        """Write outcomes; a failure leaves the intents for ``reconcile`` (the order itself stands)."""
        try:
            yield from self._step(deadline, "write the outcome", self.store.settle, outcomes)
        except JournalError as error:
            logger.warning("%s; reconcile() will settle the intent", error)

    def delete(self, run: Runner, call: Call[DeleteResult], order_id: Any) -> Flow[DeleteResult]:
        """A deletion: its request committed first, its outcome after (deleted, or gone when 404)."""
        number = order_number_or_none(order_id)
        deadline = self._deadline()
        if number is None:
            return cast(DeleteResult, (yield from run(call, deadline)))
        yield from self._step(deadline, "commit the deletion's intent", self.store.delete_requested, number, self.now())
        try:
            answer = yield from run(call, deadline)
        except NotFoundError:
            yield from self._observe_quietly([Observed(number, "", GONE, self.now())], deadline)
            raise
        yield from self._observe_quietly([Observed(number, "", DELETED, self.now())], deadline)
        return cast(DeleteResult, answer)

    def _observe_quietly(self, observed: Sequence[Observed], deadline: float) -> Flow[None]:
        try:
            yield from self._step(deadline, "record the orders' states", self.store.observe, observed)
        except JournalError as error:
            logger.warning("%s", error)

    # -- fills and trades ---------------------------------------------------------------------

    def observe_orders(self, listing: Sequence[Order]) -> Flow[None]:
        """Record what a listing of our orders shows: executed volumes (fills) and states."""
        self.traders |= traders_of(listing)
        observed = observe_listing(listing, self.now())
        if observed:
            yield from self._step(self._deadline(), "record fills", self.store.observe, observed)

    def observe_trades(self, trades: Sequence[Trade]) -> Flow[int]:
        """Record the account's trades among ``trades``; how many were new to the journal."""
        records = trade_records(trades, self.traders)
        if not records:
            return 0
        return (yield from self._step(self._deadline(), "record trades", self.store.add_trades, records))

    # -- reconciliation -----------------------------------------------------------------------

    def settleable(self, intent: JournalOrder) -> bool:
        """Whether ``reconcile`` may settle this intent now (no live call is still waiting for its answer)."""
        if intent.state == UNKNOWN:
            return True
        if intent.intent_id in self.in_flight:
            return False
        if intent.writer == self.writer:
            return True  # ours, and no call of ours waits for it: a run before this one died
        sent = parse_time(intent.sent_at)
        return sent is None or (self._now() - sent).total_seconds() > self.stale_after

    def reconcile(self, run: Runner) -> Flow[Reconciled]:
        """List our orders, settle unsettled intents, record foreigners, fills and trades."""
        listing = yield from run(get_orders(), self._deadline())
        self.traders |= traders_of(listing)
        deadline = self._deadline()
        known = yield from self._step(deadline, "read the journal", self.store.snapshot)
        now = self.now()
        outcomes, foreign, in_flight = match_listing(listing, known, settleable=self.settleable, now=now)
        if outcomes:
            yield from self._step(deadline, "settle intents", self.store.settle, outcomes)
        foreigners = [foreign_record(listed, now) for listed in foreign]
        if foreigners:
            yield from self._step(deadline, "record foreign orders", self.store.add_foreign, foreigners)
        observed = observe_listing(listing, now)
        if observed:
            yield from self._step(deadline, "record fills", self.store.observe, observed)
        new_trades = 0
        if self.traders:
            trades = yield from run(get_trades(), self._deadline())
            new_trades = yield from self.observe_trades(trades)
        settled_ids = {outcome.intent_id for outcome in outcomes}
        settled: List[JournalOrder] = []
        if settled_ids:
            every = yield from self._step(self._deadline(), "read the journal", _orders_of, self.store)
            settled = [order for order in every if order.intent_id in settled_ids]
        return Reconciled(tuple(settled), tuple(foreigners), tuple(in_flight), new_trades)

    # -- reading the journal back ----------------------------------------------------------------

    def read_orders(
        self, *, state: Optional[str] = None, exchange_id: Optional[int] = None, since: Optional[str] = None
    ) -> Flow[List[JournalOrder]]:
        store = self.store

        def read(time_left: float) -> List[JournalOrder]:
            return store.orders(state=state, exchange_id=exchange_id, since=since, time_left=time_left)

        return (yield from self._step(self._deadline(), "read the journal", read))

    def read_trades(self, *, since: Optional[str] = None) -> Flow[List[JournalTrade]]:
        store = self.store

        def read(time_left: float) -> List[JournalTrade]:
            return store.trades(since=since, time_left=time_left)

        return (yield from self._step(self._deadline(), "read the journal", read))

    # -- the watchers resume --------------------------------------------------------------------

    def resume(self, stream: str, watch: Watch[Any]) -> Flow[bool]:
        """Give ``watch`` what was reported before the restart; False on a journal that never watched it."""
        reported = yield from self._step(self._deadline(), "read what was reported", self.store.reported, stream)
        if _STARTED not in reported:
            return False
        if isinstance(watch, OrderWatch):
            resume_orders(watch.tracker, reported)
        elif isinstance(watch, TradeWatch):
            resume_trades(watch.tracker, reported)
        return True

    def polled(self, stream: str, watch: Watch[Any], value: Any, *, first: bool, resumed: bool) -> Flow[bool]:
        """Record what a watch's poll listed (fills, trades), before its events are given.

        On the first listing of a journal that never watched this stream,
        what the watch takes as its baseline is marked reported, so that a
        restart does not give it as news. Returns False for a trade watch's
        poll of the caller's orders (its trader names), True otherwise.
        """
        if isinstance(watch, OrderWatch):
            yield from self.observe_orders(value)
            if first and not resumed:
                marks = started_mark()
                for listed in value:  # the baseline: given (or not) now, never again after a restart
                    marks.update(order_mark(listed, ended=False))
                yield from self.reported(stream, marks)
                return True
        elif isinstance(watch, TradeWatch):
            if watch.call is not watch._trades:  # the trader names, before the trades
                self.traders |= traders_of(value)
                watch.tracker.learn_traders(value)
                return False
            yield from self.observe_trades(value)
            if first and not resumed:
                marks = started_mark()
                for trade in value:
                    marks.update(trade_event_mark(trade))
                yield from self.reported(stream, marks)
                return True
        if first and not resumed:
            yield from self.reported(stream, started_mark())
        return True

    def event_reported(self, stream: str, event: Any) -> Flow[None]:
        """Mark one event reported (once the caller took it), so that a restart does not give it again."""
        if stream == "orders":
            marks = order_event_mark(event)
        else:
            marks = trade_event_mark(event)
        yield from self.reported(stream, marks)

    def reported(self, stream: str, items: Mapping[str, str]) -> Flow[None]:
        """Mark events as reported, so that a restart does not report them again."""
        yield from self._step(self._deadline(), "mark events reported", self.store.mark_reported, stream, items)


#: The key that says a stream was watched before (so a restart resumes rather than starts).
_STARTED = "*started*"


def order_mark(order: Order, *, ended: bool) -> Dict[str, str]:
    """The reported state of an order as listed: ``executed|ended`` by the order's key."""
    try:
        executed = canonical(order.get("executed_volume") or 0)
    except ValueError:
        executed = "0"
    return {str(_order_key(order)): f"{executed}|{'1' if ended else '0'}"}


def order_event_mark(event: Any) -> Dict[str, str]:
    """The reported state an order event leaves: ``executed|ended`` by the order's key."""
    key = _order_key(event.order)
    ended = "1" if event.kind == "gone" else "0"
    try:
        executed = "0" if event.kind == "placed" else canonical(event.order.get("executed_volume") or 0)
    except ValueError:
        executed = "0"
    return {_STARTED: "1", str(key): f"{executed}|{ended}"}


def trade_event_mark(trade: Trade) -> Dict[str, str]:
    return {_STARTED: "1", repr(_trade_key(trade)): "1"}


def started_mark() -> Dict[str, str]:
    return {_STARTED: "1"}


def resume_orders(tracker: OrderTracker, reported: Mapping[str, str]) -> None:
    """Seed an order tracker with the orders reported before: the first listing gives only what changed."""
    for key, value in reported.items():
        if key == _STARTED:
            continue
        executed_text, _, ended = value.partition("|")
        ident: Any = int(key) if key.isdigit() else key
        executed = Decimal(executed_text or "0")
        if ended == "1":
            tracker._left.put(ident, executed)
        else:
            tracker._listed[ident] = {"order_id": ident}
            tracker._counted[ident] = executed
    tracker._started = True  # what was listed before the restart is no baseline: changes since are news


def resume_trades(tracker: TradeTracker, reported: Mapping[str, str]) -> None:
    """Seed a trade tracker with the trades reported before; later ones are news."""
    import ast

    for key in reported:
        if key == _STARTED:
            continue
        try:
            tracker._left.put(ast.literal_eval(key))
        except (ValueError, SyntaxError):
            continue
    tracker._started = True


def sent_orders(call: Call[Any]) -> List[Dict[str, Any]]:
    """The orders a create call carries, as they go on the wire."""
    request = call.request
    body = json.loads(request.body or b"{}") if request is not None else {}
    if isinstance(body, dict) and isinstance(body.get("orders"), list):
        return [order for order in body["orders"] if isinstance(order, dict)]
    return [body] if isinstance(body, dict) else []


def _executed(answer: Mapping[str, Any]) -> Optional[str]:
    try:
        return canonical(answer.get("executed_volume") or 0)
    except ValueError:
        return None


def _orders_of(store: JournalStore, time_left: float) -> List[JournalOrder]:
    return store.orders(time_left=time_left)


def _guarded(function: Callable[..., T], *args: Any) -> Any:
    """``function(*args, time_left)``; a failure returned as ``Unanswered`` (the flow raises JournalError)."""
    try:
        return function(*args)
    except Exception as error:  # a store failure of any kind
        return Unanswered(f"{type(error).__name__}: {error}")
