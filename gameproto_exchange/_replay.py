"""``game serve --replay``: a recording played by the sandbox, on a clock at ``--speed`` or a manual one.

The sandbox serves a ``ReplayExchange`` (``gameproto.simulator.replay``)
exactly as it serves the live engine: the API, the web view and the
``/_sandbox/`` clock endpoints. What the replay adds is its clock: it
starts at the recording's first poll and runs ``speed`` times as fast as
this host's (``SpeedClock``), or moves only when told (``ManualClock``).
"""

from __future__ import annotations

import math
import time
from typing import Callable, Iterable, Mapping, Optional, Union

from gameproto.simulator.replay import ReplayExchange, Tape

from ._clock import ManualClock
from ._recording import PathArg, read_recording
from ._sandbox import Sandbox

__all__ = ["SpeedClock", "replay_sandbox"]


class SpeedClock:
    """Epoch seconds from ``start``, running ``speed`` times as fast as the host's monotonic clock."""

    def __init__(self, start: float, speed: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        if isinstance(speed, bool) or not isinstance(speed, (int, float)) or not (math.isfinite(speed) and speed > 0):
            raise ValueError(f"speed must be a number above 0, got {speed!r}")
        self.start = float(start)
        self.speed = float(speed)
        self._monotonic = monotonic
        self._began = monotonic()

    def __call__(self) -> float:
        return self.start + (self._monotonic() - self._began) * self.speed

    def schedule(self, monotonic: float) -> float:
        """Where the replayed clock is due at the host's ``monotonic`` reading."""
        return self.start + (monotonic - self._began) * self.speed


def replay_sandbox(
    recording: Union[PathArg, Tape],
    tokens: Union[Iterable[str], Mapping[str, str]],
    *,
    speed: Optional[float] = None,
    admin_token: Optional[str] = None,
    seed: int = 0,
    rate_limit_per_minute: Optional[int] = None,
    **options: object,
) -> Sandbox:
    """A sandbox replaying ``recording``: at ``speed`` (None: on a manual clock the admin endpoints move)."""
    tape = recording if isinstance(recording, Tape) else read_recording(recording)
    manual: Optional[ManualClock] = None
    clock: Callable[[], float]
    if speed is None:
        manual = ManualClock(tape.start)
        clock = manual
    else:
        clock = SpeedClock(tape.start, speed)
    extra = dict(options)
    if rate_limit_per_minute is not None:
        extra["rate_limit_per_minute"] = rate_limit_per_minute
    exchange = ReplayExchange(tape, tokens, clock=clock, speed=speed, seed=seed, **extra)  # type: ignore[arg-type]
    exchange.now()  # the book as it stood at the recording's start
    return Sandbox(exchange, clock=manual, admin_token=admin_token)
