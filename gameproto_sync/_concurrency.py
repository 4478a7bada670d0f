"""What the blocking client needs of its threads: sleep, a lock with a timeout, flows in turn.

The async client's ``_concurrency.py`` has the same three names for an
event loop; the generated client uses whichever its package has.
"""

from __future__ import annotations

import contextlib
import threading
import time
from types import TracebackType
from typing import Any, Callable, List, Optional, Sequence, Type, TypeVar

from gameproto.driver import SigtermSlot
from gameproto.risk import Terminated

__all__ = ["sleep", "TokenLock", "run_all", "run_blocking", "shielded", "SignalCover"]

Result = TypeVar("Result")


def run_all(drive: Callable[[Any], Any], flows: Sequence[Any], limit: int) -> List[Any]:
    """Run each core flow (a ``RunAll``'s), one after another: a blocking call runs from its own thread alone."""
    return [drive(flow) for flow in flows]


def shielded() -> contextlib.nullcontext[None]:
    """Nothing to shield from in a thread: the async client's scope that cancellation does not reach."""
    return contextlib.nullcontext()


def run_blocking(function: Callable[[float], Result], time_left: float) -> Result:
    """``function(time_left)``, here: a blocking client may wait on I/O in its caller's thread
    (the function bounds its own waits by ``time_left``)."""
    return function(time_left)


class TokenLock:
    """The client's one token lock, shared by every thread that uses the client."""

    __slots__ = ("_acquire", "release")

    def __init__(self) -> None:
        lock = threading.Lock()
        self._acquire = lock.acquire
        self.release = lock.release

    def acquire(self, wait: float) -> bool:
        """Take the lock, waiting at most ``wait`` seconds (never forever); whether it was taken."""
        return self._acquire(timeout=max(0.0, min(wait, 1e6)))


sleep = time.sleep


class SignalCover:
    """``cancel_all_on_exit()``'s SIGTERM handler for a blocking block: the signal raises into the block.

    The core's ``Termination`` decides whether to cover the block and what
    to do with the signal; this sets the handler (main thread only), raises
    ``Terminated`` where the block runs, as Ctrl-C raises
    ``KeyboardInterrupt``, so that the client cancels the orders, then hands
    the signal to what was there before, and puts it back.
    """

    def __init__(self) -> None:
        self._slot = SigtermSlot()

    @property
    def came(self) -> bool:
        return self._slot.came

    def __enter__(self) -> SignalCover:
        self._slot.take(self._interrupt)
        return self

    @staticmethod
    def _interrupt(signum: int) -> None:
        raise Terminated(signum)  # in the main thread, wherever the block is: as Ctrl-C raises KeyboardInterrupt

    def restore(self) -> None:
        self._slot.restore()

    def hand_over(self) -> None:
        """The orders are cancelled: the signal goes to what was there before (see ``Termination``)."""
        self._slot.hand_over()

    def __exit__(
        self, kind: Optional[Type[BaseException]], error: Optional[BaseException], trace: Optional[TracebackType]
    ) -> None:
        self.restore()
