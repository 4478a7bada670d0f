"""The order rules of GAME, written once: the clients check with them before
sending, and the embedded exchange checks with them on arrival.

``validate_order`` and ``validate_orders`` take anything at all and either
return JSON-ready copies with the defaults filled in, or raise
``OrderValidationError`` listing every problem (order index, field, reason).
No other exception leaves this module for any input.

The rules (GAME-API.md): ``side`` buy/sell; ``price`` and ``volume`` finite
numbers (int, float or Decimal, never bool or str) above zero; ``date``
``YYYY-MM-DD`` on the calendar; ``start_time``/``end_time`` ``HH:MM`` from
00:00 to 23:59; ``duration`` ``<N>m``/``<N>h``; optional ``tz_offset_hours``
0, 1 or 2; optional ``state`` displayed/hidden; optional ``options`` object.
Then, in order: the end is after the start (an end of 00:00 is midnight at
the end of the day), the window is exactly ``duration`` long, and the
delivery start lies in the future.
"""

from __future__ import annotations

import datetime as _dt
import difflib
import math
import re
import time
from decimal import Decimal
from functools import lru_cache
from typing import Any, Dict, List, Mapping, Optional, Tuple

from .errors import OrderProblem, OrderValidationError

__all__ = [
    "validate_order",
    "validate_orders",
    "delivery_window",
    "contract_name",
    "ORDER_FIELDS",
    "REQUIRED_FIELDS",
    "TRADER_SUFFIX_MAX",
]

REQUIRED_FIELDS = ("side", "price", "volume", "date", "start_time", "end_time", "duration")
OPTIONAL_FIELDS = ("tz_offset_hours", "state", "options")
ORDER_FIELDS = REQUIRED_FIELDS + OPTIONAL_FIELDS
_KNOWN = frozenset(ORDER_FIELDS)
TRADER_SUFFIX_MAX = 50

# ASCII classes on purpose: ``\d`` would also accept Arabic-Indic or
# full-width digits, which no server parses as a time. ``fullmatch`` because
# ``$`` lets a trailing newline through.
_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_TIME = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")
_DURATION = re.compile(r"([1-9][0-9]*)([mh])")
_SIDES = ("buy", "sell")
_STATES = ("displayed", "hidden")
_TZ_OFFSETS = (0, 1, 2)

_MINUTES_PER_DAY = 1440
_US_PER_MINUTE = 60_000_000
_UTC = _dt.timezone.utc
_OPTIONS_DEPTH = 32


def _show(value: Any) -> str:
    """A short, safe rendering of a bad value for an error message."""
    try:
        text = repr(value)
    except Exception:  # a hostile __repr__ must not turn into a crash
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 60 else text[:57] + "..."


def _got(value: Any) -> str:
    """``null``, or the type and a short rendering of a bad value."""
    return "null" if value is None else f"{type(value).__name__} {_show(value)}"


def _number(value: Any, field: str, positive: bool, problems: List[Tuple[str, str]]) -> Any:
    """A finite number, as given (so a Decimal stays exact), or None after a problem."""
    kind = type(value)
    if kind is float:
        if not math.isfinite(value):
            problems.append((field, f"must be a finite number, got {value!r}"))
            return None
    elif kind is int:
        pass
    elif kind is bool or isinstance(value, bool):
        problems.append((field, f"must be a number, not a bool (got {value!r})"))
        return None
    elif isinstance(value, Decimal):
        if not value.is_finite():
            problems.append((field, f"must be a finite number, got {_show(value)}"))
            return None
        value = Decimal(value) if kind is not Decimal else value
    elif isinstance(value, int):
        value = int(value)
    elif isinstance(value, float):
        value = float(value)
        if not math.isfinite(value):
            problems.append((field, f"must be a finite number, got {value!r}"))
            return None
    else:
        problems.append((field, f"must be a number (int, float or Decimal), got {_got(value)}"))
        return None
    if positive and not value > 0:
        problems.append((field, f"must be > 0, got {_show(value)}"))
        return None
    return value


def _text(value: Any) -> Optional[str]:
    """``value`` as a plain str when it is a string, else None."""
    if type(value) is str:
        return value
    if isinstance(value, str):
        return str.__str__(value)
    return None


def _json_value(value: Any, depth: int) -> bool:
    """Whether ``value`` is plain JSON (what ``options`` may hold)."""
    if depth > _OPTIONS_DEPTH:
        return False
    if value is None or isinstance(value, (str, bool, int)):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, Decimal):
        return value.is_finite()
    if isinstance(value, (list, tuple)):
        return all(_json_value(item, depth + 1) for item in value)
    if isinstance(value, Mapping):
        return all(isinstance(key, str) and _json_value(item, depth + 1) for key, item in value.items())
    return False


def _copy_json(value: Any) -> Any:
    """A deep copy of a JSON value, so later changes by the caller cannot reach us."""
    if isinstance(value, Mapping):
        return {str(key): _copy_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_copy_json(item) for item in value]
    return value


def _options(value: Any, problems: List[Tuple[str, str]]) -> Optional[Dict[str, Any]]:
    if not isinstance(value, Mapping):
        problems.append(("options", f"must be an object, got {_got(value)}"))
        return None
    if not _json_value(value, 0):
        problems.append(("options", "must hold only JSON values (strings, finite numbers, bools, lists, objects)"))
        return None
    suffix = value.get("trader_suffixe")
    if suffix is not None:
        text = _text(suffix)
        if text is None:
            problems.append(("options.trader_suffixe", f"must be a string, got {_got(suffix)}"))
            return None
        if len(text) > TRADER_SUFFIX_MAX:
            problems.append(
                ("options.trader_suffixe", f"must be at most {TRADER_SUFFIX_MAX} characters, got {len(text)}")
            )
            return None
    copied: Dict[str, Any] = _copy_json(value)
    return copied


def _unknown_field(key: Any) -> Tuple[str, str]:
    name = key if isinstance(key, str) and key.isprintable() and key.strip() == key and key else _show(key)
    reason = "unknown field"
    if isinstance(key, str):
        close = difflib.get_close_matches(key, ORDER_FIELDS, n=1, cutoff=0.6)
        if close:
            reason += f"; did you mean {close[0]!r}?"
    return name, reason + f" (allowed: {', '.join(ORDER_FIELDS)})"


@lru_cache(maxsize=4096)
def _local_offset_cached(year: int, month: int, day: int, hour: int, minute: int, zone: Tuple[Any, ...]) -> int:
    try:
        offset = _dt.datetime(year, month, day, hour, minute).astimezone().utcoffset()
    except (OverflowError, OSError, ValueError):  # outside what the platform's C library can convert
        return 0
    if offset is None:
        return 0
    hours = int(offset.total_seconds() // 3600)  # floor: UTC+5:30 counts as 5, UTC-3:30 as -4
    return min(max(hours, 0), 2)


def _local_offset(year: int, month: int, day: int, hour: int, minute: int) -> int:
    """The local zone's UTC offset at that local wall time, whole hours, clamped to 0..2.

    The offset at the delivery start, not now: an order placed in March for
    a window after the clock change gets the summer offset.
    """
    # The zone is part of the key so that a process that changes TZ (and
    # calls time.tzset) does not get answers from the old zone.
    zone = (time.timezone, time.altzone, time.daylight, time.tzname)
    return _local_offset_cached(year, month, day, hour, minute, zone)


def _now_microseconds(now: Optional[_dt.datetime]) -> int:
    """Microseconds since 0001-01-01 UTC, the scale delivery starts are compared on."""
    if now is None:
        now = _dt.datetime.now(_UTC)
    elif not isinstance(now, _dt.datetime):
        raise TypeError(f"now must be an aware datetime, got {type(now).__name__}")
    elif now.tzinfo is None or now.utcoffset() is None:
        now = now.replace(tzinfo=_UTC)  # a naive clock is taken as UTC, as the platform keeps time
    else:
        now = now.astimezone(_UTC)
    minutes = now.toordinal() * _MINUTES_PER_DAY + now.hour * 60 + now.minute
    return minutes * _US_PER_MINUTE + now.second * 1_000_000 + now.microsecond


def _check(order: Any, now_us: int, allow_non_positive_price: bool) -> Tuple[Dict[str, Any], List[Tuple[str, str]]]:
    """The clean copy of one order and its problems as (field, reason) pairs."""
    problems: List[Tuple[str, str]] = []
    if not isinstance(order, Mapping):
        problems.append(("order", f"must be an object of order fields, got {_got(order)}"))
        return {}, problems
    get = order.get
    for key in order:
        if key not in _KNOWN or not isinstance(key, str):
            problems.append(_unknown_field(key))
    for name in REQUIRED_FIELDS:
        if get(name) is None:
            problems.append((name, "is required" if name not in order else "is required (got null)"))

    clean: Dict[str, Any] = {}
    side = get("side")
    if side is not None:
        if side in _SIDES and type(side) is str:
            clean["side"] = side
        else:
            problems.append(("side", f"must be 'buy' or 'sell', got {_show(side)}"))

    price = get("price")
    if price is not None:
        price = _number(price, "price", not allow_non_positive_price, problems)
        if price is not None:
            clean["price"] = price
    volume = get("volume")
    if volume is not None:
        volume = _number(volume, "volume", True, problems)
        if volume is not None:
            clean["volume"] = volume

    day_number: Optional[int] = None
    ymd: Optional[Tuple[int, int, int]] = None
    date = get("date")
    if date is not None:
        text = _text(date)
        match = _DATE.fullmatch(text) if text is not None else None
        if match is None:
            problems.append(("date", f"must be a date string YYYY-MM-DD, got {_show(date)}"))
        else:
            year, month, day = int(match.group(1)), int(match.group(2)), int(match.group(3))
            try:
                day_number = _dt.date(year, month, day).toordinal()
            except ValueError:
                problems.append(("date", f"is not a calendar date: {_show(date)}"))
            else:
                ymd = (year, month, day)
                clean["date"] = text

    start_minute = _clock_time(get("start_time"), "start_time", clean, problems)
    end_minute = _clock_time(get("end_time"), "end_time", clean, problems)

    duration_minutes: Optional[int] = None
    duration = get("duration")
    if duration is not None:
        text = _text(duration)
        match = _DURATION.fullmatch(text) if text is not None else None
        if match is None:
            problems.append(
                (
                    "duration",
                    f"must be <N>m or <N>h, N a positive whole number like '15m' or '1h', got {_got(duration)}",
                )
            )
        else:
            amount = int(match.group(1))
            duration_minutes = amount * 60 if match.group(2) == "h" else amount
            clean["duration"] = text

    tz: Optional[int] = None
    tz_given = get("tz_offset_hours")
    if tz_given is not None:
        if type(tz_given) is int and tz_given in _TZ_OFFSETS:
            tz = tz_given
        elif isinstance(tz_given, int) and not isinstance(tz_given, bool) and int(tz_given) in _TZ_OFFSETS:
            tz = int(tz_given)
        else:
            problems.append(("tz_offset_hours", f"must be the int 0, 1 or 2, got {_got(tz_given)}"))
    elif ymd is not None and start_minute is not None:
        tz = _local_offset(ymd[0], ymd[1], ymd[2], start_minute // 60, start_minute % 60)
    if tz is not None:
        clean["tz_offset_hours"] = tz

    state = get("state")
    if state is None:
        clean["state"] = "displayed"
    elif state in _STATES and type(state) is str:
        clean["state"] = state
    else:
        problems.append(("state", f"must be 'displayed' or 'hidden', got {_show(state)}"))

    options = get("options")
    if options is not None:
        copied = _options(options, problems)
        if copied is not None:
            clean["options"] = copied

    # Rule 1 and 2: the window. An end of 00:00 after a later start is the
    # midnight that closes ``date``, so 23:45-00:00 is tradable.
    if start_minute is not None and end_minute is not None:
        end = _MINUTES_PER_DAY if end_minute == 0 and start_minute > 0 else end_minute
        if end <= start_minute:
            reason = f"must be after start_time ({get('end_time')} is not after {get('start_time')})"
            problems.append(("end_time", reason))
        elif duration_minutes is not None and end - start_minute != duration_minutes:
            problems.append(
                (
                    "duration",
                    f"{duration!s} does not match the window {get('start_time')}-{get('end_time')} "
                    f"({end - start_minute} minutes)",
                )
            )

    # Rule 3: the delivery start, at UTC+tz, lies ahead of now.
    if day_number is not None and start_minute is not None and tz is not None:
        local_minute = day_number * _MINUTES_PER_DAY + start_minute
        if (local_minute - tz * 60) * _US_PER_MINUTE <= now_us:
            now_local_day = (now_us // _US_PER_MINUTE + tz * 60) // _MINUTES_PER_DAY
            field = "date" if day_number < now_local_day else "start_time"
            problems.append((field, f"delivery start {date} {get('start_time')} UTC+{tz} is not in the future"))
    return clean, problems


def _clock_time(value: Any, field: str, clean: Dict[str, Any], problems: List[Tuple[str, str]]) -> Optional[int]:
    """Minutes after midnight of an ``HH:MM`` string, or None (after a problem unless absent)."""
    if value is None:
        return None
    text = _text(value)
    match = _TIME.fullmatch(text) if text is not None else None
    if match is None:
        problems.append((field, f"must be a time HH:MM from 00:00 to 23:59, got {_show(value)}"))
        return None
    clean[field] = text
    return int(match.group(1)) * 60 + int(match.group(2))


def _ordered(clean: Dict[str, Any]) -> Dict[str, Any]:
    return {name: clean[name] for name in ORDER_FIELDS if name in clean}


def _problems(index: Optional[int], found: List[Tuple[str, str]]) -> List[OrderProblem]:
    return [OrderProblem(index, field, reason) for field, reason in found]


def _guarded(order: Any, now_us: int, allow: bool) -> Tuple[Dict[str, Any], List[Tuple[str, str]]]:
    try:
        return _check(order, now_us, allow)
    except (RecursionError, MemoryError):
        return {}, [("order", "is too deeply nested or too large to check")]
    except Exception as error:  # a hostile Mapping or number type: report it, never crash
        return {}, [("order", f"could not be read ({type(error).__name__})")]


def validate_order(
    order: Any, *, now: Optional[_dt.datetime] = None, allow_non_positive_price: bool = False
) -> Dict[str, Any]:
    """Check one order against the rules and return a JSON-ready copy with defaults filled in.

    ``now`` is the clock the delivery start is compared with (an aware
    datetime; default the current UTC time; a naive one is taken as UTC).
    Raises ``OrderValidationError`` naming every field that is wrong.
    """
    clean, found = _guarded(order, _now_microseconds(now), allow_non_positive_price)
    if found:
        raise OrderValidationError(_problems(None, found))
    return _ordered(clean)


def validate_orders(
    orders: Any, *, now: Optional[_dt.datetime] = None, allow_non_positive_price: bool = False
) -> List[Dict[str, Any]]:
    """Check every order of a bulk; return the copies, or raise naming every bad order and field.

    Nothing is returned unless all of them pass: a bulk is sent whole or not at all.
    """
    if isinstance(orders, (str, bytes, bytearray, Mapping)) or not isinstance(orders, (list, tuple)):
        raise OrderValidationError([OrderProblem(None, "orders", f"must be a list of orders, got {_got(orders)}")])
    if not orders:
        raise OrderValidationError([OrderProblem(None, "orders", "must hold at least one order")])
    now_us = _now_microseconds(now)
    cleaned: List[Dict[str, Any]] = []
    problems: List[OrderProblem] = []
    for index, order in enumerate(orders):
        clean, found = _guarded(order, now_us, allow_non_positive_price)
        if found:
            problems.extend(_problems(index, found))
        elif not problems:
            cleaned.append(_ordered(clean))
    if problems:
        raise OrderValidationError(problems)
    return cleaned


def delivery_window(order: Mapping[str, Any]) -> Tuple[_dt.datetime, int]:
    """The delivery start in UTC and the length in minutes of a validated order."""
    year, month, day = (int(part) for part in str(order["date"]).split("-"))
    hours, minutes = (int(part) for part in str(order["start_time"]).split(":"))
    local = _dt.datetime(year, month, day, hours, minutes)
    start = local - _dt.timedelta(hours=int(order["tz_offset_hours"]))
    match = _DURATION.fullmatch(str(order["duration"]))
    if match is None:
        raise ValueError(f"not a validated order: duration {order.get('duration')!r}")
    amount = int(match.group(1))
    length = amount * 60 if match.group(2) == "h" else amount
    return start.replace(tzinfo=_UTC), length


def contract_name(start_utc: _dt.datetime, minutes: int) -> str:
    """The contract of a delivery window, e.g. ``2025-01-15T14:00:00Z/PT15M``."""
    hours, rest = divmod(minutes, 60)
    length = "PT" + (f"{hours}H" if hours else "") + (f"{rest}M" if rest or not hours else "")
    return start_utc.strftime("%Y-%m-%dT%H:%M:00Z") + "/" + length
