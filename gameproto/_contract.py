"""Delivery periods: a contract's window in UTC, and its place in the exchange's local day.

GAME names a contract by its delivery start in UTC and its length
(``2030-01-15T14:00:00Z/PT15M``). A trader thinks in the local delivery day
of the exchange's zone, Europe/Zurich, which has 96 quarter-hours, 92 on the
last Sunday of March and 100 on the last Sunday of October. The zone's rule
is written here once, without ``zoneinfo`` (Python 3.8 has none): EU summer
time runs from the last Sunday of March 01:00 UTC to the last Sunday of
October 01:00 UTC at UTC+2; the rest of the year is UTC+1 (the rule in force
since 1996; earlier years ended summer time in September). The tests hold it
to ``zoneinfo`` on every quarter-hour of 2024-2035.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Tuple, Union

from ._arguments import duration_minutes

__all__ = [
    "Contract",
    "zurich_offset_hours",
    "local_day_start",
    "quarter_hours_in_day",
    "delivery_day_of",
    "ContractLike",
    "as_contract",
]

UTC = dt.timezone.utc
_QUARTER = dt.timedelta(minutes=15)
_CONTRACT_ID = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):00Z/PT(?:([1-9]\d*)H)?(?:([1-9]\d*)M)?")


def _last_sunday(year: int, month: int) -> dt.date:
    # The last day of the month, then back to its Sunday (weekday 6).
    following = dt.date(year + (month == 12), month % 12 + 1, 1)
    last = following - dt.timedelta(days=1)
    return last - dt.timedelta(days=(last.weekday() - 6) % 7)


@functools.lru_cache(maxsize=512)
def _summer_time(year: int) -> Tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(_last_sunday(year, 3), dt.time(1), UTC)
    end = dt.datetime.combine(_last_sunday(year, 10), dt.time(1), UTC)
    return start, end


def zurich_offset_hours(moment: dt.datetime) -> int:
    """The Europe/Zurich UTC offset in hours (1 or 2) in force at ``moment`` (an aware datetime)."""
    if moment.tzinfo is None:
        raise ValueError(f"moment must be timezone-aware, got {moment!r}")
    instant = moment if moment.tzinfo is UTC else moment.astimezone(UTC)
    start, end = _summer_time(instant.year)
    return 2 if start <= instant < end else 1


def local_day_start(day: dt.date) -> dt.datetime:
    """Local midnight at the start of ``day`` in Europe/Zurich, in UTC.

    The clocks change at 01:00 UTC, after local midnight: the offset of the
    evening before (22:00 UTC) is the offset at midnight.
    """
    evening_before = dt.datetime.combine(day, dt.time(0), UTC) - dt.timedelta(hours=2)
    return dt.datetime.combine(day, dt.time(0), UTC) - dt.timedelta(hours=zurich_offset_hours(evening_before))


def quarter_hours_in_day(day: dt.date) -> int:
    """How many quarter-hours the local delivery ``day`` has: 96, or 92 / 100 on a clock change."""
    length = local_day_start(day + dt.timedelta(days=1)) - local_day_start(day)
    return int(length / _QUARTER)


def delivery_day_of(moment: dt.datetime) -> dt.date:
    """The local (Europe/Zurich) date of ``moment``: the delivery day a window starting then belongs to."""
    instant = moment.astimezone(UTC)
    return (instant + dt.timedelta(hours=zurich_offset_hours(instant))).date()


@dataclass(frozen=True, order=True)
class Contract:
    """A delivery window: its start in UTC and its length in minutes; ordered by start, then length.

    ``Contract.parse("2030-01-15T14:00:00Z/PT15M")`` reads the exchange's
    contract id, ``Contract.from_order(order)`` an order's fields; both give
    equal, hashable values, so positions and books can be keyed by them.
    """

    start: dt.datetime
    minutes: int

    def __post_init__(self) -> None:
        if not isinstance(self.start, dt.datetime) or self.start.tzinfo is None:
            raise ValueError(f"a contract's start must be a timezone-aware datetime, got {self.start!r}")
        if isinstance(self.minutes, bool) or not isinstance(self.minutes, int) or self.minutes <= 0:
            raise ValueError(f"a contract's length must be a positive number of minutes, got {self.minutes!r}")
        if self.start.utcoffset() != dt.timedelta(0) or self.start.tzinfo is not UTC:
            object.__setattr__(self, "start", self.start.astimezone(UTC))
        if self.start.second or self.start.microsecond:
            raise ValueError(f"a contract starts on a whole minute, got {self.start.isoformat()}")

    @classmethod
    def parse(cls, contract_id: str) -> Contract:
        """The contract of an id such as ``2030-01-15T14:00:00Z/PT15M`` (``PT1H``, ``PT1H30M``)."""
        if not isinstance(contract_id, str):
            raise ValueError(f"a contract id is a string like '2030-01-15T14:00:00Z/PT15M', got {contract_id!r}")
        found = _CONTRACT_ID.fullmatch(contract_id)
        if found is None or not (found.group(6) or found.group(7)):
            raise ValueError(f"not a contract id like '2030-01-15T14:00:00Z/PT15M': {contract_id!r}")
        year, month, day, hour, minute = (int(part) for part in found.groups()[:5])
        try:
            start = dt.datetime(year, month, day, hour, minute, tzinfo=UTC)
        except ValueError as wrong:
            raise ValueError(f"not a contract id ({wrong}): {contract_id!r}") from None
        minutes = int(found.group(6) or 0) * 60 + int(found.group(7) or 0)
        return cls(start, minutes)

    @classmethod
    def from_order(cls, order: Mapping[str, Any], *, check_offset: bool = True) -> Contract:
        """The contract of an order's ``date``, ``start_time``, ``duration`` and ``tz_offset_hours``.

        ``tz_offset_hours`` 1 or 2 must be the Europe/Zurich offset in force at
        the delivery start (a winter window given with 2 is an hour off); 0
        means the times are UTC (``check_offset=False``: any offset is taken
        as given, as the exchange takes it). An order as listed (with ``contract``) is read
        from its contract id.
        """
        if not isinstance(order, Mapping):
            raise ValueError(f"an order is a dict of fields, got {type(order).__name__}")
        if "date" not in order and isinstance(order.get("contract"), str):
            return cls.parse(order["contract"])
        try:
            date = dt.date.fromisoformat(str(order["date"]))
            start_time = dt.time.fromisoformat(str(order["start_time"]))
        except KeyError as missing:
            raise ValueError(f"an order's contract needs {missing.args[0]!r}") from None
        except ValueError as wrong:
            raise ValueError(f"an order's date or start_time is not valid: {wrong}") from None
        minutes = duration_minutes(str(order.get("duration")))
        if minutes is None:
            raise ValueError(f"an order's duration must be like '15m' or '1h', got {order.get('duration')!r}")
        offset = order.get("tz_offset_hours", 0)
        if offset is None:
            offset = 0
        if isinstance(offset, bool) or offset not in (0, 1, 2):
            raise ValueError(f"tz_offset_hours must be 0, 1 or 2, got {offset!r}")
        start = dt.datetime.combine(date, start_time, UTC) - dt.timedelta(hours=int(offset))
        if check_offset and offset and zurich_offset_hours(start) != offset:
            raise ValueError(
                f"tz_offset_hours {offset} is not the Europe/Zurich offset at {date} {order['start_time']}"
                f" (UTC+{zurich_offset_hours(start)} then)"
            )
        return cls(start, minutes)

    @property
    def id(self) -> str:
        """The exchange's name of the contract, e.g. ``2030-01-15T14:00:00Z/PT15M``."""
        hours, rest = divmod(self.minutes, 60)
        length = "PT" + (f"{hours}H" if hours else "") + (f"{rest}M" if rest else "")
        return self.start.strftime("%Y-%m-%dT%H:%M:00Z") + "/" + length

    @property
    def end(self) -> dt.datetime:
        """The delivery end in UTC."""
        return self.start + dt.timedelta(minutes=self.minutes)

    @property
    def duration(self) -> str:
        """The length as an order writes it: ``15m``, ``1h``, ``90m``."""
        return f"{self.minutes // 60}h" if self.minutes % 60 == 0 else f"{self.minutes}m"

    @property
    def tz_offset_hours(self) -> int:
        """The Europe/Zurich offset in force at the delivery start (1 or 2)."""
        return zurich_offset_hours(self.start)

    @property
    def delivery_day(self) -> dt.date:
        """The local delivery day (Europe/Zurich) the window starts in."""
        return delivery_day_of(self.start)

    @property
    def local_start(self) -> dt.datetime:
        """The delivery start in local time, with its fixed UTC offset."""
        return self.start.astimezone(dt.timezone(dt.timedelta(hours=self.tz_offset_hours)))

    @property
    def quarter_hour(self) -> int:
        """The number (from 1) of the local day's quarter-hour the window starts in: 1 to 92, 96 or 100."""
        return int((self.start - local_day_start(self.delivery_day)) // _QUARTER) + 1

    @property
    def period(self) -> int:
        """The window's number (from 1) among the day's windows of its length: hour 1 to 23/24/25, quarter 1 to 96."""
        return int((self.start - local_day_start(self.delivery_day)) // dt.timedelta(minutes=self.minutes)) + 1

    def order_fields(self) -> Dict[str, Any]:
        """The ``date``, ``start_time``, ``end_time``, ``duration`` and ``tz_offset_hours`` of an order for it."""
        local = self.local_start
        end = self.end.astimezone(local.tzinfo)
        return {
            "date": local.date().isoformat(),
            "start_time": local.strftime("%H:%M"),
            "end_time": end.strftime("%H:%M"),
            "duration": self.duration,
            "tz_offset_hours": self.tz_offset_hours,
        }

    @classmethod
    def day(cls, day: dt.date, minutes: int = 15) -> List[Contract]:
        """Every window of length ``minutes`` of the local delivery ``day``, in order."""
        first, last = local_day_start(day), local_day_start(day + dt.timedelta(days=1))
        step = dt.timedelta(minutes=minutes)
        count = int((last - first) // step)
        return [cls(first + number * step, minutes) for number in range(count)]

    def __str__(self) -> str:
        return self.id


ContractLike = Union[Contract, str]


def as_contract(value: Any) -> Contract:
    """A ``Contract`` from a contract, its id, or an order's fields; ``ValueError`` naming what is wrong."""
    if isinstance(value, Contract):
        return value
    if isinstance(value, str):
        return Contract.parse(value)
    if isinstance(value, Mapping):
        return Contract.from_order(value)
    raise ValueError(f"not a contract: {value!r}")
