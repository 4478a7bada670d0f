"""The exchange's clock: how far it is from ours, learnt from answers we already get.

Each answer says what time the exchange had while it handled the request:
the ``Date`` header (an HTTP date, whole seconds, so truncated: the true
instant lies in ``[date, date + 1)``) and, on ``/status``, the ``timestamp``
(ISO 8601, as fine as its digits). The exchange read its clock somewhere
between our sending the request (local ``sent``) and our receiving the
answer (local ``received``). So one answer bounds the offset
(exchange minus local) to the interval

    ``[stamp - received, stamp + resolution - sent]``

whose width is the round trip plus the stamp's resolution. No assumption
about where in the round trip the exchange read its clock is needed for the
bound; the estimate is the middle of it.

Several answers are combined by Marzullo's algorithm over the newest
``keep`` of them: the offset is the middle of the smallest interval that
agrees with the most answers. Answers that agree narrow the estimate (a
second answer whose whole seconds tick at another moment halves the Date's
uncertainty); one bad answer (a proxy's stale Date, a stalled read) is
outvoted; and because old answers leave, a clock that was stepped (NTP) is
followed after a few answers.

A timestamp without a zone is ignored: it could be any zone's, and a wrong
guess is hours of error in an order's "is it in the future". So is a zone
beyond ``±23:59`` (no zone on Earth; ``+99:59`` would shift the stamp by days).

Implausible answers are set aside, so that one answer cannot move the
estimate by years (a ``Date`` of year 9999 would refuse every order as "not
in the future", then overflow the calendar):

- an answer whose stamp is more than ``PLAUSIBLE_OFFSET`` (one day) from the
  host's clock is never used. A host whose clock is a day wrong fails
  everything else first (TLS certificates, the delivery day of every order);
  a day is also far inside the calendar, so no arithmetic on the estimate
  can overflow. Such answers are counted in ``set_aside``;
- an answer that disagrees with the others does not move the estimate on
  its own: a tie between disagreeing answers keeps the estimate where it
  was, and a majority of the newest ``keep`` is needed to move it (a clock
  that was stepped is followed once most answers say so).

``samples`` tells how many kept answers the estimate agrees with and
``disagreeing`` how many it outvoted; with ``uncertainty`` (half the width of
what the agreeing answers allow) they say how sure the estimate is.
"""

from __future__ import annotations

import collections
import datetime as dt
import math
import re
import threading
from typing import Deque, List, Optional, Tuple

from ._boundary import Response
from ._http_dates import parse_http_date

__all__ = ["ClockEstimator", "parse_exchange_timestamp", "offset_interval", "PLAUSIBLE_OFFSET"]

#: The farthest (seconds) the exchange's clock is believed to be from the host's: one day.
#: An answer whose stamp says more is set aside (``ClockEstimator.set_aside``).
PLAUSIBLE_OFFSET = 86400.0

_ISO = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d{1,9}))?\s*(Z|z|[+-]\d{2}(?::?\d{2})?)"
)

#: An interval of offsets, in seconds: (lowest, highest).
Interval = Tuple[float, float]


def parse_exchange_timestamp(text: str) -> Optional[Tuple[float, float]]:
    """(epoch seconds, resolution in seconds) of an ISO 8601 time with a zone; None otherwise."""
    match = _ISO.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    if zone in ("Z", "z"):
        shift = 0
    else:
        digits = zone[1:].replace(":", "")
        hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
        if hours > 23 or minutes > 59:
            return None  # no such zone: "+99:59" is not four days of shift
        shift = hours * 3600 + minutes * 60
        shift = -shift if zone[0] == "-" else shift
    try:
        moment = dt.datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=dt.timezone.utc
        )
    except ValueError:
        return None
    seconds = moment.timestamp() - shift
    if fraction:
        return seconds + int(fraction) / 10 ** len(fraction), 10.0 ** -len(fraction)
    return seconds, 1.0


def offset_interval(sent: float, received: float, stamp: float, resolution: float) -> Optional[Interval]:
    """The offsets (exchange minus local) one answer allows; None when the times make no sense."""
    if not received >= sent or not resolution >= 0:  # also refuses NaN
        return None
    return stamp - received, stamp + resolution - sent


def _marzullo(intervals: List[Interval], previous: Optional[Interval] = None) -> Tuple[Interval, int]:
    """The smallest interval agreeing with the most of ``intervals``, and how many agree with it.

    Ties go to the one that overlaps ``previous`` (the estimate stays where it
    was: one disagreeing answer does not move it), else to the one the newest
    agrees with.
    """
    edges = sorted([(low, 0) for low, _ in intervals] + [(high, 1) for _, high in intervals])
    best, count = 0, 0
    candidates: List[Interval] = []
    for index, (value, kind) in enumerate(edges):
        if kind == 0:
            count += 1
            region = (value, edges[index + 1][0])
            if count > best:
                best, candidates = count, [region]
            elif count == best:
                candidates.append(region)
        else:
            count -= 1
    if previous is not None and len(candidates) > 1:
        for low, high in reversed(candidates):
            if low <= previous[1] and previous[0] <= high:
                return (low, high), best
    newest_low, newest_high = intervals[-1]
    for low, high in reversed(candidates):
        if newest_low <= low and high <= newest_high:
            return (low, high), best
    return candidates[-1], best


class ClockEstimator:
    """The offset of the exchange's clock from the local one, from the answers' stamps.

    Feed it with ``observe`` after every answer; read ``offset``. Safe to
    share between threads.
    """

    def __init__(self, keep: int = 8) -> None:
        if type(keep) is not int or keep < 1:
            raise ValueError(f"keep must be a positive whole number, got {keep!r}")
        self._samples: Deque[Interval] = collections.deque(maxlen=keep)
        self._interval: Optional[Interval] = None
        self._agreeing = 0
        self._set_aside = 0
        self._last_date: Optional[str] = None
        self._last_status = -math.inf
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"ClockEstimator(offset={self.offset!r}, uncertainty={self.uncertainty!r},"
            f" samples={self.samples}, disagreeing={self.disagreeing}, set_aside={self.set_aside})"
        )

    def observe(
        self, sent: float, received: float, *, date: Optional[str] = None, timestamp: Optional[str] = None
    ) -> bool:
        """Learn from one answer: local send and receive times, its ``Date`` header and/or a ``/status`` timestamp.

        True when the answer said something usable; an answer more than
        ``PLAUSIBLE_OFFSET`` from the host's clock is set aside (False).
        """
        found: List[Interval] = []
        if date is not None:
            stamp = parse_http_date(date.strip())
            interval = None if stamp is None else offset_interval(sent, received, stamp, 1.0)
            if interval is not None:
                found.append(interval)
        if timestamp is not None:
            parsed = parse_exchange_timestamp(timestamp)
            interval = None if parsed is None else offset_interval(sent, received, *parsed)
            if interval is not None:
                found.append(interval)
        if not found:
            return False
        # Both stamps of one answer describe the same reading window: keep what both allow.
        low = max(low for low, _ in found)
        high = min(high for _, high in found)
        sample = (low, high) if low <= high else min(found, key=lambda one: one[1] - one[0])
        with self._lock:
            if not abs((sample[0] + sample[1]) / 2) <= PLAUSIBLE_OFFSET:  # also refuses NaN and infinities
                self._set_aside += 1
                return False
            self._samples.append(sample)
            self._interval, self._agreeing = _marzullo(list(self._samples), self._interval)
        return True

    def observe_status(self, sent: float, received: float, timestamp: str) -> bool:
        """``observe`` with a ``/status`` answer's ``timestamp``, at most once a second.

        A bot that polls ``/status`` in a tight loop would otherwise combine
        the samples on every call; one a second keeps the estimate as good.
        """
        if received - self._last_status < 1.0:
            return False
        self._last_status = received
        return self.observe(sent, received, timestamp=timestamp)

    def observe_response(self, sent: float, received: float, response: Response) -> bool:
        """``observe`` with the ``Date`` header of ``response`` (a ``/status`` timestamp is passed to ``observe``).

        A ``Date`` the same as the previous answer's is passed over: within
        one second it says nothing new worth its cost on every call.
        """
        date = response.header("Date")
        if date is None or date == self._last_date:
            return False
        self._last_date = date
        return self.observe(sent, received, date=date)

    @property
    def offset(self) -> Optional[float]:
        """Exchange time minus local time, in seconds; None until an answer said."""
        interval = self._interval
        return None if interval is None else (interval[0] + interval[1]) / 2

    @property
    def interval(self) -> Optional[Interval]:
        """The offsets still possible, (lowest, highest); None until known."""
        return self._interval

    @property
    def uncertainty(self) -> Optional[float]:
        """Half the width of ``interval``: the most ``offset`` can be wrong by, if the answers were honest."""
        interval = self._interval
        return None if interval is None else (interval[1] - interval[0]) / 2

    @property
    def samples(self) -> int:
        """How many of the kept answers the estimate agrees with (0 until an answer said)."""
        return self._agreeing

    @property
    def disagreeing(self) -> int:
        """How many of the kept answers the estimate outvoted."""
        with self._lock:
            return len(self._samples) - self._agreeing

    @property
    def set_aside(self) -> int:
        """How many answers were set aside as implausible: more than ``PLAUSIBLE_OFFSET`` from the host's clock."""
        return self._set_aside

    def exchange_time(self, local_now: float) -> float:
        """The exchange's time at local time ``local_now``; ``local_now`` itself while the offset is unknown."""
        offset = self.offset
        return local_now if offset is None else local_now + offset
