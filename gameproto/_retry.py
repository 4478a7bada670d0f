"""The retry policy: which failure is tried again, and after how long.

Pure functions of the failure, the attempt number, a random source and a
clock, so that every decision is tested without waiting.
"""

from __future__ import annotations

import datetime as _dt
import re
import time
from dataclasses import dataclass
from typing import Callable, Optional, Tuple

from . import _constants
from ._arguments import is_number
from ._boundary import TransportFailure

__all__ = [
    "RetryPolicy",
    "RetryDecision",
    "RETRYABLE_STATUSES",
    "parse_retry_after",
    "read_retry_after",
    "parse_http_date",
    "backoff_delay",
]

#: Answers that mean "not carried out, try later" for a request that is safe
#: to repeat.
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


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


def backoff_delay(
    retry_number: int,
    *,
    initial: float = _constants.BACKOFF_INITIAL,
    maximum: float = _constants.BACKOFF_MAX,
    random: Callable[[], float],
) -> float:
    """The wait before retry ``retry_number`` (1 for the first retry).

    Exponential (``initial`` doubling), capped at ``maximum``, with "equal
    jitter": half the delay is fixed and half random, so clients that failed
    together do not come back together, yet none retries at once.
    """
    exponent = min(max(retry_number - 1, 0), 62)
    delay = min(initial * (2.0**exponent), maximum)
    return delay / 2.0 + (delay / 2.0) * min(max(random(), 0.0), 1.0)


@dataclass(frozen=True)
class RetryDecision:
    """Whether to try again, and after how many seconds."""

    retry: bool
    wait: float = 0.0


GIVE_UP = RetryDecision(False)


@dataclass(frozen=True)
class RetryPolicy:
    """What the project retries (GAME-API.md, "Retries").

    GET and DELETE are retried on transport failures and on the statuses in
    ``RETRYABLE_STATUSES``. A request that creates orders is retried only
    when it cannot have been carried out: nothing was sent, or the answer
    was 429.
    """

    max_retries: int = _constants.DEFAULT_MAX_RETRIES
    backoff_initial: float = _constants.BACKOFF_INITIAL
    backoff_max: float = _constants.BACKOFF_MAX
    retry_after_cap: float = _constants.RETRY_AFTER_CAP

    def __post_init__(self) -> None:
        if not is_number(self.max_retries, whole=True, least=0):
            raise ValueError(f"max_retries must be a whole number >= 0, got {self.max_retries!r}")

    def after_status(
        self,
        status: int,
        *,
        creates: bool,
        retries_done: int,
        retry_after: Optional[float],
        random: Callable[[], float],
    ) -> RetryDecision:
        """The decision after an unsuccessful answer."""
        if status not in RETRYABLE_STATUSES:
            return GIVE_UP
        if creates and status != 429:
            # A 5xx to a POST may come after the order was placed.
            return GIVE_UP
        if retries_done >= self.max_retries:
            return GIVE_UP
        if retry_after is not None:
            if retry_after > self.retry_after_cap:
                return RetryDecision(False, retry_after)
            return RetryDecision(True, retry_after)
        wait = backoff_delay(retries_done + 1, initial=self.backoff_initial, maximum=self.backoff_max, random=random)
        return RetryDecision(True, wait)

    def after_transport_failure(
        self,
        failure: TransportFailure,
        *,
        creates: bool,
        retries_done: int,
        random: Callable[[], float],
    ) -> RetryDecision:
        """The decision after a request that got no answer."""
        if creates and failure.may_have_been_sent:
            return GIVE_UP
        if failure.kind == "too_large":
            # The same server would send the same oversized answer again.
            return GIVE_UP
        if retries_done >= self.max_retries:
            return GIVE_UP
        wait = backoff_delay(retries_done + 1, initial=self.backoff_initial, maximum=self.backoff_max, random=random)
        return RetryDecision(True, wait)
