"""A client's clocks following a replay's: ``game serve --replay`` runs its clock at ``--speed``.

A replaying exchange says so in ``/status`` (``replay: {"speed": 100, ...}``,
``speed`` null on a manual clock). From then on the session's clocks are the
replay's: its wall clock is the exchange's time as that answer gave it, run
on at ``speed`` by the host's monotonic clock, and its monotonic clock runs
at ``speed`` too, so that token lifetimes, deadlines' budget windows and the
exchange-clock estimate all count replayed seconds; a wait of ``s`` replayed
seconds is ``s / speed`` of the host's (``host_seconds``). A manual clock
counts as speed 1 between answers: each answer's ``Date`` corrects it.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any, Callable, Optional

from ._clock import ClockEstimator, parse_exchange_timestamp

__all__ = ["FollowedClock", "replay_speed", "follow_replay"]


def replay_speed(status: Any) -> Optional[float]:
    """The pace a ``/status`` answer says the exchange replays at (1 for a manual clock); None: no replay."""
    replay = status.get("replay") if isinstance(status, dict) else None
    if not isinstance(replay, dict):
        return None
    speed = replay.get("speed")
    if isinstance(speed, bool) or not isinstance(speed, (int, float)) or not (math.isfinite(speed) and speed > 0):
        return 1.0
    return float(speed)


class FollowedClock:
    """The host's clocks, or once ``follow`` is told, a replay's: anchored at an answer, run at its speed."""

    def __init__(self, monotonic: Callable[[], float], wall: Callable[[], float]) -> None:
        self.host_monotonic = monotonic
        self.host_wall = wall
        #: The replay's speed once followed; None while the clocks are the host's.
        self.speed: Optional[float] = None
        self._host_anchor = 0.0
        self._monotonic_anchor = 0.0
        self._wall_anchor = 0.0

    def follow(self, speed: float, exchange_time: float) -> bool:
        """Run at ``speed`` from ``exchange_time`` (the exchange's time now); whether anything changed."""
        if self.speed == speed:
            return False
        host = self.host_monotonic()
        self._monotonic_anchor = self.monotonic()  # the monotonic clock goes on from where it was
        self._host_anchor = host
        self._wall_anchor = exchange_time
        self.speed = speed
        return True

    def monotonic(self) -> float:
        if self.speed is None:
            return self.host_monotonic()
        return self._monotonic_anchor + (self.host_monotonic() - self._host_anchor) * self.speed

    def wall(self) -> float:
        if self.speed is None:
            return self.host_wall()
        return self._wall_anchor + (self.host_monotonic() - self._host_anchor) * self.speed

    def host_seconds(self, seconds: float) -> float:
        """How long the host waits for ``seconds`` of this clock."""
        return seconds if self.speed is None else seconds / self.speed


def follow_replay(session: Any, status: Any, stamp: str) -> bool:
    """A ``/status`` answer of a replaying exchange: the session's clocks become the replay's; whether they changed.

    ``session`` is the client's ``Session`` (its ``clock``, ``wall_clock``,
    ``exchange_clock`` and ``replayed``); what its estimator had learnt was
    of the host's clock, so it starts again from the answer's time.
    """
    speed = replay_speed(status)
    if speed is None:
        return False  # the usual exchange: its timestamp is left to the estimator, parsed once a second
    parsed = parse_exchange_timestamp(stamp)
    if parsed is None:
        return False
    if session.replayed is None:
        session.replayed = FollowedClock(session.clock, session.wall_clock)
    if not session.replayed.follow(speed, parsed[0]):
        return False
    session.clock, session.wall_clock = session.replayed.monotonic, session.replayed.wall
    session.exchange_clock = ClockEstimator()
    now = session.wall_clock()
    stamped = dt.datetime.fromtimestamp(parsed[0], dt.timezone.utc).isoformat()
    session.exchange_clock.observe(now, now, timestamp=stamped)
    return True
