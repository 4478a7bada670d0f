"""The journal in PostgreSQL, for a desk: several processes on several hosts write one journal.

psycopg 3, installed with the ``postgres`` extra (``pip install
"psycopg[binary]>=3.1"``). Every write is one transaction whose
``statement_timeout`` and ``lock_timeout`` are the call's time left, so a
stalled server cannot hold a call past its deadline. Records are never
duplicated when writers race: the tables' constraints decide, with
``ON CONFLICT DO NOTHING`` (see ``_sql.py``).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Optional

from gameproto._extras import install_hint

from ._sql import Executor, SQLStore

__all__ = ["PostgresJournal"]


class PostgresJournal(SQLStore):
    """A ``JournalStore`` in the PostgreSQL database ``conninfo`` names (its tables created when missing)."""

    placeholder = "%s"
    serial = "BIGSERIAL PRIMARY KEY"

    def __init__(self, conninfo: str, *, url: str = "", connect_timeout: float = 10.0) -> None:
        try:
            import psycopg
        except ImportError as missing:  # an extra
            raise ImportError(f"a PostgreSQL journal needs psycopg 3: {install_hint('psycopg')} ({missing})") from None
        super().__init__()
        self._psycopg = psycopg
        self.conninfo = conninfo
        self.url = url or conninfo
        self._db: Optional[Any] = None
        with self._locked(connect_timeout) as db:
            # Two processes creating the tables at once: one waits for the other.
            db.run("SELECT pg_advisory_xact_lock(7266372)")
            self._create_schema(db)

    def _connection(self, time_left: float) -> Any:
        if self._db is None or self._db.closed:
            self._db = self._psycopg.connect(self.conninfo, connect_timeout=max(2, int(time_left + 0.999)))
        return self._db

    @contextmanager
    def _transaction(self, time_left: float) -> Iterator[Executor]:
        connection = self._connection(time_left)
        milliseconds = str(max(1, int(time_left * 1000)))
        try:
            with connection.transaction():
                with connection.cursor() as cursor:
                    cursor.execute("SELECT set_config('statement_timeout', %s, true)", (milliseconds,))
                    cursor.execute("SELECT set_config('lock_timeout', %s, true)", (milliseconds,))
                    yield Executor(cursor, self.placeholder)
        except self._psycopg.OperationalError:
            # A broken connection is dropped; the next call connects anew.
            connection.close()
            raise

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()

    def __repr__(self) -> str:
        return f"<PostgresJournal {self.url.split('@')[-1]!r}>"
