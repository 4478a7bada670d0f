"""Finding the caller's orders in a listing: by id, and as they were sent (the one matcher).

After an ``OutcomeUnknownError`` the only way to know whether an order was
placed is to look for it in ``get_orders()``; the journal's ``reconcile()``
asks the same question of every intent it settles. Both ask it here, by one
rule (``matches``):

- the side is the same (the listing's ``direction``, or ``side``);
- the price and the original volume are the same **exactly**, as decimals
  (``50.0000000001`` is not ``50``; ``50``, ``50.0`` and ``"50.00"`` are);
- each of ``date``, ``start_time``, ``end_time``, ``duration`` and
  ``tz_offset_hours`` the listing shows equals what was sent (a field the
  listing leaves out, or the sent order left to its default, cannot tell
  them apart);
- the visibility the listing shows (``Displayed``/``Hidden``, any case) is
  the one sent (``displayed`` when not given); a word of the order's life
  (``Filled``, ``Expired``...) does not tell them apart: it is the same
  order, later;
- with a ``window`` (``gameproto.risk.request_window``: from the time the
  request was sent, less a small skew, to the call's deadline plus the
  late-request grace, on the exchange's clock), the exchange's
  ``created_at`` falls inside it: an order created before its request left
  or after it could have landed is another order. A listing without a
  readable ``created_at`` cannot be bounded and is not refused for it.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Mapping, Optional

from ._arguments import check_direction
from ._clock import parse_exchange_timestamp
from ._order_life import RequestWindow
from ._positions import decimal_of
from ._types import Order

__all__ = ["find_order", "find_matching_orders", "matches", "created_at", "same_number"]

#: The delivery fields compared when the listing shows them.
_DELIVERY = ("date", "start_time", "end_time", "duration", "tz_offset_hours")
#: The listing's words for an order's visibility (the rest are words of its life).
_VISIBILITY = ("displayed", "hidden")


def find_order(orders: Iterable[Order], number: int) -> Optional[Order]:
    """The order with numeric id ``number`` in a listing, or None."""
    for order in orders:
        order_id = order.get("order_id")
        if order_id == number or (isinstance(order_id, str) and order_id in (str(number), f"ord_{number}")):
            return order
    return None


def same_number(a: Any, b: Any) -> bool:
    """Whether two numbers are the same exact decimal (``50 == 50.0 == "50.00"``); False when one is no number."""
    try:
        return decimal_of(a, "a") == decimal_of(b, "b")
    except ValueError:
        return False


def created_at(order: Mapping[str, Any]) -> Optional[float]:
    """The exchange's ``created_at`` of a listed order (POSIX seconds), or None when it shows none readable."""
    stamp = order.get("created_at")
    parsed = parse_exchange_timestamp(stamp) if isinstance(stamp, str) else None
    return None if parsed is None else parsed[0]


def matches(listed: Mapping[str, Any], sent: Mapping[str, Any], window: Optional[RequestWindow] = None) -> bool:
    """Whether ``listed`` (an order of ``get_orders()``) can be ``sent`` (an order as it was sent): see the module."""
    fields: Dict[str, Any] = dict(listed)
    if fields.get("direction", fields.get("side")) != sent.get("side"):
        return False
    if not (
        same_number(fields.get("price"), sent.get("price")) and same_number(fields.get("volume"), sent.get("volume"))
    ):
        return False
    for key in _DELIVERY:
        shown, given = fields.get(key), sent.get(key)
        if shown is not None and given is not None and shown != given:
            return False
    shown_state = fields.get("state")
    if isinstance(shown_state, str) and shown_state.strip().lower() in _VISIBILITY:
        if shown_state.strip().lower() != str(sent.get("state") or "displayed").lower():
            return False
    if window is not None:
        moment = created_at(fields)
        if moment is not None and not window.holds(moment):
            return False
    return True


def find_matching_orders(
    orders: Iterable[Order], sent: Dict[str, Any], window: Optional[RequestWindow] = None
) -> List[Order]:
    """The orders of a listing that match an order as it was sent, in listing order.

    Used after ``OutcomeUnknownError``: a match means the exchange did place
    it. Matching is on side, exact price and original volume, delivery
    window and visibility (see ``gameproto._reconcile``); with ``window``
    (``gameproto.risk.request_window``) the order must also have been created
    within it. Several matches mean several identical orders were placed.
    """
    check_direction(sent.get("side"), "side")
    return [order for order in orders if matches(order, sent, window)]
