"""Checks on the arguments a caller passes to a call, before they reach a URL.

Nothing a caller gives goes into a path or query unchecked: order ids must be
numbers, filters must be the values the protocol knows.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any, Optional

from ._errors import InvalidArgumentError

__all__ = [
    "InvalidArgumentError",
    "is_number",
    "order_number",
    "order_number_or_none",
    "order_id_as_created",
    "check_direction",
    "check_duration",
    "check_market_zone",
    "check_area_name",
    "check_date",
    "check_limit",
    "duration_minutes",
]

_DIGITS = re.compile(r"[0-9]{1,30}")
#: The one duration syntax of the protocol, for arguments and orders alike.
_DURATION = re.compile(r"([1-9][0-9]{0,5})([mh])")
_ZONE = re.compile(r"[0-9A-Za-z][0-9A-Za-z\-]{0,63}")
_AREA = re.compile(r"[0-9A-Za-z][0-9A-Za-z_\-]{0,63}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def is_number(
    value: Any,
    *,
    whole: bool = False,
    above: Optional[float] = None,
    least: Optional[float] = None,
    below: Optional[float] = None,
    most: Optional[float] = None,
) -> bool:
    """Whether ``value`` is a number within the bounds given: an int, or a float unless ``whole``.

    Never a bool (``True`` is an int to Python, not a count or a number of
    seconds to anyone) and never NaN. ``above``/``below`` are open bounds,
    ``least``/``most`` closed ones.
    """
    if isinstance(value, bool) or not isinstance(value, int if whole else (int, float)) or value != value:
        return False
    return (
        (above is None or value > above)
        and (least is None or value >= least)
        and (below is None or value < below)
        and (most is None or value <= most)
    )


def show_value(value: Any, plain_decimal: bool = False) -> str:
    """A short, safe rendering of a bad value for an error message.

    ``plain_decimal`` writes a Decimal as its number (an order's ``-1``, not
    ``Decimal('-1')``); an id or a filter keeps the type in sight.
    """
    try:
        text = str(value) if plain_decimal and isinstance(value, Decimal) else repr(value)
    except Exception:  # a hostile __repr__ must not hide the real problem
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 60 else text[:57] + "..."


def order_number_or_none(order_id: Any) -> Optional[int]:
    """The numeric id of an order given as ``1234``, ``"1234"`` or ``"ord_1234"``, or None.

    None for anything that cannot be an order's id (``"../x"``, ``"12a"``,
    ``""``, ``-1``, ``True``): no order has it, so no request is needed to
    say so, and it never reaches a URL path.
    """
    if type(order_id) is int:
        if 0 <= order_id < 10**30:
            return order_id
    elif isinstance(order_id, str):
        digits = order_id[4:] if order_id.startswith("ord_") else order_id
        if _DIGITS.fullmatch(digits):
            return int(digits)
    return None


def order_id_as_created(order_id: Any) -> Any:
    """An order's id in the form ``create_order`` answers: ``"ord_1234"`` for ``1234``, ``"1234"`` or ``"ord_1234"``.

    Anything that is not an order number is given back as it is.
    """
    number = order_number_or_none(order_id)
    return order_id if number is None else f"ord_{number}"


def order_number(order_id: Any) -> int:
    """The numeric id of an order, or ``InvalidArgumentError`` naming ``order_id``."""
    number = order_number_or_none(order_id)
    if number is None:
        raise _refuse("order_id", "an order id like 1234, '1234' or 'ord_1234'", order_id)
    return number


def _refuse(name: str, expected: str, value: Any) -> InvalidArgumentError:
    return InvalidArgumentError(f"{name} must be {expected}, got {show_value(value)}")


def check_wait(seconds: Any, name: str = "seconds") -> float:
    """A wait the caller asked for: a finite number of seconds >= 0, as a float."""
    if not is_number(seconds, least=0.0, below=float("inf")):
        raise _refuse(name, "a finite number >= 0", seconds)
    return float(seconds)


def check_direction(direction: Any, name: str = "direction") -> Optional[str]:
    """``direction`` if it is ``"buy"``, ``"sell"`` or None."""
    if direction is None or direction == "buy" or direction == "sell":
        if direction is None or isinstance(direction, str):
            return direction
    raise _refuse(name, '"buy" or "sell"', direction)


def duration_minutes(duration: str) -> Optional[int]:
    """Minutes of a ``<N>m``/``<N>h`` duration (``"15m"``, ``"1h"``), or None when it is not one."""
    match = _DURATION.fullmatch(duration)
    if match is None:
        return None
    amount = int(match.group(1))
    return amount * 60 if match.group(2) == "h" else amount


def check_duration(duration: Any, name: str = "duration") -> Optional[str]:
    """``duration`` if it is like ``"15m"`` or ``"1h"``, or None."""
    if duration is None or (isinstance(duration, str) and duration_minutes(duration) is not None):
        return duration
    raise _refuse(name, 'a duration like "15m" or "1h"', duration)


def check_market_zone(zone: Any, name: str = "market_zone") -> Optional[str]:
    """``zone`` if it looks like an EIC area code (``10YCH-SWISSGRIDZ``), or None."""
    if zone is None or (isinstance(zone, str) and _ZONE.fullmatch(zone)):
        return zone
    raise _refuse(name, "an EIC area code like '10YCH-SWISSGRIDZ'", zone)


def check_area_name(area: Any, name: str = "area_name") -> Optional[str]:
    """``area`` if it looks like an area name (``CH-SGD``), or None."""
    if area is None or (isinstance(area, str) and _AREA.fullmatch(area)):
        return area
    raise _refuse(name, "an area name like 'CH-SGD'", area)


def check_date(value: Any, name: str) -> Optional[str]:
    """``value`` as ``YYYY-MM-DD``: a date, a datetime or such a string, or None."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str) and _DATE.fullmatch(value):
        try:
            dt.date.fromisoformat(value)
        except ValueError:
            pass
        else:
            return value
    raise _refuse(name, "a date (YYYY-MM-DD)", value)


def check_limit(limit: Any, name: str = "limit") -> Optional[int]:
    """``limit`` if it is a positive int, or None."""
    if limit is None or (type(limit) is int and 0 < limit <= 10**9):
        return limit
    raise _refuse(name, "a positive int", limit)
