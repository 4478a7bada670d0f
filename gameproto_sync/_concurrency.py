"""What the blocking client needs of its threads: sleep, a lock with a timeout, flows in turn.

The async client's ``_concurrency.py`` has the same three names for an
event loop; the generated client uses whichever its package has.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any, Callable, List, Sequence, TypeVar

__all__ = ["sleep", "TokenLock", "run_all", "run_blocking", "shielded"]

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
