"""The sandbox's test clock: it starts at the host's time and moves only when told.

Like a Stripe test clock it only moves forward: the exchange's ledger (expired
orders, trades stamped in time order, rate-limit windows) assumes time does not
run back, so ``set`` to an earlier moment is refused.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import time
from typing import Optional

__all__ = ["ManualClock", "ClockRefused", "BACKWARDS", "MAX_STEP", "parse_duration", "parse_moment", "step_seconds"]

_UTC = dt.timezone.utc
_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
#: The furthest one advance may move the clock: a week (``set`` goes further, to a time said outright).
MAX_STEP = 7 * 86400.0
#: The latest time the clock may show (9000-01-01): dates stay printable, far from overflow.
LATEST = dt.datetime(9000, 1, 1, tzinfo=_UTC).timestamp()


class ClockRefused(ValueError):
    """A clock move the sandbox refuses: backwards, too far, or not a time at all."""


#: The words of every refusal to move the clock back, from ``advance`` and ``set`` alike.
BACKWARDS = "the test clock only moves forward (restart on a fresh --state to go back)"


def _shown(value: object) -> str:
    """``value`` as the refusal quotes it: at most 40 characters (a JSON integer may have hundreds of digits)."""
    if isinstance(value, int) and abs(value) >= 10**30:
        return "a number of that size" if value > 0 else "a negative number of that size"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _step(seconds: float, value: object) -> float:
    """``seconds`` when it is a clock advance the sandbox takes; ClockRefused saying why otherwise."""
    text = _shown(value)
    if not math.isfinite(seconds):
        raise ClockRefused(f"a clock advance is a finite number of seconds, not {text}")
    if seconds < 0:
        raise ClockRefused(f"{BACKWARDS}: cannot advance by {text}")
    if not 0 < seconds <= MAX_STEP:
        raise ClockRefused(f"a clock advance is more than 0 and at most 7 days ({MAX_STEP:g} seconds), not {text}")
    return seconds


def step_seconds(by: object) -> float:
    """The seconds of an advance's ``by``: a duration text, or a JSON number of any size (never a bool)."""
    if isinstance(by, str):
        return parse_duration(by)
    if isinstance(by, bool) or not isinstance(by, (int, float)):
        raise ClockRefused("'by' is a duration like '15m' or a number of seconds")
    if isinstance(by, int) and abs(by) > 10 * MAX_STEP:  # float() of a huge JSON integer would overflow
        return _step(-1.0 if by < 0 else 2 * MAX_STEP, by)
    return _step(float(by), by)


def parse_duration(text: str) -> float:
    """Seconds in ``15m``, ``1h30m``, ``90s``, ``2d`` or a plain number of seconds."""
    cleaned = text.strip().lower()
    sign = 1.0
    if cleaned.startswith("-"):  # parsed to say why it is refused: the clock never goes back
        sign, cleaned = -1.0, cleaned[1:].strip()
    if re.fullmatch(r"[0-9]+(?:\.[0-9]+)?", cleaned):
        seconds = float(cleaned)
    else:
        parts = _DURATION.findall(cleaned)
        if not parts or "".join(number + unit for number, unit in parts) != cleaned:
            raise ClockRefused(f"not a duration like 15m, 1h30m, 90s or 2d: {text!r}")
        seconds = sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)
    return _step(sign * seconds, text)


def parse_moment(text: str) -> float:
    """Epoch seconds of an ISO 8601 time such as ``2030-01-15T13:59Z`` (no zone: UTC)."""
    cleaned = text.strip()
    if cleaned.endswith(("Z", "z")):
        cleaned = cleaned[:-1] + "+00:00"
    try:
        moment = dt.datetime.fromisoformat(cleaned)
    except ValueError:
        raise ClockRefused(f"not an ISO 8601 time like 2030-01-15T13:59Z: {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_UTC)
    return moment.timestamp()


class ManualClock:
    """A clock for the exchange (call it for the time) that ``advance`` and ``set`` move."""

    def __init__(self, start: Optional[float] = None) -> None:
        self._now = time.time() if start is None else float(start)
        #: The seconds ``advance`` and ``set`` have moved it forward, all told (``resume`` is no move).
        self.moved = 0.0

    def __call__(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        """Move forward by ``seconds``; the new time."""
        _step(seconds, seconds)
        if self._now + seconds > LATEST:
            raise ClockRefused("the test clock goes no further than 9000-01-01")
        self._now += seconds
        self.moved += seconds
        return self._now

    def set(self, moment: float) -> float:
        """Move to ``moment`` (epoch seconds), which may not be before the clock's time."""
        if not math.isfinite(moment):
            raise ClockRefused(f"not a time: {moment!r}")
        if moment < self._now:
            raise ClockRefused(BACKWARDS)
        if moment > LATEST:
            raise ClockRefused("the test clock goes no further than 9000-01-01")
        self.moved += moment - self._now
        self._now = moment
        return self._now

    def resume(self, moment: float) -> None:
        """Show ``moment`` again, earlier or not: the time a saved sandbox had when it stopped."""
        self._now = float(moment)
