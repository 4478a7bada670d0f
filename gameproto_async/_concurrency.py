"""What the async client needs of its event loop: sleep, a lock with a timeout, flows at once.

asyncio and trio alike, through anyio. ``gameproto_sync/_concurrency.py``
has the same names for threads.
"""

from __future__ import annotations

import asyncio
import signal
from types import TracebackType
from typing import Any, Awaitable, Callable, List, Optional, Sequence, Type, TypeVar, Union

import anyio
import anyio.to_thread

from gameproto.driver import SigtermSlot, Unanswered

__all__ = ["sleep", "TokenLock", "run_all", "run_blocking", "current_loop", "shielded", "SignalCover"]

R = TypeVar("R")

sleep = anyio.sleep


def shielded() -> anyio.CancelScope:
    """A scope that a cancellation does not reach: the kill switch runs even when its task is cancelled."""
    return anyio.CancelScope(shield=True)


def _asyncio_loop_or_none() -> Optional[asyncio.AbstractEventLoop]:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


# asyncio's running loop or None, without an exception to catch under trio (every call asks).
_running_asyncio_loop: Callable[[], Optional[asyncio.AbstractEventLoop]] = getattr(
    asyncio.events, "_get_running_loop", _asyncio_loop_or_none
)


def current_loop() -> object:
    """The running event loop (asyncio's loop, or trio's run): what pools and locks belong to."""
    loop = _running_asyncio_loop()
    if loop is not None:
        return loop
    import trio  # not under asyncio: under trio, the only other loop httpcore drives

    return trio.lowlevel.current_trio_token()


class _LoopWaker:
    """Wakes asyncio's loop when a signal reaches the process, whichever thread the kernel gave it to.

    Python runs a signal's handler in the main thread, when that thread next
    runs; asyncio's loop, waiting with nothing due (a bot in
    ``sleep_forever()``), wakes only for its file descriptors. A signal the
    kernel gave to another thread (an executor's, a library's) would leave the
    handler unrun and the block's orders resting. The signal module writes a
    byte to the wakeup descriptor from any thread: the loop watches its other
    end. trio sets its own; asyncio only with ``add_signal_handler``, and then
    that one is kept.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, ends: Any, previous: int) -> None:
        self._loop, self._ends, self._previous = loop, ends, previous

    @classmethod
    def start(cls, loop: asyncio.AbstractEventLoop) -> Optional[_LoopWaker]:
        import socket

        ends = socket.socketpair()
        for end in ends:
            end.setblocking(False)
        try:
            previous = signal.set_wakeup_fd(ends[1].fileno(), warn_on_full_buffer=False)
        except (ValueError, OSError):  # not the main thread after all: nothing to wake
            _close(ends)
            return None
        if previous != -1:  # the loop (add_signal_handler) or a framework wakes it already: theirs stays
            signal.set_wakeup_fd(previous)
            _close(ends)
            return None
        loop.add_reader(ends[0].fileno(), _drain, ends[0])
        return cls(loop, ends, previous)

    def stop(self) -> None:
        signal.set_wakeup_fd(self._previous)
        try:
            self._loop.remove_reader(self._ends[0].fileno())
        except (RuntimeError, ValueError):  # the loop closed first
            pass
        _close(self._ends)


def _drain(end: Any) -> None:
    try:
        while end.recv(512):
            pass
    except OSError:  # nothing more to read (or closed): the handler runs once the main thread does
        pass


def _close(ends: Any) -> None:
    for end in ends:
        end.close()


class SignalCover:
    """``cancel_all_on_exit()``'s SIGTERM handler for an async block: the signal cancels the block.

    The core's ``Termination`` decides whether to cover the block and what
    to do with the signal; this sets the handler (main thread only). A
    signal handler must not raise into the event loop, so it asks the loop
    (asyncio's ``call_soon_threadsafe``, trio's ``run_sync_soon``, both
    safe from a signal handler) to cancel the block's scope; the client
    then cancels the orders, shielded, hands the signal to what was there
    before, and puts it back.
    """

    def __init__(self) -> None:
        self._slot = SigtermSlot()
        self._scope = anyio.CancelScope()
        self._wake: Optional[_LoopWaker] = None
        loop = self._loop = current_loop()
        soon: Callable[[Callable[[], Any]], Any] = (
            loop.call_soon_threadsafe if isinstance(loop, asyncio.AbstractEventLoop) else loop.run_sync_soon  # type: ignore[attr-defined]
        )
        self._soon = soon

    @property
    def came(self) -> bool:
        return self._slot.came

    def __enter__(self) -> SignalCover:
        self._scope.__enter__()
        self._slot.take(self._interrupt)
        if self._slot.covers and isinstance(self._loop, asyncio.AbstractEventLoop):
            self._wake = _LoopWaker.start(self._loop)
        return self

    def _interrupt(self, signum: int) -> None:
        self._soon(self._scope.cancel)  # a handler must not raise into the loop: the loop cancels the block

    def restore(self) -> None:
        self._slot.restore()
        if self._wake is not None:
            self._wake.stop()
            self._wake = None

    def hand_over(self) -> None:
        """The orders are cancelled: the signal goes to what was there before (see ``Termination``)."""
        self._slot.hand_over()

    def __exit__(
        self, kind: Optional[Type[BaseException]], error: Optional[BaseException], trace: Optional[TracebackType]
    ) -> Optional[bool]:
        self.restore()
        return self._scope.__exit__(kind, error, trace)


class TokenLock:
    """The client's one token lock, made on first use inside the running event loop.

    A lock belongs to its loop: used from a new one (a second
    ``asyncio.run()``, or trio after asyncio), a new lock is made. The old
    one, held or not, died with its loop.
    """

    def __init__(self) -> None:
        self._lock: Optional[anyio.Lock] = None
        self._loop: object = None

    async def acquire(self, wait: float) -> bool:
        """Take the lock, waiting at most ``wait`` seconds; whether it was taken."""
        loop = current_loop()
        if self._lock is None or loop is not self._loop:
            self._lock = anyio.Lock()
            self._loop = loop
        with anyio.move_on_after(min(wait, 1e6)):
            await self._lock.acquire()
            return True
        return False

    def release(self) -> None:
        assert self._lock is not None
        self._lock.release()


async def run_blocking(function: Callable[[float], R], time_left: float) -> Union[R, Unanswered]:
    """``function(time_left)`` in a worker thread: the event loop goes on while it waits on I/O.

    The wait ends at ``time_left`` (``Unanswered``) or at a cancellation;
    either way the thread is abandoned, and its late result dropped.
    """
    with anyio.move_on_after(max(0.0, min(time_left, 1e6))):
        return await anyio.to_thread.run_sync(function, time_left, abandon_on_cancel=True)
    return Unanswered(f"no answer within the call's {time_left:.3g} s left")


async def run_all(drive: Callable[[Any], Awaitable[Any]], flows: Sequence[Any], limit: int) -> List[Any]:
    """Run each core flow (a ``RunAll``'s) as its own task, at most ``limit`` at once; what each returned, in order."""
    limiter = anyio.CapacityLimiter(max(1, limit))
    results: List[Any] = [None] * len(flows)

    async def one(index: int, flow: Any) -> None:
        async with limiter:
            results[index] = await drive(flow)

    async with anyio.create_task_group() as group:
        for index, flow in enumerate(flows):
            group.start_soon(one, index, flow)
    return results
