"""Finding the caller's orders in a listing: by id, and as they were sent.

After an ``OutcomeUnknownError`` the only way to know whether an order was
placed is to look for it in ``get_orders()``; these are the two lookups.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional

from ._arguments import check_direction
from ._types import Order

__all__ = ["find_order", "find_matching_orders"]


def find_order(orders: Iterable[Order], number: int) -> Optional[Order]:
    """The order with numeric id ``number`` in a listing, or None."""
    for order in orders:
        order_id = order.get("order_id")
        if order_id == number or (isinstance(order_id, str) and order_id in (str(number), f"ord_{number}")):
            return order
    return None


def _same_number(a: Any, b: Any) -> bool:
    try:
        return abs(float(a) - float(b)) <= 1e-9 * max(1.0, abs(float(b)))
    except (TypeError, ValueError, OverflowError):
        return False


def find_matching_orders(orders: Iterable[Order], sent: Dict[str, Any]) -> List[Order]:
    """The orders of a listing that match an order as it was sent.

    Used after ``OutcomeUnknownError``: a match means the exchange did place
    it. Matching is on side, price, original volume, delivery window and
    state; several matches mean several identical orders were placed.
    """
    side = check_direction(sent.get("side"), "side")
    state = str(sent.get("state") or "displayed").lower()
    matches = []
    for order in orders:
        if order.get("direction") != side:
            continue
        if not (
            _same_number(order.get("price"), sent.get("price"))
            and _same_number(order.get("volume"), sent.get("volume"))
        ):
            continue
        if any(order.get(key) != sent.get(key) for key in ("date", "start_time", "end_time", "duration")):
            continue
        if (
            "tz_offset_hours" in sent
            and order.get("tz_offset_hours", sent["tz_offset_hours"]) != sent["tz_offset_hours"]
        ):
            continue
        if str(order.get("state", state)).lower() != state:
            continue
        matches.append(order)
    return matches
