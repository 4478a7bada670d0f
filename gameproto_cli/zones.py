"""The time zone of an order's times: never guessed in silence.

The exchange takes times at UTC+0, +1 or +2 (``tz_offset_hours``). Without
``--tz`` the command uses the computer's own offset at the delivery start,
and only when it is one of those three: a trader in New York or Tokyo who
types ``--start 14:00`` means neither 14:00 UTC nor 12:00 UTC, so the
command refuses and says why rather than placing an order for another hour.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Optional

from .failures import UsageError

__all__ = ["local_offset", "default_tz", "tz_problem", "delivery_text"]

_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_CLOCK = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")
ALLOWED = (0, 1, 2)
TZ_FLAGS = "--tz 0 (UTC), --tz 1 (CET) or --tz 2 (CEST)"


def _wall_time(date: Any, start: Any) -> Optional[dt.datetime]:
    if not (isinstance(date, str) and isinstance(start, str)):
        return None
    clock = _CLOCK.fullmatch(start)
    if not _DAY.fullmatch(date) or not clock:
        return None
    try:
        day = dt.date.fromisoformat(date)
    except ValueError:
        return None
    return dt.datetime(day.year, day.month, day.day, int(clock.group(1)), int(clock.group(2)))


def local_offset(date: Any, start: Any) -> Optional[dt.timedelta]:
    """This computer's UTC offset at ``date`` ``start`` (local wall time); None when those do not read."""
    wall = _wall_time(date, start)
    if wall is None:
        return None
    try:
        return wall.astimezone().utcoffset()
    except (OverflowError, OSError, ValueError):
        return None


def _offset_text(offset: dt.timedelta) -> str:
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours:02d}:{rest:02d}"


def tz_problem(date: Any, start: Any) -> Optional[str]:
    """Why the local offset at the delivery start cannot be sent, or None when it can (or is unknown)."""
    offset = local_offset(date, start)
    if offset is None or _whole_hours(offset) in ALLOWED:
        return None
    return (
        f"this computer's time zone is {_offset_text(offset)} at {date} {start}, and the exchange takes "
        f"times at UTC+0, +1 or +2 only"
    )


def _whole_hours(offset: dt.timedelta) -> Optional[int]:
    seconds = int(offset.total_seconds())
    return seconds // 3600 if seconds % 3600 == 0 else None


def default_tz(date: Any, start: Any) -> Optional[int]:
    """The offset to send when ``--tz`` is not given: the local one at the delivery start.

    Refuses (exit 2) when that offset is not 0, 1 or 2 whole hours; None when the
    date or time does not read (the order rules then name the field).
    """
    problem = tz_problem(date, start)
    if problem:
        raise UsageError(f"{problem}: say which offset --start is in with {TZ_FLAGS}")
    offset = local_offset(date, start)
    return None if offset is None else _whole_hours(offset)


def delivery_text(date: Any, start: Any, end: Any, tz: Any) -> str:
    """``2030-01-15 14:00-14:15 UTC+1 (13:00-13:15 UTC)``: the window as given, and in UTC."""
    given = f"{date} {start}-{end}"
    wall = _wall_time(date, start)
    if wall is None or type(tz) is not int or not isinstance(end, str) or not _CLOCK.fullmatch(end):
        return given
    ending = _wall_time(date, end)
    assert ending is not None
    if ending <= wall:  # 00:00 closes the day
        ending += dt.timedelta(days=1)
    shift = dt.timedelta(hours=tz)
    start_utc, end_utc = wall - shift, ending - shift
    if tz == 0:
        return f"{given} UTC"
    if start_utc.date() == end_utc.date() == wall.date():
        utc = f"{start_utc:%H:%M}-{end_utc:%H:%M} UTC"
    else:
        utc = f"{start_utc:%Y-%m-%d %H:%M} to {end_utc:%Y-%m-%d %H:%M} UTC"
    return f"{given} UTC+{tz} ({utc})"
