"""The journal in one SQLite file: the standard library's ``sqlite3``, WAL, ``synchronous=FULL``.

Durability: in WAL mode ``synchronous=FULL`` makes SQLite fsync the
write-ahead log at every commit, so an intent committed before its request
leaves survives a power loss, not only a crash of the process (with
``NORMAL``, the default of many WAL setups, the last commits before a power
loss may be lost; the file is never corrupt either way). The cost is one
fsync per commit: a fraction of a millisecond on an SSD with a
write-back-safe cache, several milliseconds on a spinning disk or a network
volume (see ``benchmarks/journal.py``).

Several processes on one host may share the file (WAL lets readers go on
while one writes); writers wait for each other at most the call's time left.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import contextmanager
from typing import Iterator

from gameproto._errors import InvalidArgumentError

from ._sql import Executor, SQLStore

__all__ = ["SQLiteJournal"]


class SQLiteJournal(SQLStore):
    """A ``JournalStore`` in the SQLite file at ``path`` (created with its tables when missing)."""

    placeholder = "?"
    serial = "INTEGER PRIMARY KEY"

    def __init__(self, path: str, *, url: str = "") -> None:
        super().__init__()
        self.path = path
        self.url = url or f"sqlite:///{path}"
        if path != ":memory:":
            # The folder is not made: a typo in it would be a new, empty journal, unnoticed.
            folder = os.path.dirname(os.path.abspath(path))
            if not os.path.isdir(folder):
                raise InvalidArgumentError(
                    f"journal {self.url}: the folder {folder} does not exist (a typo? make it first: mkdir -p {folder})"
                )
        # One connection, used by one thread at a time (the store's lock); autocommit
        # mode, so that each write is the explicit BEGIN IMMEDIATE ... COMMIT below.
        self._db = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        with self._locked(30.0) as db:
            self._create_schema(db)

    @contextmanager
    def _transaction(self, time_left: float) -> Iterator[Executor]:
        self._db.execute(f"PRAGMA busy_timeout = {max(1, int(time_left * 1000))}")
        cursor = self._db.cursor()
        cursor.execute("BEGIN IMMEDIATE")
        try:
            yield Executor(cursor, self.placeholder)
        except BaseException:
            cursor.execute("ROLLBACK")
            raise
        else:
            cursor.execute("COMMIT")
        finally:
            cursor.close()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __repr__(self) -> str:
        return f"<SQLiteJournal {self.path!r}>"
