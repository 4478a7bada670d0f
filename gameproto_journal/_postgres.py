"""The journal in PostgreSQL, for a desk: several processes on several hosts write one journal.

psycopg 3, installed with the ``postgres`` extra (its install line is the
one ``gameproto._extras`` gives). Every step is one transaction whose ``statement_timeout``
and ``lock_timeout`` are the call's time left; and because a stalled server
(a stopped backend, a dead link) answers no timeout at all, each step runs
in a worker thread that the caller waits for no longer than its time left.
A worker still waiting then is abandoned, its connection discarded (closed
by the worker when it ends; never used again), so the blocking client keeps
its deadline exactly as the async one does. Records are never duplicated
when writers race: the tables' constraints decide, with
``ON CONFLICT DO NOTHING`` (see ``_sql.py``).
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, List, Optional, TypeVar

from gameproto._extras import install_hint
from gameproto.driver import signals_to_the_main_thread

from ._executor import Executor
from ._sql import SQLStore

__all__ = ["PostgresJournal"]

R = TypeVar("R")


class _Step:
    """One transaction run by a worker thread; the caller may stop waiting for it."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.abandoned = False
        self.result: Any = None
        self.error: Optional[BaseException] = None
        self.lock = threading.Lock()


class PostgresJournal(SQLStore):
    """A ``JournalStore`` in the PostgreSQL database ``conninfo`` names (its tables created when missing)."""

    placeholder = "%s"
    serial = "BIGSERIAL PRIMARY KEY"

    def __init__(
        self,
        conninfo: str,
        *,
        url: str = "",
        connect_timeout: float = 10.0,
        read_only: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        try:
            import psycopg
        except ImportError as missing:  # an extra
            raise ImportError(f"a PostgreSQL journal needs psycopg 3: {install_hint('psycopg')} ({missing})") from None
        super().__init__(clock)
        self._psycopg = psycopg
        self.conninfo = conninfo
        self.url = url or conninfo
        self.read_only = read_only
        #: Connections no step is using; a step takes one, and gives it back only if it ended in time.
        self._idle: List[Any] = []
        self._idle_lock = threading.Lock()
        if read_only:
            self._read(self._check_readable, connect_timeout)
        else:
            self._write(self._create, connect_timeout)

    def _create(self, db: Executor) -> None:
        # Two processes creating (or migrating) the tables at once: one waits for the other.
        db.run("SELECT pg_advisory_xact_lock(7266372)")
        self._prepare(db)

    def _table_exists(self, db: Executor, name: str) -> bool:
        return bool(db.rows("SELECT to_regclass(?) IS NOT NULL", (name,))[0][0])

    def _take(self, time_left: float) -> Any:
        with self._idle_lock:
            while self._idle:
                connection = self._idle.pop()
                if not connection.closed:
                    return connection
        return self._psycopg.connect(self.conninfo, connect_timeout=max(2, int(time_left + 0.999)))

    def _give(self, connection: Any) -> None:
        with self._idle_lock:
            self._idle.append(connection)

    def _transaction(self, body: Callable[[Executor], R], time_left: float, write: bool, step: _Step) -> R:
        connection = self._take(time_left)
        milliseconds = str(max(1, int(time_left * 1000)))
        try:
            with connection.transaction():
                with connection.cursor() as cursor:
                    cursor.execute("SELECT set_config('statement_timeout', %s, true)", (milliseconds,))
                    cursor.execute("SELECT set_config('lock_timeout', %s, true)", (milliseconds,))
                    if not write:
                        cursor.execute("SET TRANSACTION READ ONLY")
                    result = body(Executor(cursor, self.placeholder, self))
                    with step.lock:
                        if step.abandoned:  # the caller gave up: what it was told did not happen must not happen
                            raise TimeoutError("abandoned at the call's deadline; rolled back")
        except BaseException:
            connection.close()  # a broken (or timed-out) connection is dropped; the next step connects anew
            raise
        if step.abandoned:
            connection.close()
        else:
            self._give(connection)
        return result

    def _run(self, body: Callable[[Executor], R], time_left: float, *, write: bool) -> R:
        if write and self.read_only:
            from gameproto._errors import JournalError

            raise JournalError(f"the journal {self.url} is open read-only")
        step = _Step()

        def work() -> None:
            signals_to_the_main_thread()
            try:
                step.result = self._transaction(body, time_left, write, step)
            except BaseException as error:  # handed to the caller, who raises it
                step.error = error
            finally:
                with step.lock:
                    step.done.set()

        worker = threading.Thread(target=work, name="gameproto-journal", daemon=True)
        worker.start()
        if not step.done.wait(max(0.001, time_left)):
            with step.lock:
                if not step.done.is_set():
                    step.abandoned = True
            if step.abandoned:
                raise TimeoutError(
                    f"PostgreSQL did not answer within {time_left:.3g} s (the call's time left); the step was "
                    "abandoned and its connection discarded"
                )
        if step.error is not None:
            raise step.error
        return step.result  # type: ignore[no-any-return]

    def close(self) -> None:
        """Commit the outcomes held (within ``OUTCOME_DURABLE_WITHIN``), then close the idle connections."""
        self._stop_group_commit()
        with self._idle_lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    def __repr__(self) -> str:
        return f"<PostgresJournal {self.url.split('@')[-1]!r}>"
