"""Outcomes held to commit later, and the group commit that commits them within the bound.

An order's intent is committed before its request leaves; its outcome may
wait (``reconcile`` recovers one a crash loses). The store hands outcomes
here (``hold``); its next transaction takes them (``take``) and commits them
with its own work, and a thread of its own, the group commit, commits them
``GROUP_COMMIT_AFTER`` after the first was held when no transaction came, so
that every outcome is durable within ``OUTCOME_DURABLE_WITHIN``. At close and
at the process's exit what is held is committed too.
"""

from __future__ import annotations

import atexit
import functools
import logging
import threading
import weakref
from typing import Callable, List, Optional, Tuple

from gameproto._journal_records import OUTCOME_DURABLE_WITHIN, Outcome
from gameproto.driver import signals_to_the_main_thread

__all__ = ["HeldOutcomes", "GROUP_COMMIT_AFTER"]

logger = logging.getLogger("gameproto.journal")

#: The group commit of held outcomes starts this long after the first was held, and is given the rest of
#: ``OUTCOME_DURABLE_WITHIN`` to end: an outcome is durable within the bound unless the database stalls.
GROUP_COMMIT_AFTER = OUTCOME_DURABLE_WITHIN / 2


def _flush_at_exit(held: weakref.ref[HeldOutcomes]) -> None:
    found = held()
    if found is not None and not found.closing:
        found.stop()


class HeldOutcomes:
    """One store's held outcomes; ``flush(time_left)`` is the store's commit of what is held then."""

    def __init__(self, clock: Callable[[], float], flush: Callable[[float], None], url: Callable[[], str]) -> None:
        self._clock = clock
        self._flush = flush
        self._url = url  # the store's, for the log (a store learns its URL after its base is made)
        # The outcomes, and when the first of them was held. The condition guards only these (never held
        # during I/O), so holding an outcome never waits.
        self._held: List[Outcome] = []
        self._since = 0.0
        self._changed = threading.Condition(threading.Lock())
        self._thread: Optional[threading.Thread] = None
        #: Whether the group commit waits for an outcome to be held (and only then must be woken).
        self._idle = False
        #: When an outcome was last held (the group commit stays awake a while after).
        self._last_held = float("-inf")
        self._at_exit: Optional[Callable[[], None]] = None
        self.closing = False

    def hold(self, outcomes: List[Outcome], since: float) -> None:
        """Hold ``outcomes`` (first, before any held later), held since ``since``."""
        with self._changed:
            self._since = min(since, self._since) if self._held else since
            self._held = outcomes + self._held  # outcomes held earlier are written first
            self._last_held = max(self._last_held, since)
            if self._idle:
                # Only a group commit waiting for work is woken: a wake hands the thread the interpreter,
                # a cost an order must not pay each time (one waiting for a due time looks again by itself).
                self._changed.notify_all()

    def take(self) -> Tuple[List[Outcome], float]:
        """The outcomes held now and since when, no longer held (``hold`` them again if they are not committed)."""
        with self._changed:
            held, since = self._held, self._since
            self._held = []
        return held, since

    def count(self) -> int:
        with self._changed:
            return len(self._held)

    def wake(self) -> None:
        """Have the group commit look at the clock again (after a test moved its injected clock)."""
        with self._changed:
            self._changed.notify_all()

    def start(self) -> None:
        """Start the group commit (once), and commit what is held at the process's exit."""
        if self._thread is not None:
            return
        with self._changed:
            if self._thread is None and not self.closing:
                self._thread = threading.Thread(target=self._run, name="gameproto-journal-commit", daemon=True)
                self._thread.start()
                # A process that ends without closing the store still commits what is held.
                self._at_exit = functools.partial(_flush_at_exit, weakref.ref(self))
                atexit.register(self._at_exit)

    def _run(self) -> None:
        """The group commit: the held outcomes, ``GROUP_COMMIT_AFTER`` after the first was held, and at close."""
        signals_to_the_main_thread()
        while True:
            with self._changed:
                while not self.closing:
                    if self._held:
                        due = self._since + GROUP_COMMIT_AFTER - self._clock()
                        if due <= 0:
                            break
                        self._changed.wait(min(due, GROUP_COMMIT_AFTER))
                    elif self._last_held + GROUP_COMMIT_AFTER > self._clock():
                        # Outcomes came lately, so more are coming: look again by then, unwoken (a busy bot's
                        # next write usually carries them first).
                        self._changed.wait(GROUP_COMMIT_AFTER)
                    else:
                        self._idle = True
                        self._changed.wait()
                        self._idle = False
                if self.closing:
                    return
            try:
                self._flush(OUTCOME_DURABLE_WITHIN - GROUP_COMMIT_AFTER)
            except Exception as error:  # the outcomes stay held; tried again, and reconcile recovers them
                logger.warning(
                    "journal (%s): could not commit the held outcomes: %s: %s", self._url(), type(error).__name__, error
                )
                with self._changed:
                    if not self.closing:
                        self._changed.wait(GROUP_COMMIT_AFTER)

    def stop(self, time_left: float = OUTCOME_DURABLE_WITHIN) -> None:
        """At close: stop the group commit and commit what is held (a failure is logged: reconcile recovers it)."""
        with self._changed:
            self.closing = True
            self._changed.notify_all()
            thread = self._thread
        if self._at_exit is not None:
            atexit.unregister(self._at_exit)
        if thread is not None and thread is not threading.current_thread():
            thread.join(time_left)
        try:
            self._flush(time_left)
        except Exception as error:
            logger.warning(
                "journal (%s): outcomes left to reconcile at close: %s: %s", self._url(), type(error).__name__, error
            )
