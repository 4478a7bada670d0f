"""The SIGTERM handler a ``cancel_all_on_exit()`` block takes, and gives back: one way for both drivers.

``Termination`` decides (whether to cover the block, where the signal goes
once the orders are cancelled); this carries its decisions out with the
``signal`` module: what was there before, the handler set and put back, the
signal handed over. Setting a handler is process state, not I/O. The drivers
differ only in what their handler does when the signal comes: the blocking
one raises into the block, the async one asks its event loop to cancel the
block's scope.
"""

from __future__ import annotations

import signal
import threading
import warnings
from types import FrameType
from typing import Any, Callable, Optional

from ._cancel_all import Terminated, Termination

__all__ = ["SigtermSlot", "signals_to_the_main_thread"]


def _previous_kind(previous: Any) -> str:
    """What ``signal.getsignal`` answered, in the core's words (``Termination``)."""
    if previous is None:
        return "unknown"  # set from C, not from Python: it cannot be put back
    if previous == signal.SIG_DFL:
        return "default"
    if previous == signal.SIG_IGN:
        return "ignored"
    return "handler"


def signals_to_the_main_thread() -> None:
    """Called first in a thread of the project's own: SIGTERM and SIGINT are never delivered to it.

    The kernel hands a process's signal to any thread that does not block it. Python runs the
    handler in the main thread alone, and only once the main thread wakes: one asleep in
    ``time.sleep`` or an event loop's wait with nothing due would not see a SIGTERM that reached
    a journal's or a watchdog's thread until it woke for some other reason, and the orders of a
    ``cancel_all_on_exit()`` block would stay in the book.
    """
    block = getattr(signal, "pthread_sigmask", None)
    if block is not None:  # POSIX; Windows has no thread signal masks (nor SIGTERM from outside)
        block(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})


class SigtermSlot:
    """SIGTERM's handler for one block: what was there, the block's own while it runs, then the old one."""

    def __init__(self) -> None:
        main = threading.current_thread() is threading.main_thread()
        self._previous: Any = signal.getsignal(signal.SIGTERM) if main else None
        self.termination = Termination(_previous_kind(self._previous) if main else "unknown", main)
        self._frame: Optional[FrameType] = None
        self._installed = False

    @property
    def came(self) -> bool:
        """Whether the signal came while the block ran."""
        return self.termination.came

    @property
    def covers(self) -> bool:
        """Whether the block's handler is set (main thread, over a handler that can be put back)."""
        return self.termination.covers

    def take(self, interrupt: Callable[[int], None]) -> None:
        """Warn when only exceptions are covered; else set the handler, which calls ``interrupt(signum)``
        the first time the signal comes (a second one must not stop the cancelling)."""
        if self.termination.warning:
            # Said where the user's ``with api.cancel_all_on_exit():`` is: take, the driver's enter, the client's.
            warnings.warn(self.termination.warning, RuntimeWarning, stacklevel=5)
        if self.termination.covers:
            signal.signal(signal.SIGTERM, self._handle(interrupt))
            self._installed = True

    def _handle(self, interrupt: Callable[[int], None]) -> Callable[[int, Optional[FrameType]], None]:
        def handle(signum: int, frame: Optional[FrameType]) -> None:
            self._frame = frame
            if self.termination.signalled():
                interrupt(signum)

        return handle

    def restore(self) -> None:
        """Put back what was there before the block (once)."""
        if self._installed:
            self._installed = False
            signal.signal(signal.SIGTERM, self._previous)

    def hand_over(self) -> None:
        """The orders are cancelled: the signal goes to what was there before (see ``Termination``)."""
        action = self.termination.hand_over()
        self.restore()
        if action == "default":
            signal.raise_signal(signal.SIGTERM)  # the default: the process ends here, status 143
        if action:
            if action == "handler":
                self._previous(signal.SIGTERM, self._frame)
            raise Terminated(signal.SIGTERM)
