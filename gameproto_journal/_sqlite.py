"""The journal in one SQLite file: the standard library's ``sqlite3``, WAL, ``synchronous=FULL``.

Durability: in WAL mode ``synchronous=FULL`` makes SQLite fsync the
write-ahead log at every commit, so an intent committed before its request
leaves survives a power loss, not only a crash of the process (with
``NORMAL``, the default of many WAL setups, the last commits before a power
loss may be lost; the file is never corrupt either way). The cost is one
fsync per commit, and one commit per order (its outcome rides on the
next write or the group commit: ``SQLStore.settle_soon``): a fraction of a
millisecond on an SSD with a write-back-safe cache, several milliseconds on
a spinning disk or a network volume (see ``benchmarks/journal.py``).

Several processes on one host may share the file (WAL lets readers go on
while one writes); writers wait for each other at most the call's time left.
A read is a deferred transaction: it never takes the write lock (unless this
process holds outcomes, which it commits first), so an
export never holds a bot's order back. A journal opened ``read_only`` (a
file the process may not write) is read, never changed.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from typing import Callable, TypeVar
from urllib.parse import quote

from gameproto._errors import InvalidArgumentError, JournalError

from ._executor import Executor
from ._sql import SQLStore

__all__ = ["SQLiteJournal"]

R = TypeVar("R")


class SQLiteJournal(SQLStore):
    """A ``JournalStore`` in the SQLite file at ``path`` (made with its tables when missing; its folder must exist)."""

    placeholder = "?"
    serial = "INTEGER PRIMARY KEY"

    def __init__(
        self, path: str, *, url: str = "", read_only: bool = False, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(clock)
        self.path = path
        self.url = url or f"sqlite:///{path}"
        self.read_only = read_only
        self._lock = threading.Lock()
        #: The busy timeout set on the connection, in milliseconds (0: none set yet).
        self._busy_ms = 0
        if path != ":memory:":
            # The folder is not made: a typo in it would be a new, empty journal, unnoticed.
            folder = os.path.dirname(os.path.abspath(path))
            if not os.path.isdir(folder):
                raise InvalidArgumentError(
                    f"journal {self.url}: the folder {folder} does not exist (a typo? make it first: mkdir -p {folder})"
                )
            if read_only and not os.path.exists(path):
                raise JournalError(f"the journal {self.url}: no such file")
        # One connection, used by one thread at a time (the store's lock); autocommit
        # mode, so that each write is the explicit BEGIN IMMEDIATE ... COMMIT below.
        if read_only:
            target = "file:" + quote(os.path.abspath(path)) + "?mode=ro"
            self._db = sqlite3.connect(target, timeout=30.0, isolation_level=None, check_same_thread=False, uri=True)
            self._read(self._check_readable, 30.0)
            return
        self._db = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._write(self._prepare, 30.0)

    def _table_exists(self, db: Executor, name: str) -> bool:
        return bool(db.rows("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)))

    def _run(self, body: Callable[[Executor], R], time_left: float, *, write: bool) -> R:
        if write and self.read_only:
            raise JournalError(f"the journal {self.url} is open read-only")
        if not self._lock.acquire(timeout=max(0.001, time_left)):
            raise TimeoutError(f"the journal stayed busy for {time_left:.1f} s (the call's time left)")
        try:
            wanted = max(1, int(time_left * 1000))
            # Never longer than the time left; set again only when the one set would give up much earlier
            # (a statement less a step: the calls of one deadline come with about the same time left).
            if not wanted * 0.8 <= self._busy_ms <= wanted:
                self._db.execute(f"PRAGMA busy_timeout = {wanted}")
                self._busy_ms = wanted
            cursor = self._db.cursor()
            # A write takes the write lock at once (no deadlock upgrading a read); a read never takes it.
            cursor.execute("BEGIN IMMEDIATE" if write else "BEGIN DEFERRED")
            try:
                result = body(Executor(cursor, self.placeholder, self))
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
            else:
                cursor.execute("COMMIT")
            finally:
                cursor.close()
            return result
        finally:
            self._lock.release()

    def close(self) -> None:
        """Commit the outcomes held (within ``OUTCOME_DURABLE_WITHIN``), then close the connection."""
        self._stop_group_commit()
        with self._lock:
            self._db.close()

    def __repr__(self) -> str:
        return f"<SQLiteJournal {self.path!r}>"
