"""The journal's records: its states, the values it writes and reads, and the storage interface.

GAME has no client order id, so a bot that must survive its own crash
writes down what it is about to send before it sends it (the *intent*, under
a UUID of ours), and the outcome once the answer came. This module holds
what the journal writes and reads (``JournalOrder``, ``JournalTrade``,
``Intent``, ``Outcome``, ``Observed``, ...), the decimal and time forms it
keeps, and ``JournalStore``, the Protocol a store implements
(``gameproto_journal`` holds SQLite and PostgreSQL). Pure: no I/O.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Protocol, Sequence, Tuple

from ._arguments import order_number_or_none
from ._calls import Call
from ._contract import Contract
from ._errors import GameAPIError, JournalError

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
    "OUTCOME_DURABLE_WITHIN",
    "STATES",
    "UNSETTLED",
    "SCHEMA_VERSION",
    "canonical",
    "intent_uuid",
    "foreign_uuid",
    "parse_time",
    "iso",
    "delivery_times",
    "contract_of",
    "contract_and_times",
    "normalise_base_url",
    "mark_is_open",
    "default_writer",
    "check_exchange",
    "exchange_id_argument",
    "sent_orders",
]

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


def canonical(value: Any) -> str:
    """A number as the decimal text the journal keeps (exact, no exponent, no trailing zeros)."""
    kind = type(value)
    if kind is int:  # the usual prices and volumes, on an order's write path: exact as they are
        return str(value)
    if kind is float and value.is_integer() and 0 < abs(value) < 1e15:  # exact in the float; -0.0 below
        return str(int(value))
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


def intent_uuid(random: Callable[[], float], now: Optional[float] = None) -> str:
    """A UUID made from ``random`` (the session's, so a test's seed makes it repeatable).

    Version 4 (all random) without ``now``; with ``now`` (seconds since the
    epoch), version 7 (RFC 9562): its first 48 bits are the milliseconds, the
    rest random, so that the journal's indexes of intents grow at their end
    and an intent's commit writes fewer pages.
    """
    bits = 0
    for _ in range(4):
        bits = (bits << 32) | (int(random() * 2**32) & 0xFFFFFFFF)
    version = 4
    if now is not None:
        version = 7
        bits = ((int(now * 1000) & 0xFFFFFFFFFFFF) << 80) | (bits & ((1 << 80) - 1))
    bits = (bits & ~(0xF << 76)) | (version << 76)  # the version
    bits = (bits & ~(0x3 << 62)) | (0x2 << 62)  # the RFC's variant
    text = f"{bits:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def foreign_uuid(exchange_id: int) -> str:
    """The intent id a foreign order gets: the same in every process, so two recorders make one row."""
    import uuid  # here, not at the top: on Python 3.8 it loads platform, subprocess and select

    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"gameproto-journal:foreign:{exchange_id}"))


def iso(moment: dt.datetime, timespec: str = "milliseconds") -> str:
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


def _contract(order: Mapping[str, Any]) -> Optional[Contract]:
    try:
        return Contract.from_order(order, check_offset=False)  # the offset as the exchange takes it
    except (ValueError, TypeError):
        return None


def delivery_times(order: Mapping[str, Any]) -> Tuple[str, str]:
    """The delivery start and end of an order as sent, ISO 8601 in UTC (its ``Contract``); "" when it has none."""
    contract = _contract(order)
    return ("", "") if contract is None else (iso(contract.start), iso(contract.end))


#: The fields ``Contract.from_order`` reads.
_CONTRACT_FIELDS = ("date", "start_time", "duration", "tz_offset_hours", "contract")
#: ``contract_and_times`` by those fields (each with its type: ``1`` and ``True`` are two keys): a bot
#: trades a few contracts, and reading one is most of an intent's own work. Bounded: emptied when full.
_CONTRACTS: Dict[Tuple[Any, ...], Tuple[str, str, str]] = {}
_CONTRACTS_KEPT = 4096


def contract_and_times(order: Mapping[str, Any]) -> Tuple[str, str, str]:
    """``contract_of`` and ``delivery_times`` of an order as sent, its ``Contract`` read once (an intent's write)."""
    key = tuple((type(value), value) for value in map(order.get, _CONTRACT_FIELDS))
    try:
        found = _CONTRACTS.get(key)
    except TypeError:  # a field that cannot be a key (a list): read every time
        return _contract_and_times(order)
    if found is None:
        found = _contract_and_times(order)
        if len(_CONTRACTS) >= _CONTRACTS_KEPT:
            _CONTRACTS.clear()
        _CONTRACTS[key] = found
    return found


def _contract_and_times(order: Mapping[str, Any]) -> Tuple[str, str, str]:
    contract = _contract(order)
    return ("", "", "") if contract is None else (contract.id, iso(contract.start), iso(contract.end))


def contract_of(order: Mapping[str, Any]) -> str:
    """The contract id of an order as sent, as the exchange writes it (``2025-01-15T14:00:00Z/PT15M``)."""
    contract = _contract(order)
    return "" if contract is None else contract.id


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
    #: The end of the call's deadline by the exchange's clock ("" for a foreign order).
    deadline: str = ""
    #: The exchange's ``created_at`` of the order, as it stamped it ("" until an answer or a listing said).
    created_at: str = ""

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
    #: When the call gives up, by the exchange's clock: the request may land until then (and a grace after).
    deadline: str = ""


@dataclass(frozen=True)
class Outcome:
    """What the answer said of one intent: ``state`` CREATED (``exchange_id``), REFUSED, UNKNOWN or NOT_PLACED."""

    intent_id: str
    state: str
    at: str
    exchange_id: Optional[int] = None
    reason: str = ""
    executed_volume: Optional[str] = None
    #: The exchange's ``created_at`` of the order, when its answer or listing gave one.
    created_at: str = ""
    #: The exchange's own answer (True) may overwrite a reconciliation's "not placed"; a reconciliation's may not.
    authoritative: bool = True


@dataclass(frozen=True)
class Observed:
    """An order as a listing showed it: its executed volume and the state the journal gives it."""

    exchange_id: int
    executed_volume: str
    state: str
    at: str
    created_at: str = ""


@dataclass(frozen=True)
class Reconciled:
    """What ``reconcile()`` did: the intents it settled and the foreign orders it recorded."""

    settled: Tuple[JournalOrder, ...] = ()
    foreign: Tuple[JournalOrder, ...] = ()
    #: Unsettled intents left alone: their window is still open (the request may still land).
    in_flight: Tuple[str, ...] = ()
    trades: int = 0

    def __bool__(self) -> bool:
        return bool(self.settled or self.foreign)


@dataclass(frozen=True)
class ExchangeIdentity:
    """The exchange a journal belongs to: its base URL (normalised) and, where ``/status`` names one, its instance.

    A token is no part of it: tokens rotate, the exchange stays.
    """

    base_url: str
    instance: str = ""
    #: The account's trader names learnt so far (from its listings): a restarted bot reads its trades with them.
    traders: Tuple[str, ...] = ()


def normalise_base_url(url: str) -> str:
    """``url`` as a journal records it: scheme and host in lower case, the port always written, no ``/api/v1``."""
    from urllib.parse import urlsplit

    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is None:
        port = {"http": 80, "https": 443}.get(scheme, 0)
    path = parts.path.rstrip("/")
    if path.endswith("/api/v1"):
        path = path[: -len("/api/v1")]
    return f"{scheme}://{host}:{port}{path}"


#: The version of the journal's tables this code writes. A journal without one
#: was written by the previous release (version 1) and is migrated once on open.
SCHEMA_VERSION = 2

#: Seconds an order's outcome may stay in memory only, past the answer: a store that takes outcomes
#: ``settle_soon`` commits them with its next write or a group commit of its own within this bound, and on
#: close. A process killed in between loses at most outcomes, which ``reconcile`` recovers from the listing.
OUTCOME_DURABLE_WITHIN = 1.0


class JournalStore(Protocol):
    """The storage of a journal. Every method commits before it returns, or raises.

    A store may also take an order's outcome to commit later (``SettlesSoon``):
    the stores of ``gameproto_journal`` do; one that does not commits each
    outcome as the answer comes (``settle``).

    ``time_left`` is what remains of the calling call's deadline, in seconds:
    a store returns by then, whatever its database does (SQLite's busy
    timeout; for PostgreSQL a worker abandoned at the deadline, its
    connection discarded). Writes are idempotent by the store's constraints:
    an intent id, an exchange id, a fill (exchange id and executed volume)
    and a trade id are each recorded once, however many writers race. A
    store only persists: every move of an order's state is decided by the
    core (``gameproto._journal_life``), which the store asks.

    Reads cost what they return: each is answered from an index, and never
    takes a write lock.
    """

    url: str

    def bind(self, exchange: ExchangeIdentity, time_left: float) -> ExchangeIdentity:
        """Record the fields of ``exchange`` the journal does not hold yet; return what it holds after."""
        ...

    def add_intents(self, intents: Sequence[Intent], time_left: float) -> None: ...

    def settle(self, outcomes: Sequence[Outcome], time_left: float) -> None: ...

    def observe(self, observed: Sequence[Observed], time_left: float) -> None: ...

    def add_foreign(self, orders: Sequence[JournalOrder], time_left: float) -> None: ...

    def add_trades(self, trades: Sequence[JournalTrade], time_left: float) -> int: ...

    def delete_requested(self, exchange_id: int, at: str, time_left: float) -> None: ...

    def unsettled(self, time_left: float) -> List[JournalOrder]:
        """Every intent without an outcome (``UNSETTLED``), without changes or fills."""
        ...

    def in_states(self, states: Sequence[str], time_left: float) -> List[JournalOrder]:
        """Every order with an exchange id in one of ``states``, without changes or fills."""
        ...

    def known(self, exchange_ids: Sequence[int], time_left: float) -> List[JournalOrder]:
        """The orders of the journal among ``exchange_ids``, without changes or fills."""
        ...

    def orders(
        self,
        *,
        state: Optional[str] = None,
        exchange_id: Optional[int] = None,
        since: Optional[str] = None,
        intent_ids: Optional[Sequence[str]] = None,
        time_left: float = 30.0,
    ) -> List[JournalOrder]:
        """The orders (with their changes and fills) in ``state``, of ``exchange_id``, sent ``since``, or by id."""
        ...

    def trades(self, *, since: Optional[str] = None, time_left: float = 30.0) -> List[JournalTrade]: ...

    def iter_orders(self, *, page: int = 1000, time_left: float = 30.0) -> Iterator[JournalOrder]:
        """Every order, oldest sent first, read a page at a time (each page its own short read)."""
        ...

    def iter_trades(
        self, *, orphans: bool = False, page: int = 1000, time_left: float = 30.0
    ) -> Iterator[JournalTrade]:
        """Every trade, oldest first, a page at a time; with ``orphans`` only those whose order the journal lacks."""
        ...

    def trades_of(self, exchange_ids: Sequence[int], time_left: float) -> List[JournalTrade]:
        """The trades of the orders ``exchange_ids``."""
        ...

    def reported(self, stream: str, keys: Sequence[str], time_left: float) -> Dict[str, str]:
        """The marks of ``stream`` for ``keys``, its start mark and its open marks (``mark_is_open``)."""
        ...

    def mark_reported(self, stream: str, items: Mapping[str, str], time_left: float) -> None: ...

    def close(self) -> None: ...


class SettlesSoon(Protocol):
    """A store that takes outcomes to commit later: visible at once to its reads, durable soon.

    ``settle_soon`` returns at once, whatever the database does (it takes no
    database lock): every read of the store answers with the outcomes it
    holds (it commits them first), every write carries them in its own
    transaction, and a group commit of the store's own writes them within
    ``OUTCOME_DURABLE_WITHIN`` of the first, and on ``flush`` or close.
    """

    def settle_soon(self, outcomes: Sequence[Outcome]) -> None: ...

    def flush(self, time_left: float) -> None:
        """Commit the outcomes held now (nothing when none are held)."""
        ...


def mark_is_open(value: str) -> bool:
    """Whether a watch's mark is of an order still listed (read back at every resume, whatever the listing)."""
    return value.endswith("|0")


# -- helpers of the flows ------------------------------------------------------------------


def default_writer(random: Callable[[], float]) -> str:
    """A writer name of this process alone: two bots on one journal never take each other's intents for theirs."""
    return f"pid{os.getpid()}-{intent_uuid(random)[:8]}"


def check_exchange(held: ExchangeIdentity, wanted: ExchangeIdentity, url: str) -> None:
    """``JournalError`` when a journal that belongs to ``held`` is used against ``wanted``."""
    if held.base_url != wanted.base_url or (held.instance and wanted.instance and held.instance != wanted.instance):

        def name(identity: ExchangeIdentity) -> str:
            return identity.base_url + (f" (instance {identity.instance})" if identity.instance else "")

        raise JournalError(
            f"the journal {url} belongs to the exchange {name(held)}, not {name(wanted)}: its order ids would "
            "collide; start a new journal for this exchange (another file or database), or keep this one for "
            "the exchange it belongs to"
        )


def exchange_id_argument(value: Any) -> Optional[int]:
    """``orders(exchange_id=...)``: ``457``, ``"457"`` and ``"ord_457"`` alike; ``ValueError`` for what no order has."""
    if value is None:
        return None
    number = order_number_or_none(value)
    if number is None:
        raise ValueError(f"exchange_id must be an order id such as 457 or 'ord_457', got {value!r}")
    return number


def sent_orders(call: Call[Any]) -> List[Dict[str, Any]]:
    """The orders a create call carries, as they go on the wire."""
    request = call.request
    body = json.loads(request.body or b"{}") if request is not None else {}
    if isinstance(body, dict) and isinstance(body.get("orders"), list):
        return [order for order in body["orders"] if isinstance(order, dict)]
    return [body] if isinstance(body, dict) else []


def reason_of(error: GameAPIError) -> str:
    return str(error)[:500]


def executed_of(answer: Mapping[str, Any]) -> Optional[str]:
    try:
        return canonical(answer.get("executed_volume") or 0)
    except ValueError:
        return None
