"""``game serve --replay``: a recording played by the sandbox, on a clock at ``--speed`` or a manual one.

The sandbox serves a ``ReplayExchange`` (``gameproto.simulator.replay``)
exactly as it serves the live engine: the API, the web view and the
``/_sandbox/`` clock endpoints. What the replay adds is its clock: it
starts at the recording's first poll and runs ``speed`` times as fast as
this host's (``SpeedClock``), or moves only when told (``ManualClock``).

On a running clock the server also runs the replay's player
(``ReplaySandbox.background``) beside the requests: it applies each
recorded event when the clock reaches it, a few hundred at most between
two checkpoints of the event loop. Every reading of the clock still plays
whatever is due first, so an answer always shows the book at its moment;
the player only sees to it that this is never much, however long the
bot waited and however busy the recording, and that a burst of recorded
events never holds the loop for long.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Callable, Iterable, Mapping, Optional, Union

import anyio
import anyio.lowlevel

from gameproto.simulator.replay import ReplayExchange, Tape

from ._clock import ManualClock
from ._recording import PathArg, read_recording
from ._sandbox import Sandbox

__all__ = ["SpeedClock", "ReplaySandbox", "replay_sandbox"]

logger = logging.getLogger("gameproto.server")

#: The recorded events the player applies between two checkpoints of the event loop: about 2 ms of work.
PLAY_STEP = 200
#: The longest the player sleeps before it looks at the clock again (host seconds).
PLAY_IDLE = 1.0


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


class ReplaySandbox(Sandbox):
    """The sandbox serving a replay; on a running clock it plays the recording on time (``background``)."""

    exchange: ReplayExchange

    def __init__(
        self, exchange: ReplayExchange, *, clock: Optional[ManualClock] = None, admin_token: Optional[str] = None
    ) -> None:
        super().__init__(exchange, clock=clock, admin_token=admin_token)
        self.exchange = exchange

    async def background(self) -> None:
        """Apply each recorded event as the clock reaches it, ``PLAY_STEP`` at most between two checkpoints.

        The server runs it beside the requests (``serve_exchange``). A
        manual clock moves only when told, and its moves play what they
        pass: there is nothing to do. A failure is logged and ends the
        player: the requests then play the recording as they read the clock.
        """
        exchange = self.exchange
        speed = exchange.speed
        if speed is None:
            return
        try:
            while True:
                upcoming = exchange.play_due(PLAY_STEP)
                if upcoming is None:
                    return
                ahead = upcoming - exchange.clock_time()
                if ahead <= 0:
                    await anyio.lowlevel.checkpoint()  # more is due: the requests waiting go first
                else:
                    await anyio.sleep(min(ahead / speed, PLAY_IDLE))
        except Exception as failure:  # the server goes on; the requests play what is left
            exchange.internal_errors.append(f"replay player: {type(failure).__name__}: {failure}")
            logger.warning("the replay's player stopped: %s: %s", type(failure).__name__, failure)


def replay_sandbox(
    recording: Union[PathArg, Tape],
    tokens: Union[Iterable[str], Mapping[str, str]],
    *,
    speed: Optional[float] = None,
    admin_token: Optional[str] = None,
    seed: int = 0,
    rate_limit_per_minute: Optional[int] = None,
    **options: object,
) -> ReplaySandbox:
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
    return ReplaySandbox(exchange, clock=manual, admin_token=admin_token)
