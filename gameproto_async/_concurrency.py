"""What the async client needs of its event loop: sleep, a lock with a timeout, parts at once.

asyncio and trio alike, through anyio. ``gameproto_sync/_concurrency.py``
has the same names for threads.
"""

from __future__ import annotations

from typing import Awaitable, Callable, Iterable, Optional, Tuple, TypeVar

import anyio

from gameproto import _constants

__all__ = ["sleep", "TokenLock", "run_parts"]

A = TypeVar("A")
B = TypeVar("B")

sleep = anyio.sleep


class TokenLock:
    """The client's one token lock, made on first use inside the running event loop."""

    def __init__(self) -> None:
        self._lock: Optional[anyio.Lock] = None

    async def acquire(self, wait: float) -> bool:
        """Take the lock, waiting at most ``wait`` seconds; whether it was taken."""
        if self._lock is None:
            self._lock = anyio.Lock()
        with anyio.move_on_after(min(wait, 1e6)):
            await self._lock.acquire()
            return True
        return False

    def release(self) -> None:
        assert self._lock is not None
        self._lock.release()


async def run_parts(send: Callable[[A, B], Awaitable[None]], parts: Iterable[Tuple[A, B]]) -> None:
    """``send`` each part, at most ``BULK_CONCURRENCY`` at once; return when all are done."""
    limiter = anyio.CapacityLimiter(_constants.BULK_CONCURRENCY)

    async def one(first: A, second: B) -> None:
        async with limiter:
            await send(first, second)

    async with anyio.create_task_group() as group:
        for first, second in parts:
            group.start_soon(one, first, second)
