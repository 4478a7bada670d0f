"""The two forms of time an HTTP header carries: an HTTP date, and ``Retry-After``.

Pure parsing, with no other module of the core but its constants: the errors
(which read ``Retry-After`` off a refusal), the retry policy and the clock
estimate (which reads ``Date``) all take it from here, so none of them imports
another to get it.
"""

from __future__ import annotations

import datetime as _dt
import re
import time
from typing import Optional, Tuple

from . import _constants

__all__ = ["parse_http_date", "parse_retry_after", "read_retry_after"]

_MONTHS = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1
    )
}
# The three forms RFC 9110 has a recipient accept: IMF-fixdate
# ("Sun, 06 Nov 1994 08:49:37 GMT"), RFC 850 ("Sunday, 06-Nov-94 08:49:37 GMT")
# and asctime ("Sun Nov  6 08:49:37 1994"). Written here rather than taken
# from email.utils, which would load the socket module into the pure core.
# Single spaces between the parts, "GMT" only: RFC 9110's grammar, nothing
# looser (a laxer pattern reads things no server meant as a date).
_IMF_DATE = re.compile(r"[A-Za-z]{3}, (\d{2}) ([A-Za-z]{3}) (\d{4}) (\d{2}):(\d{2}):(\d{2}) GMT")
_RFC850_DATE = re.compile(r"[A-Za-z]{6,9}, (\d{2})-([A-Za-z]{3})-(\d{2}) (\d{2}):(\d{2}):(\d{2}) GMT")
_ASCTIME_DATE = re.compile(r"[A-Za-z]{3} ([A-Za-z]{3}) ([ \d]\d) (\d{2}):(\d{2}):(\d{2}) (\d{4})")
#: delay-seconds = 1*DIGIT: no sign, no fraction, no exponent, no "_" (as
#: Python's float() would take), ASCII digits only.
_DELAY_SECONDS = re.compile(r"[0-9]+")
#: More digits than this is a wait beyond any cap; kept from int() of a huge string.
_LONGEST_DELAY_DIGITS = 12


def parse_http_date(text: str) -> Optional[float]:
    """Epoch seconds of an HTTP date, or None when ``text`` is not one."""
    match = _IMF_DATE.fullmatch(text)
    if match:
        day, month, year, hour, minute, second = match.groups()
    else:
        match = _RFC850_DATE.fullmatch(text)
        if match:
            day, month, short_year, hour, minute, second = match.groups()
            year = str(1900 + int(short_year) if int(short_year) >= 70 else 2000 + int(short_year))
        else:
            match = _ASCTIME_DATE.fullmatch(text)
            if not match:
                return None
            month, day, hour, minute, second, year = match.groups()
            day = day.strip()
    month_number = _MONTHS.get(month.lower())
    if month_number is None:
        return None
    try:
        when = _dt.datetime(
            int(year), month_number, int(day), int(hour), int(minute), int(second), tzinfo=_dt.timezone.utc
        )
    except ValueError:
        return None
    return when.timestamp()


def parse_retry_after(value: Optional[str], *, now: Optional[float] = None) -> Optional[float]:
    """Seconds to wait from a ``Retry-After`` value, or None when it says nothing usable.

    The value is either delay-seconds (ASCII digits) or an HTTP date, the two
    forms RFC 9110 allows; anything else (``1.5``, ``+5``, ``1_0``, ``0x10``,
    ``1e1``) says nothing. ``now`` is the wall clock (epoch seconds) that an
    HTTP date is measured from. A date in the past means "now" (0 s). A wait
    longer than ``RETRY_AFTER_MAX`` (5 minutes) is taken as that.
    """
    return read_retry_after(value, now=now)[0]


def read_retry_after(value: Optional[str], *, now: Optional[float] = None) -> Tuple[Optional[float], Optional[float]]:
    """``parse_retry_after``'s wait, and what the value said when it was longer than the cap (else None)."""
    if value is None:
        return None, None
    # Only the optional whitespace HTTP allows around a field value.
    text = value.strip(" \t")
    if not text:
        return None, None
    if _DELAY_SECONDS.fullmatch(text):
        digits = text.lstrip("0")
        said = float(int(digits)) if digits and len(digits) <= _LONGEST_DELAY_DIGITS else (1e12 if digits else 0.0)
    else:
        when = parse_http_date(text)
        if when is None:
            return None, None
        if now is None:
            now = time.time()
        said = max(when - now, 0.0)
    if said > _constants.RETRY_AFTER_MAX:
        return _constants.RETRY_AFTER_MAX, said
    return said, None
