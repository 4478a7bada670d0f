"""An order's life as the journal records it: which moves of its state are allowed, and what a listing says.

The stores only persist: before a write moves an order's state they ask
``settle_allowed``, ``observed_move`` or ``deleting_allowed`` here. What a
listed order's ``state``/``status`` words mean, and the window in which a
late request may still land, are the order life's (``gameproto._order_life``);
this module gives them the journal's names.

Reconciliation is decided here too (``match_listing``, ``ended_while_away``):
an intent is settled by what the exchange shows, and ``not_placed`` only
once its window closed; an order is adopted only if it was created within
its intent's window.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple

from . import _order_life as life
from ._arguments import order_number_or_none
from ._errors import GameAPIError, NetworkError, OutcomeUnknownError
from ._events import _trade_key
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
    UNKNOWN,
    JournalOrder,
    JournalTrade,
    Observed,
    Outcome,
    canonical,
    contract_of,
    delivery_times,
    executed_of,
    foreign_uuid,
    parse_time,
    reason_of,
)
from ._positions import trader_names
from ._reconcile import matches as matches_sent
from ._types import Order, Trade

__all__ = [
    "LIVE",
    "settle_allowed",
    "observed_move",
    "deleting_allowed",
    "observed_state",
    "observe_listing",
    "foreign_record",
    "trade_records",
    "traders_of",
    "exchange_id_of",
    "match_listing",
    "ended_while_away",
    "match_trades",
    "executed_by_order",
    "answered_outcome",
    "bulk_outcomes",
    "failed_outcome",
    "LIFE_STATE",
    "window_of",
]

#: The journal's states of an order the exchange may still hold (a listing or a trade may say more of it).
LIVE = (CREATED, FOREIGN, DELETING)

#: Each state the journal records, as the order life (``_order_life``) names it. The journal keeps
#: its own words (they are in every journal written so far, and in its exports); the life decides.
#: ``foreign`` is an order of another tool resting on the book (its origin, not a state of its life).
LIFE_STATE: Mapping[str, str] = {
    INTENT: life.INTENT,
    UNKNOWN: life.UNKNOWN,
    CREATED: life.RESTING,
    FOREIGN: life.RESTING,
    REFUSED: life.REJECTED,
    NOT_PLACED: life.NOT_PLACED,
    FILLED: life.FILLED,
    DELETING: life.DELETE_REQUESTED,
    DELETED: life.CANCELLED,
    EXPIRED: life.EXPIRED,
    GONE: life.GONE,
}
#: The journal's word for each state of the order life, as a listing or an answer shows an order.
_JOURNAL_STATE: Mapping[str, str] = {
    life.RESTING: CREATED,
    life.PARTLY_FILLED: CREATED,
    life.FILLED: FILLED,
    life.CANCELLED: DELETED,
    life.EXPIRED: EXPIRED,
    life.REJECTED: REFUSED,
    life.GONE: GONE,
    life.NOT_PLACED: NOT_PLACED,
    life.UNKNOWN: UNKNOWN,
    life.INTENT: INTENT,
    life.SENT: INTENT,
    life.DELETE_REQUESTED: DELETING,
}


# -- the moves of an order's state ---------------------------------------------------------


def _moves(current: str, wanted: str) -> bool:
    before, after = LIFE_STATE.get(current), LIFE_STATE.get(wanted)
    return before is not None and after is not None and before != after and life.can_move(before, after)


def settle_allowed(current: str, outcome: Outcome) -> bool:
    """Whether ``outcome`` may move an intent now in ``current``: only an unsettled one, by a move the life allows."""
    return current in (INTENT, UNKNOWN) and outcome.state != current and _moves(current, outcome.state)


def observed_move(current: str, wanted: str) -> Optional[str]:
    """The state an order in ``current`` takes when a listing (or a deletion's answer) says ``wanted``; None: stays.

    Only an order the exchange has shown moves so (an unsettled intent is
    settled, not observed), and only as the order life allows: a filled order
    stays filled, ``gone`` may still learn which end it was.
    """
    if current in (INTENT, UNKNOWN, REFUSED, NOT_PLACED):
        return None
    return wanted if _moves(current, wanted) else None


def deleting_allowed(current: str) -> bool:
    """Whether a deletion's request may mark an order in ``current`` ``delete_requested``."""
    return current in (CREATED, FOREIGN) and _moves(current, DELETING)


# -- what a listing says --------------------------------------------------------------------


def exchange_id_of(order: Mapping[str, Any]) -> Optional[int]:
    """The numeric id of a listed or created order (``31``, ``"31"``, ``"ord_31"``)."""
    return order_number_or_none(order.get("order_id"))


def observed_state(listed: Mapping[str, Any]) -> str:
    """The journal's state of an order as a listing (or a create answer) shows it: the order life's, in its words."""
    return _JOURNAL_STATE[life.order_state(listed)]


def _stamp(value: Any) -> str:
    return value if isinstance(value, str) and parse_time(value) is not None else ""


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
        stamp = _stamp(listed.get("updated_at")) or now
        created = _stamp(listed.get("created_at"))
        observed.append(Observed(number, executed, observed_state(listed), stamp, created))
    return observed


def foreign_record(listed: Order, now: str) -> JournalOrder:
    """A listed order the journal did not know, recorded as foreign."""
    number = exchange_id_of(listed) or 0
    sent = {key: listed.get(key) for key in ("date", "start_time", "end_time", "duration", "tz_offset_hours")}
    sent.update(side=listed.get("direction"), price=listed.get("price"), volume=listed.get("volume"))
    start, end = delivery_times(sent)
    created = _stamp(listed.get("created_at"))
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
        sent_at=created or now,
        writer="",
        reason="held by the exchange, unknown to the journal (placed by another tool)",
        order=sent,
        created_at=created,
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
    """The caller's trader names, from its own orders (read as the account reads them: ``trader_names``)."""
    return set(trader_names(listing))


# -- what an answer says ----------------------------------------------------------------------


def answered_outcome(intent_id: str, answer: Mapping[str, Any], now: str) -> Outcome:
    """What an order's create answer says: created (filled, when nothing remains) with its id and time."""
    number = exchange_id_of(answer)
    if number is None:
        return Outcome(intent_id, UNKNOWN, now, reason="the answer carried no order id")
    created = answer.get("created_at")
    state = observed_state(answer)
    return Outcome(
        intent_id,
        state if state in (CREATED, FILLED) else CREATED,
        now,
        exchange_id=number,
        executed_volume=executed_of(answer),
        created_at=created if isinstance(created, str) and parse_time(created) is not None else "",
    )


def bulk_outcomes(ids: Sequence[str], result: Mapping[str, Any], now: str) -> List[Outcome]:
    """Each order's outcome in a bulk's answer, by index; unknown for an index it does not name."""
    outcomes: Dict[int, Outcome] = {}
    for entry in result.get("created", []):
        index, answer = entry.get("index"), entry.get("result")
        if isinstance(index, int) and 0 <= index < len(ids) and isinstance(answer, dict):
            outcomes[index] = answered_outcome(ids[index], answer, now)
    for failure in result.get("failed", []):
        index = failure.get("index")
        if isinstance(index, int) and 0 <= index < len(ids):
            outcomes[index] = Outcome(ids[index], REFUSED, now, reason=str(failure.get("error", ""))[:500])
    return [outcomes.get(index, Outcome(one, UNKNOWN, now)) for index, one in enumerate(ids)]


def failed_outcome(intent_id: str, error: GameAPIError, now: str) -> Outcome:
    """What a call that failed says of its order: unknown, not placed (nothing sent) or refused."""
    if isinstance(error, OutcomeUnknownError):
        return Outcome(intent_id, UNKNOWN, now, reason=reason_of(error))
    if isinstance(error, NetworkError):
        # The flow names a failure that may have reached the exchange
        # OutcomeUnknown; a plain network error sent nothing.
        return Outcome(intent_id, NOT_PLACED, now, reason=reason_of(error))
    if error.status_code is not None and 400 <= error.status_code < 500:
        return Outcome(intent_id, REFUSED, now, reason=reason_of(error))
    return Outcome(intent_id, UNKNOWN, now, reason=reason_of(error))


# -- the late-request window ---------------------------------------------------------------


def window_of(intent: JournalOrder, *, grace: float) -> Optional[life.RequestWindow]:
    """The late-request window of ``intent`` (``_order_life``); its stamps are on the exchange's clock."""
    sent = parse_time(intent.sent_at)
    if sent is None:
        return None
    deadline = parse_time(intent.deadline) or sent
    return life.request_window(sent.timestamp(), max(deadline, sent).timestamp(), 0.0, grace=grace)


# -- reconciliation ----------------------------------------------------------------------------


def _candidates(
    intent: JournalOrder,
    free: Sequence[Order],
    taken: Set[int],
    span: Optional[life.RequestWindow],
    matches: Callable[[Order, Mapping[str, Any], Optional[life.RequestWindow]], bool],
) -> List[Tuple[float, int, str]]:
    """The listed orders that may be ``intent``'s, closest to its sending first: (distance, id, created_at)."""
    candidates: List[Tuple[float, int, str]] = []
    sent = parse_time(intent.sent_at)
    for listed in free:
        number = exchange_id_of(listed) or 0
        if number in taken or not matches(listed, intent.order, span):
            continue  # not its kind, or created outside the window its request could land in
        created = parse_time(listed.get("created_at"))
        distance = abs((created - sent).total_seconds()) if created is not None and sent is not None else 0.0
        candidates.append((distance, number, _stamp(listed.get("created_at"))))
    return sorted(candidates)


def match_listing(
    listing: Sequence[Order],
    known: Sequence[JournalOrder],
    *,
    window: Callable[[JournalOrder], Optional[life.RequestWindow]],
    mine: Callable[[JournalOrder], bool],
    waiting: Callable[[JournalOrder], bool],
    now: dt.datetime,
    stamp: str,
    matches: Callable[[Order, Mapping[str, Any], Optional[life.RequestWindow]], bool] = matches_sent,
) -> Tuple[List[Outcome], List[Order], List[str]]:
    """Settle unsettled intents against what the exchange shows.

    ``listing`` holds the orders the exchange shows that the journal does not
    know yet (listed, or named by a trade); ``known`` the unsettled intents.
    An intent is matched with a listed order of its kind created within its
    window (among several, the one stamped closest to its sending) and
    settled ``created``. Before the window closes only this process settles
    an intent (``mine``), and only so; an intent whose call still waits here
    (``waiting``) is never touched. Once the window closed, any process
    settles it: ``created`` on a match, else ``not_placed``. Returns the
    outcomes, the listed orders that are foreign (matching no intent whose
    window holds them), and the intents left in flight.
    """
    free = [order for order in listing if exchange_id_of(order) is not None]
    unsettled = sorted((order for order in known if not order.settled), key=lambda order: order.sent_at)
    taken: Set[int] = set()
    reserved: Set[int] = set()
    outcomes: List[Outcome] = []
    in_flight: List[str] = []
    for intent in unsettled:
        span = window(intent)
        candidates = _candidates(intent, free, taken, span, matches)
        closed = span is None or not span.is_open(now.timestamp())
        if waiting(intent) or not (closed or mine(intent)):
            in_flight.append(intent.intent_id)
            reserved.update(number for _, number, _ in candidates)  # may be its order: not foreign yet
            continue
        if candidates:
            _, number, created_at = candidates[0]
            taken.add(number)
            outcomes.append(
                Outcome(
                    intent.intent_id,
                    CREATED,
                    stamp,
                    exchange_id=number,
                    reason="settled by reconcile",
                    created_at=created_at,
                    authoritative=False,
                )
            )
        elif closed:
            reason = "settled by reconcile: the exchange shows no such order, and its window closed"
            outcomes.append(Outcome(intent.intent_id, NOT_PLACED, stamp, reason=reason, authoritative=False))
        else:
            in_flight.append(intent.intent_id)  # ours, its window open, nothing shown yet: it may still land
    foreign = [listed for listed in free if (exchange_id_of(listed) or 0) not in taken | reserved]
    return outcomes, foreign, in_flight


def _trade_fits(trade: JournalTrade, intent: JournalOrder, span: Optional[life.RequestWindow]) -> bool:
    """Whether ``trade`` may be of ``intent``'s order: its side and contract, a price it accepts, after sending."""
    if trade.side != intent.side or trade.contract != intent.contract:
        return False
    if (intent.side == "buy" and trade.price > intent.price) or (intent.side == "sell" and trade.price < intent.price):
        return False
    at = parse_time(trade.at)
    return at is None or span is None or at.timestamp() >= span.opens


def match_trades(
    outcomes: Sequence[Outcome],
    in_flight: Sequence[str],
    unsettled: Sequence[JournalOrder],
    trades: Sequence[JournalTrade],
    *,
    window: Callable[[JournalOrder], Optional[life.RequestWindow]],
    settles: Callable[[JournalOrder], bool],
    stamp: str,
) -> Tuple[List[Outcome], List[str]]:
    """Settle by the trades what the listing could not: an order placed, traded and ended while the bot was away.

    ``trades`` are the account's trades whose order the journal does not
    know and the listing does not show. An intent about to be settled
    ``not_placed``, or left in flight though this process may settle it
    (``settles``), is ``created`` when exactly one such order fits it (side,
    contract, a price it accepts, traded after it was sent); with several it
    is not settled at all (left for a later reconcile, or a person).
    Returns the outcomes and the intents left in flight.
    """
    by_order: Dict[int, List[JournalTrade]] = {}
    for trade in trades:
        if trade.exchange_id is not None:
            by_order.setdefault(trade.exchange_id, []).append(trade)
    placed = {outcome.intent_id for outcome in outcomes if outcome.state == NOT_PLACED}
    waiting = set(in_flight)
    settled = {outcome.intent_id: outcome for outcome in outcomes}
    taken: Set[int] = set()
    for intent in unsettled:
        if not by_order or not (intent.intent_id in placed or (intent.intent_id in waiting and settles(intent))):
            continue
        span = window(intent)
        fits = [
            number
            for number, traded in by_order.items()
            if number not in taken and all(_trade_fits(trade, intent, span) for trade in traded)
        ]
        if len(fits) == 1:
            taken.add(fits[0])
            waiting.discard(intent.intent_id)
            reason = "settled by reconcile: its trades show it (no longer listed)"
            settled[intent.intent_id] = Outcome(
                intent.intent_id, CREATED, stamp, exchange_id=fits[0], reason=reason, authoritative=False
            )
        elif fits and intent.intent_id in placed:
            del settled[intent.intent_id]  # several orders may be its: not settled by a guess
            waiting.add(intent.intent_id)
    return list(settled.values()), [intent_id for intent_id in in_flight if intent_id in waiting] + [
        intent_id for intent_id in waiting if intent_id not in set(in_flight)
    ]


def executed_by_order(trades: Sequence[JournalTrade]) -> Dict[int, Decimal]:
    """What the account's trades add up to, per order of ours they name."""
    executed: Dict[int, Decimal] = {}
    for trade in trades:
        if trade.exchange_id is not None:
            executed[trade.exchange_id] = executed.get(trade.exchange_id, Decimal(0)) + trade.volume
    return executed


def ended_while_away(
    live: Sequence[JournalOrder], listed_ids: Set[int], executed: Mapping[int, Decimal], stamp: str
) -> List[Observed]:
    """The journal's live orders the listing no longer shows: ended while nobody watched.

    Their executed volume is what their trades add up to (``executed``). A
    ``delete_requested`` order that left the listing was deleted (its
    answer was lost); one whose trades fill it is ``filled``; any other left
    for a reason the journal did not see (``gone``: cancelled elsewhere,
    expired at gate closure).
    """
    observed = []
    for order in live:
        if order.exchange_id is None or order.exchange_id in listed_ids:
            continue
        done = executed.get(order.exchange_id, Decimal(0))
        if order.volume > 0 and done >= order.volume:
            state = FILLED
        elif order.state == DELETING:
            state = DELETED
        else:
            state = GONE
        observed.append(Observed(order.exchange_id, canonical(done) if done > 0 else "", state, stamp))
    return observed
