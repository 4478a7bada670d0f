"""The one life of an order, as data: its states, the moves between them, the exchange's words.

Every part of the client that asks "is this order over?" (the limits, the
kill switch, the watchers, the journal, the CLI) reads this module and
nothing else, as h11 keeps a connection's life in the tables of its
``_state.py``. The tables are plain data; the few functions below only read
them.

The states, as we know an order
-------------------------------
Before the exchange has shown it:

``intent``          decided and recorded, not yet handed to the network;
``sent``            its request left; no answer yet;
``unknown``         the call ended without an answer that says what became
                    of it (it may have landed, or may still land: see the
                    late-request window below).

Live on the exchange (counted by the limits, targeted by the kill switch):

``resting``         listed with nothing executed yet;
``partly_filled``   listed with part of it executed, something left;
``delete_requested`` we asked for its deletion; no answer says it is gone.

Ended (nothing more can happen to it):

``filled``          nothing remains: fully executed;
``cancelled``       deleted (by us, by another session, by the exchange);
``expired``         its delivery began (gate closure) before it filled;
``rejected``        the exchange refused it;
``not_placed``      it never reached the book (nothing was sent, or its
                    late-request window closed without the exchange showing it);
``gone``            no longer listed, for a reason we did not see.

Whether an order is ours or another session's (the journal's ``foreign``)
is not a state of its life: a foreign order rests, fills and ends like ours.

The exchange's words
--------------------
A listing (or a create answer) says where an order is with ``state``,
``status`` and ``remaining_volume`` together, in any case (``"Expired"``,
``"EXPIRED"``, ``"expired"`` alike). Nothing remaining, or a word that says
filled, expired, deleted, cancelled or rejected, means the order has ended;
a word we do not know (``"Displayed"``, ``"Hidden"``, a new one) is taken as
live: the limits keep counting it and the kill switch still tries it.

The late-request window
-----------------------
A request may reach the exchange after its call gave up (a slow proxy, a
retransmission). On the exchange's clock (ours plus the measured offset),
such an order can be created from the moment its request was sent, less
``SEND_SKEW``, until the call's deadline plus ``LATE_REQUEST_GRACE``.
Until that window has closed an unanswered order may still land:
reservations are kept, it is not settled ``not_placed``, and an order the
exchange stamps inside the window may be adopted as it; one stamped outside
it never is. The grace is a client setting
(``ClientSettings.late_request_grace``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Dict, FrozenSet, Mapping, Optional, Tuple

from . import _constants

__all__ = [
    "INTENT",
    "SENT",
    "UNKNOWN",
    "RESTING",
    "PARTLY_FILLED",
    "DELETE_REQUESTED",
    "FILLED",
    "CANCELLED",
    "EXPIRED",
    "REJECTED",
    "NOT_PLACED",
    "GONE",
    "ORDER_STATES",
    "UNANSWERED_STATES",
    "LIVE_STATES",
    "ENDED_STATES",
    "MOVES",
    "EXCHANGE_WORDS",
    "ENDING_WORDS",
    "can_move",
    "check_move",
    "is_live",
    "has_ended",
    "word_state",
    "order_state",
    "is_resting",
    "is_over",
    "nothing_left",
    "LATE_REQUEST_GRACE",
    "SEND_SKEW",
    "RequestWindow",
    "request_window",
    "check_grace",
]

INTENT = "intent"
SENT = "sent"
UNKNOWN = "unknown"
RESTING = "resting"
PARTLY_FILLED = "partly_filled"
DELETE_REQUESTED = "delete_requested"
FILLED = "filled"
CANCELLED = "cancelled"
EXPIRED = "expired"
REJECTED = "rejected"
NOT_PLACED = "not_placed"
GONE = "gone"

#: Every state an order can be in for us, in the order of its life.
ORDER_STATES: Tuple[str, ...] = (
    INTENT,
    SENT,
    UNKNOWN,
    RESTING,
    PARTLY_FILLED,
    DELETE_REQUESTED,
    FILLED,
    CANCELLED,
    EXPIRED,
    REJECTED,
    NOT_PLACED,
    GONE,
)
#: States of an order the exchange has not shown us yet: it may be on the book, or may still land.
UNANSWERED_STATES: FrozenSet[str] = frozenset({INTENT, SENT, UNKNOWN})
#: States of an order that may rest on the book (what the limits count and the kill switch targets).
LIVE_STATES: FrozenSet[str] = frozenset({INTENT, SENT, UNKNOWN, RESTING, PARTLY_FILLED, DELETE_REQUESTED})
#: States after which nothing more happens to an order.
ENDED_STATES: FrozenSet[str] = frozenset({FILLED, CANCELLED, EXPIRED, REJECTED, NOT_PLACED, GONE})

# What the exchange may show of an order that is on the book, whatever the answer before.
_SHOWN = frozenset({RESTING, PARTLY_FILLED, FILLED, CANCELLED, EXPIRED, GONE})

#: The allowed moves: from each state, the states it may go to. Staying in a
#: state is always allowed (a second listing saying the same thing).
MOVES: Mapping[str, FrozenSet[str]] = {
    INTENT: frozenset({SENT, UNKNOWN, REJECTED, NOT_PLACED}) | _SHOWN,
    SENT: frozenset({UNKNOWN, REJECTED, NOT_PLACED}) | _SHOWN,
    # An unknown outcome is settled by what the exchange shows, or by its window closing unseen.
    UNKNOWN: frozenset({NOT_PLACED}) | _SHOWN,
    RESTING: frozenset({DELETE_REQUESTED}) | _SHOWN,
    PARTLY_FILLED: frozenset({DELETE_REQUESTED}) | _SHOWN,
    # A delete refused (or unanswered) leaves the order as the next listing shows it.
    DELETE_REQUESTED: _SHOWN,
    # "Gone" is what we saw, not why: the trades or a later look may still say which end it was.
    GONE: frozenset({FILLED, CANCELLED, EXPIRED}),
    FILLED: frozenset(),
    CANCELLED: frozenset(),
    EXPIRED: frozenset(),
    REJECTED: frozenset(),
    NOT_PLACED: frozenset(),
}

#: The exchange's words (``state`` or ``status``, compared lower-cased and
#: stripped) and the state each names. Words not here are live.
EXCHANGE_WORDS: Mapping[str, str] = {
    "displayed": RESTING,
    "hidden": RESTING,
    "active": RESTING,
    "open": RESTING,
    "new": RESTING,
    "resting": RESTING,
    "partially_filled": PARTLY_FILLED,
    "partially filled": PARTLY_FILLED,
    "partiallyfilled": PARTLY_FILLED,
    "partly_filled": PARTLY_FILLED,
    "filled": FILLED,
    "executed": FILLED,
    "fully_filled": FILLED,
    "completed": FILLED,
    "expired": EXPIRED,
    "deleted": CANCELLED,
    "cancelled": CANCELLED,
    "canceled": CANCELLED,
    "rejected": REJECTED,
}
#: The words (lower case) that end an order.
ENDING_WORDS: FrozenSet[str] = frozenset(word for word, state in EXCHANGE_WORDS.items() if state in ENDED_STATES)


def can_move(before: str, after: str) -> bool:
    """Whether an order in state ``before`` may go to ``after`` (staying put is always allowed)."""
    if before not in MOVES or after not in MOVES:
        return False
    return before == after or after in MOVES[before]


def check_move(before: str, after: str) -> str:
    """``after``, when the move from ``before`` is allowed; ``ValueError`` naming both otherwise."""
    for state in (before, after):
        if state not in MOVES:
            raise ValueError(f"not a state of an order: {state!r} (one of {', '.join(ORDER_STATES)})")
    if not can_move(before, after):
        raise ValueError(f"an order cannot go from {before!r} to {after!r}")
    return after


def is_live(state: str) -> bool:
    """Whether an order in ``state`` may rest on the book."""
    return state in LIVE_STATES


def has_ended(state: str) -> bool:
    """Whether nothing more can happen to an order in ``state``."""
    return state in ENDED_STATES


def word_state(word: Any) -> Optional[str]:
    """The state an exchange's word names (any case), or None for a word we do not know (or no word)."""
    if not isinstance(word, str):
        return None
    return EXCHANGE_WORDS.get(word.strip().lower())


def _exact(value: Any) -> Optional[Decimal]:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def nothing_left(order: Mapping[str, Any]) -> bool:
    """Whether the exchange shows nothing left to execute: ``remaining_volume`` <= 0, or (without it) all executed."""
    fields: Dict[str, Any] = dict(order)
    remaining = _exact(fields.get("remaining_volume"))
    if remaining is not None:
        return remaining <= 0
    volume, executed = _exact(fields.get("volume")), _exact(fields.get("executed_volume"))
    return volume is not None and executed is not None and executed >= volume


def order_state(order: Mapping[str, Any]) -> str:
    """Our state of an order as the exchange shows it (a listed order, or a create answer).

    A word that ends it wins (a ``"Cancelled"`` order is cancelled, whatever
    remains); then a word that says filled, or nothing remaining, means
    ``filled``, whatever other word was used (a fully filled order is never
    resting); then something executed means ``partly_filled``; else
    ``resting``, unknown words included.
    """
    fields: Dict[str, Any] = dict(order)
    words = [word_state(fields.get(key)) for key in ("state", "status")]
    for state in words:
        if state is not None and state in ENDED_STATES and state != FILLED:
            return state
    if FILLED in words or nothing_left(fields):
        return FILLED
    executed = _exact(fields.get("executed_volume"))
    if executed is not None and executed > 0:
        return PARTLY_FILLED
    return RESTING


def is_over(order: Mapping[str, Any]) -> bool:
    """Whether the order the exchange shows has ended (filled, cancelled, expired, rejected)."""
    return has_ended(order_state(order))


def is_resting(order: Mapping[str, Any]) -> bool:
    """Whether the order the exchange shows still rests on the book (something remains, not ended)."""
    return not is_over(order)


# -- the late-request window ---------------------------------------------------------------

#: Seconds after a call's deadline during which its request may still land on the exchange (a setting:
#: ``ClientSettings.late_request_grace``, ``GameAPI(late_request_grace=...)``); its default lives with the others.
LATE_REQUEST_GRACE = _constants.LATE_REQUEST_GRACE
#: Seconds before the time we sent a request at which the exchange may stamp its order: our
#: estimate of the exchange's clock can be wrong by up to the resolution of its ``Date`` (one second).
SEND_SKEW = 1.0


def check_grace(value: Any, name: str = "late_request_grace") -> float:
    """A grace in seconds: a finite number >= 0; ``ValueError`` naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise ValueError(f"{name} must be a number of seconds >= 0, got {value!r}")
    seconds = float(value)
    if not 0 <= seconds < float("inf"):
        raise ValueError(f"{name} must be a number of seconds >= 0, got {value!r}")
    return seconds


@dataclass(frozen=True)
class RequestWindow:
    """When an order sent by one request can be created, on the exchange's clock (POSIX seconds)."""

    opens: float
    closes: float

    def holds(self, moment: float) -> bool:
        """Whether an order the exchange stamps at ``moment`` can be the one sent."""
        return self.opens <= moment <= self.closes

    def holds_time(self, moment: dt.datetime) -> bool:
        """``holds`` for an aware ``datetime`` (the exchange's ``created_at``, parsed)."""
        return self.holds(moment.timestamp())

    def is_open(self, exchange_now: float) -> bool:
        """Whether the request may still land at the exchange's time ``exchange_now``."""
        return exchange_now <= self.closes


def request_window(
    sent: float,
    deadline: float,
    offset: Optional[float] = None,
    *,
    grace: float = LATE_REQUEST_GRACE,
    skew: float = SEND_SKEW,
) -> RequestWindow:
    """The window of one request: ``[sent - skew, deadline + grace]``, moved onto the exchange's clock.

    ``sent`` and ``deadline`` are our wall-clock times (POSIX seconds) at
    which the request left and its call gave up; ``offset`` is the measured
    exchange clock minus ours (None while unknown: taken as 0).
    """
    if deadline < sent:
        raise ValueError(f"a call's deadline ({deadline}) cannot come before its request was sent ({sent})")
    shift = offset or 0.0
    return RequestWindow(sent - skew + shift, deadline + grace + shift)
