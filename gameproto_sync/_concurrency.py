"""What the blocking client needs of its threads: sleep, a lock with a timeout, parts in turn.

``gameproto_async/_concurrency.py`` has the same names for an event loop.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Iterable, Tuple, TypeVar

__all__ = ["sleep", "TokenLock", "run_parts"]

A = TypeVar("A")
B = TypeVar("B")

sleep = time.sleep


class TokenLock:
    """The client's one token lock, shared by every thread that uses the client."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def acquire(self, wait: float) -> bool:
        """Take the lock, waiting at most ``wait`` seconds; whether it was taken."""
        return self._lock.acquire(timeout=max(0.0, min(wait, 1e6)))

    def release(self) -> None:
        self._lock.release()


def run_parts(send: Callable[[A, B], None], parts: Iterable[Tuple[A, B]]) -> None:
    """``send`` each part, one after another (a blocking call has one thread to send with)."""
    for first, second in parts:
        send(first, second)
