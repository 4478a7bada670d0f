"""The clocks an order is judged on: the local zone's offset at a delivery start, and "now" in microseconds.

Split from ``_orders.py`` (the order rules), which reads both; kept apart because they are about the host's
clock and zone, not about an order.
"""

from __future__ import annotations

import datetime as _dt
import logging
import time
from functools import lru_cache
from typing import Any, Optional, Set, Tuple

logger = logging.getLogger("gameproto")

_MINUTES_PER_DAY = 1440
_US_PER_MINUTE = 60_000_000
_UTC = _dt.timezone.utc


@lru_cache(maxsize=4096)
def _local_offset_cached(year: int, month: int, day: int, hour: int, minute: int, zone: Tuple[Any, ...]) -> int:
    """The local zone's UTC offset at that wall time in whole hours, floored, not clamped."""
    try:
        offset = _dt.datetime(year, month, day, hour, minute).astimezone().utcoffset()
    except (OverflowError, OSError, ValueError):  # outside what the platform's C library can convert
        return 0
    if offset is None:
        return 0
    return int(offset.total_seconds() // 3600)  # floor: UTC+5:30 counts as 5, UTC-3:30 as -4


#: The (zone, offset) pairs already warned about: one warning per zone and offset, not one per order.
_CLAMP_WARNED: Set[Tuple[Any, ...]] = set()


def _local_offset(year: int, month: int, day: int, hour: int, minute: int) -> int:
    """The local zone's UTC offset at that local wall time, whole hours, clamped to 0..2.

    The offset at the delivery start, not now: an order placed in March for
    a window after the clock change gets the summer offset. A clamp changes
    the hour the order is for, so it is logged (once per zone and offset).
    """
    # The zone is part of the key so that a process that changes TZ (and
    # calls time.tzset) does not get answers from the old zone.
    zone = (time.timezone, time.altzone, time.daylight, time.tzname)
    hours = _local_offset_cached(year, month, day, hour, minute, zone)
    clamped = min(max(hours, 0), 2)
    if clamped != hours and (zone, hours) not in _CLAMP_WARNED:
        _CLAMP_WARNED.add((zone, hours))
        logger.warning(
            "the local time zone is UTC%+d at the delivery start %04d-%02d-%02d %02d:%02d, but "
            "tz_offset_hours can only be 0, 1 or 2: the order's times are taken as UTC+%d; "
            "give tz_offset_hours to say which offset they are in",
            hours, year, month, day, hour, minute, clamped,
        )  # fmt: skip
    return clamped


# 0001-01-01 to 1970-01-01 in microseconds: lets ``time.time()`` stand in for
# ``datetime.now()`` on the scale delivery starts are compared on.
_EPOCH_US = _dt.date(1970, 1, 1).toordinal() * _MINUTES_PER_DAY * _US_PER_MINUTE


#: The last clock read and its microseconds: an exchange passes the same datetime object for
#: every order of a bulk and of the same moment (datetimes are immutable, so identity is enough).
#: One tuple, replaced whole, so that another thread never sees a clock with another's microseconds.
_LAST_NOW: Tuple[Optional[_dt.datetime], int] = (None, 0)


def _now_microseconds(now: Optional[_dt.datetime]) -> int:
    """Microseconds since 0001-01-01 00:00 UTC (day 1), the scale delivery starts are compared on."""
    if now is None:
        return _EPOCH_US + int(time.time() * 1_000_000)
    global _LAST_NOW
    last = _LAST_NOW
    if now is last[0]:
        return last[1]
    found = _microseconds_of(now)
    _LAST_NOW = (now, found)
    return found


def _microseconds_of(now: _dt.datetime) -> int:
    if not isinstance(now, _dt.datetime):
        raise TypeError(f"now must be an aware datetime, got {type(now).__name__}")
    if now.tzinfo is None or now.utcoffset() is None:
        now = now.replace(tzinfo=_UTC)  # a naive clock is taken as UTC, as the platform keeps time
    else:
        now = now.astimezone(_UTC)
    minutes = now.toordinal() * _MINUTES_PER_DAY + now.hour * 60 + now.minute
    return minutes * _US_PER_MINUTE + now.second * 1_000_000 + now.microsecond
