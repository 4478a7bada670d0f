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
import logging
import math
import re
from decimal import Decimal
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from ._arguments import duration_minutes, show_value
from ._constants import ORDER_UNKNOWN_FIELDS_LISTED
from ._errors import OrderProblem, OrderValidationError
from ._order_clock import _local_offset, _now_microseconds

logger = logging.getLogger("gameproto")

__all__ = [
    "validate_order",
    "validate_orders",
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
# full-width digits, which no server parses as a date. ``fullmatch`` because
# ``$`` lets a trailing newline through. (Times are looked up in ``_CLOCK``.)
_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_SIDES = ("buy", "sell")
_STATES = ("displayed", "hidden")
_TZ_OFFSETS = (0, 1, 2)

_MINUTES_PER_DAY = 1440
_US_PER_MINUTE = 60_000_000
_UTC = _dt.timezone.utc
_OPTIONS_DEPTH = 32


def _show(value: Any) -> str:
    return show_value(value, plain_decimal=True)


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
    if isinstance(value, str):
        return str.__str__(value)
    return value


def _flat_copy(value: Any) -> Optional[Dict[str, Any]]:
    """A copy of a plain dict of str keys and scalar JSON values (the usual options), else None."""
    if type(value) is not dict:
        return None
    for key, item in value.items():
        kind = type(item)
        if type(key) is not str or not (
            kind is str or kind is int or kind is bool or item is None or (kind is float and math.isfinite(item))
        ):
            return None
    return dict(value)


def _options(value: Any, problems: List[Tuple[str, str]]) -> Optional[Dict[str, Any]]:
    copied = _flat_copy(value)
    if copied is None:
        if not isinstance(value, Mapping):
            problems.append(("options", f"must be an object, got {_got(value)}"))
            return None
        if not _json_value(value, 0):
            problems.append(("options", "must hold only JSON values (strings, finite numbers, bools, lists, objects)"))
            return None
        copied = _copy_json(value)
    suffix = copied.get("trader_suffixe")
    if suffix is not None:
        if not isinstance(suffix, str):
            problems.append(("options.trader_suffixe", f"must be a string, got {_got(suffix)}"))
            return None
        if len(suffix) > TRADER_SUFFIX_MAX:
            problems.append(
                ("options.trader_suffixe", f"must be at most {TRADER_SUFFIX_MAX} characters, got {len(suffix)}")
            )
            return None
    return copied


def _unknown_field(key: Any) -> Tuple[str, str]:
    name = key if isinstance(key, str) and key.isprintable() and key.strip() == key and key else _show(key)
    reason = "unknown field"
    if isinstance(key, str):
        close = difflib.get_close_matches(key, ORDER_FIELDS, n=1, cutoff=0.6)
        if close:
            reason += f"; did you mean {close[0]!r}?"
    return name, reason + f" (allowed: {', '.join(ORDER_FIELDS)})"


# Lookup tables and bounded memo caches: the same few dates, times and
# durations come back in every order a bot sends, and a dict lookup is far
# cheaper than a regex and a date constructor.
_CLOCK: Dict[str, int] = {f"{hour:02d}:{minute:02d}": hour * 60 + minute for hour in range(24) for minute in range(60)}
_DAY_NUMBERS: Dict[str, Tuple[int, int, int, int]] = {}
_DURATION_MINUTES: Dict[str, int] = {"15m": 15, "30m": 30, "45m": 45, "1h": 60, "60m": 60, "2h": 120, "4h": 240}
_MEMO_LIMIT = 20_000


def _day(value: Any, problems: List[Tuple[str, str]]) -> Optional[Tuple[int, int, int, int]]:
    """(day number, year, month, day) of a ``YYYY-MM-DD`` string, or None after a problem."""
    if type(value) is str:
        known = _DAY_NUMBERS.get(value)
        if known is not None:
            return known
        text: Optional[str] = value
    else:
        text = _text(value)
    match = _DATE.fullmatch(text) if text is not None else None
    if match is None:
        problems.append(("date", f"must be a date string YYYY-MM-DD, got {_got(value)}"))
        return None
    year, month, day = int(match.group(1)), int(match.group(2)), int(match.group(3))
    try:
        found = (_dt.date(year, month, day).toordinal(), year, month, day)
    except ValueError:
        problems.append(("date", f"is not a calendar date: {_show(value)}"))
        return None
    if len(_DAY_NUMBERS) < _MEMO_LIMIT and text is not None and type(value) is str:
        _DAY_NUMBERS[text] = found
    return found


def _clock_time(value: Any, field: str, problems: List[Tuple[str, str]]) -> Optional[int]:
    """Minutes after midnight of an ``HH:MM`` string from 00:00 to 23:59, or None after a problem."""
    if type(value) is str:
        minute = _CLOCK.get(value)
        if minute is not None:
            return minute
    elif isinstance(value, str):
        minute = _CLOCK.get(str.__str__(value))
        if minute is not None:
            return minute
    problems.append((field, f"must be a time HH:MM from 00:00 to 23:59, got {_got(value)}"))
    return None


def _duration(value: Any, problems: List[Tuple[str, str]]) -> Optional[int]:
    """Minutes of a ``<N>m``/``<N>h`` duration, or None after a problem."""
    if type(value) is str:
        known = _DURATION_MINUTES.get(value)
        if known is not None:
            return known
    text = _text(value)
    minutes = duration_minutes(text) if text is not None else None
    if minutes is None:
        problems.append(
            ("duration", f"must be <N>m or <N>h, N a positive whole number like '15m' or '1h', got {_got(value)}")
        )
        return None
    if len(_DURATION_MINUTES) < _MEMO_LIMIT and type(value) is str:
        _DURATION_MINUTES[value] = minutes
    return minutes


def _side(value: Any, problems: List[Tuple[str, str]], allow: bool) -> Any:
    if not (type(value) is str and value in _SIDES):
        problems.append(("side", f"must be 'buy' or 'sell', got {_got(value)}"))
        return None
    return value


def _price(value: Any, problems: List[Tuple[str, str]], allow: bool) -> Any:
    return _number(value, "price", not allow, problems)


def _volume(value: Any, problems: List[Tuple[str, str]], allow: bool) -> Any:
    return _number(value, "volume", True, problems)


def _tz_offset(value: Any, problems: List[Tuple[str, str]], allow: bool) -> Any:
    if type(value) is int and value in _TZ_OFFSETS:
        return value
    if isinstance(value, int) and not isinstance(value, bool) and int(value) in _TZ_OFFSETS:
        return int(value)
    problems.append(("tz_offset_hours", f"must be the int 0, 1 or 2, got {_got(value)}"))
    return None


def _state(value: Any, problems: List[Tuple[str, str]], allow: bool) -> Any:
    if not (type(value) is str and value in _STATES):
        problems.append(("state", f"must be 'displayed' or 'hidden', got {_got(value)}"))
        return None
    return value


_Parse = Callable[[Any, List[Tuple[str, str]], bool], Any]

#: Every field in the documented order, with its parser: the value it gives
#: (None after a problem, which the parser records). A required field that is
#: absent is a problem of its own; an optional one is simply left out.
_FIELD_RULES: Tuple[Tuple[str, bool, _Parse], ...] = (
    ("side", True, _side),
    ("price", True, _price),
    ("volume", True, _volume),
    ("date", True, lambda value, problems, allow: _day(value, problems)),
    ("start_time", True, lambda value, problems, allow: _clock_time(value, "start_time", problems)),
    ("end_time", True, lambda value, problems, allow: _clock_time(value, "end_time", problems)),
    ("duration", True, lambda value, problems, allow: _duration(value, problems)),
    ("tz_offset_hours", False, _tz_offset),
    ("state", False, _state),
    ("options", False, lambda value, problems, allow: _options(value, problems)),
)


def _window_rule(
    raw: Mapping[str, Any], parsed: Mapping[str, Any], problems: List[Tuple[str, str]], now_us: int
) -> None:
    """Rules 1 and 2: the end is after the start, and the window is ``duration`` long.

    An end of 00:00 after a later start is the midnight that closes ``date``,
    so 23:45-00:00 is tradable.
    """
    start, end, minutes = parsed["start_time"], parsed["end_time"], parsed["duration"]
    if start is None or end is None:
        return
    if end == 0 and start > 0:
        end = _MINUTES_PER_DAY
    if end <= start:
        problems.append(("end_time", f"must be after start_time ({raw['end_time']} is not after {raw['start_time']})"))
    elif minutes is not None and end - start != minutes:
        window = f"{raw['start_time']}-{raw['end_time']} ({end - start} minutes)"
        problems.append(("duration", f"{raw['duration']!s} does not match the window {window}"))


def _future_rule(
    raw: Mapping[str, Any], parsed: Mapping[str, Any], problems: List[Tuple[str, str]], now_us: int
) -> None:
    """Rule 3: the delivery start, at UTC+tz, lies ahead of now."""
    day, start, tz = parsed["date"], parsed["start_time"], parsed["tz_offset_hours"]
    if day is None or start is None or tz is None:
        return
    local_minute = day[0] * _MINUTES_PER_DAY + start
    if (local_minute - tz * 60) * _US_PER_MINUTE <= now_us:
        now_local_day = (now_us // _US_PER_MINUTE + tz * 60) // _MINUTES_PER_DAY
        field = "date" if day[0] < now_local_day else "start_time"
        problems.append((field, f"delivery start {raw['date']} {raw['start_time']} UTC+{tz} {_NOT_IN_FUTURE}"))


#: The rules across fields, in the order their problems are listed.
_ORDER_RULES = (_window_rule, _future_rule)


def _unknown_fields(order: Mapping[Any, Any], problems: List[Tuple[str, str]]) -> int:
    """Name the first few unknown fields (a suggestion each); return how many more there are.

    An order of 60,000 unknown keys costs one pass over them, not 60,000 fuzzy matches.
    """
    if order.keys() <= _KNOWN:
        return 0
    unknown = [key for key in order if key not in _KNOWN]
    problems.extend(_unknown_field(key) for key in unknown[:ORDER_UNKNOWN_FIELDS_LISTED])
    return max(0, len(unknown) - ORDER_UNKNOWN_FIELDS_LISTED)


def _check(
    order: Any, now_us: int, allow_non_positive_price: bool
) -> Tuple[Dict[str, Any], List[Tuple[str, str]], int]:
    """The clean copy of one order, its problems as (field, reason) pairs, and how many more were not listed."""
    problems: List[Tuple[str, str]] = []
    if not isinstance(order, Mapping):
        problems.append(("order", f"must be an object of order fields, got {_got(order)}"))
        return {}, problems, 0
    omitted = _unknown_fields(order, problems)
    raw: Dict[str, Any] = {}
    parsed: Dict[str, Any] = {}
    for name, required, parse in _FIELD_RULES:
        value = raw[name] = order.get(name)
        if value is not None:
            parsed[name] = parse(value, problems, allow_non_positive_price)
        else:
            parsed[name] = None
            if required:
                problems.append(_missing(name, order))
    day, start = parsed["date"], parsed["start_time"]
    if raw["tz_offset_hours"] is None and day is not None and start is not None:
        parsed["tz_offset_hours"] = _local_offset(day[1], day[2], day[3], start // 60, start % 60)
    for rule in _ORDER_RULES:
        rule(raw, parsed, problems, now_us)
    if problems:
        return {}, problems, omitted
    return _clean(raw, parsed), problems, omitted


def _clean(raw: Mapping[str, Any], parsed: Mapping[str, Any]) -> Dict[str, Any]:
    """The order in the documented field order; strings as plain str, numbers as given."""
    clean = {
        "side": str(raw["side"]),
        "price": parsed["price"],
        "volume": parsed["volume"],
        "date": str(raw["date"]),
        "start_time": str(raw["start_time"]),
        "end_time": str(raw["end_time"]),
        "duration": str(raw["duration"]),
        "tz_offset_hours": parsed["tz_offset_hours"],
        "state": "displayed" if raw["state"] is None else str(raw["state"]),
    }
    if parsed["options"] is not None:
        clean["options"] = parsed["options"]
    return clean


def _missing(name: str, order: Mapping[Any, Any]) -> Tuple[str, str]:
    return name, "is required (got null)" if name in order else "is required"


#: The zone of a ``now`` read from the exchange's clock (UTC, named so that
#: an order refused as "not in the future" says whose clock refused it).
EXCHANGE_CLOCK = _dt.timezone(_dt.timedelta(0), "the exchange's clock")
_NOT_IN_FUTURE = "is not in the future"


def _clock_reading(now: Optional[_dt.datetime]) -> str:
    """``now`` as the time a late order was judged at, and by whose clock."""
    moment = _dt.datetime.now(_UTC) if now is None else now if now.tzinfo is not None else now.replace(tzinfo=_UTC)
    reading = f"now {moment.astimezone(_UTC):%Y-%m-%d %H:%M:%S} UTC"
    return f"{reading} by the exchange's clock" if moment.tzinfo is EXCHANGE_CLOCK else reading


def _problems(index: Optional[int], found: List[Tuple[str, str]], now: Optional[_dt.datetime]) -> List[OrderProblem]:
    return [
        OrderProblem(index, field, f"{reason} ({_clock_reading(now)})" if reason.endswith(_NOT_IN_FUTURE) else reason)
        for field, reason in found
    ]


_INFINITY = math.inf
_NO_PROBLEMS: List[Tuple[str, str]] = []


def _plain_number(value: Any) -> bool:
    """Whether ``value`` is an int, float or Decimal (exactly those types), finite and above zero."""
    kind = type(value)
    if kind is float:
        return bool(0 < value < _INFINITY)  # NaN compares false
    if kind is int:
        return bool(value > 0)
    if kind is Decimal:
        return bool(value.is_finite() and value > 0)
    return False


def _plainly_valid(order: Any, now_us: int) -> Optional[Dict[str, Any]]:
    """The clean copy of an order that plainly passes every rule, or None: then ``_check`` decides.

    The same rules as ``_check``, on the shape every bot sends (a plain dict,
    values of the exact types, dates, times and durations already in the
    lookup tables), so the usual order costs a few lookups. It only accepts:
    whatever it is unsure of, ``_check`` judges, and every refusal and its
    reasons come from there.
    """
    if type(order) is not dict or not order.keys() <= _KNOWN:
        return None
    get = order.get
    side, price, volume = get("side"), get("price"), get("volume")
    if type(side) is not str or side not in _SIDES or not _plain_number(volume) or not _plain_number(price):
        return None  # a price of zero or below, where allowed, is judged by ``_check``
    date, start_text, end_text, duration = get("date"), get("start_time"), get("end_time"), get("duration")
    if not (type(date) is str and type(start_text) is str and type(end_text) is str and type(duration) is str):
        return None
    day, start, end = _DAY_NUMBERS.get(date), _CLOCK.get(start_text), _CLOCK.get(end_text)
    minutes = _DURATION_MINUTES.get(duration)
    if day is None or start is None or end is None or minutes is None:
        return None
    if end == 0 and start > 0:
        end = _MINUTES_PER_DAY
    if end - start != minutes or end <= start:
        return None
    tz = get("tz_offset_hours")
    if tz is None:  # absent or null, as ``_check`` reads it: the local zone's offset at the delivery start
        tz = _local_offset(day[1], day[2], day[3], start // 60, start % 60)
    elif type(tz) is not int or tz not in _TZ_OFFSETS:
        return None
    if ((day[0] * _MINUTES_PER_DAY + start) - tz * 60) * _US_PER_MINUTE <= now_us:
        return None
    state = get("state")
    if state is None:
        state = "displayed"
    elif type(state) is not str or state not in _STATES:
        return None
    clean = {
        "side": side,
        "price": price,
        "volume": volume,
        "date": date,
        "start_time": start_text,
        "end_time": end_text,
        "duration": duration,
        "tz_offset_hours": tz,
        "state": state,
    }
    options = get("options")
    if options is not None:
        copied = _flat_copy(options)
        if copied is None:
            return None
        suffix = copied.get("trader_suffixe")
        if suffix is not None and (type(suffix) is not str or len(suffix) > TRADER_SUFFIX_MAX):
            return None
        clean["options"] = copied
    return clean


def _guarded(order: Any, now_us: int, allow: bool) -> Tuple[Dict[str, Any], List[Tuple[str, str]], int]:
    try:
        clean = _plainly_valid(order, now_us)
        if clean is not None:
            return clean, _NO_PROBLEMS, 0
        return _check(order, now_us, allow)
    except (RecursionError, MemoryError):
        return {}, [("order", "is too deeply nested or too large to check")], 0
    except Exception as error:  # a hostile Mapping or number type: report it, never crash
        return {}, [("order", f"could not be read ({type(error).__name__})")], 0


def validate_order(
    order: Any, *, now: Optional[_dt.datetime] = None, allow_non_positive_price: bool = False
) -> Dict[str, Any]:
    """Check one order against the rules and return a JSON-ready copy with defaults filled in.

    ``now`` is the clock the delivery start is compared with (an aware
    datetime; default the current UTC time; a naive one is taken as UTC).
    Raises ``OrderValidationError`` naming every field that is wrong.
    """
    clean, found, omitted = _guarded(order, _now_microseconds(now), allow_non_positive_price)
    if found:
        raise OrderValidationError(_problems(None, found, now), omitted=omitted)
    return clean


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
    omitted = 0
    for index, order in enumerate(orders):
        clean, found, more = _guarded(order, now_us, allow_non_positive_price)
        omitted += more
        if found:
            problems.extend(_problems(index, found, now))
        elif not problems:
            cleaned.append(clean)
    if problems:
        raise OrderValidationError(problems, omitted=omitted)
    return cleaned
