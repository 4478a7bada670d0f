"""One transaction's cursor as a store's statements use it: the dialect's placeholders, chunked ``IN`` lists.

SQLite and PostgreSQL share every statement of ``_sql``; this is where the
two differ in how a statement is sent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, List, Sequence, Tuple

if TYPE_CHECKING:  # the store that counts the rows read; it imports this module
    from ._sql import SQLStore

__all__ = ["Executor"]


#: Ids per ``IN (...)`` list: under every driver's parameter limit.
_CHUNK = 500


class Executor:
    """One transaction's cursor, with the dialect's placeholders put in; counts the rows it fetched."""

    def __init__(self, cursor: Any, placeholder: str, store: SQLStore) -> None:
        self.cursor = cursor
        self.placeholder = placeholder
        self.store = store

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        if self.placeholder != "?":
            sql = sql.replace("?", self.placeholder)
        if params:
            self.cursor.execute(sql, tuple(params))
        else:  # no parameters: a "%" in the text is a "%" (psycopg reads placeholders only when given some)
            self.cursor.execute(sql)
        return int(self.cursor.rowcount or 0)

    def rows(self, sql: str, params: Sequence[Any] = ()) -> List[Tuple[Any, ...]]:
        self.run(sql, params)
        found = [tuple(row) for row in self.cursor.fetchall()]
        self.store.rows_read += len(found)
        return found

    def rows_in(self, sql: str, values: Sequence[Any], params: Sequence[Any] = ()) -> List[Tuple[Any, ...]]:
        """``sql`` with its ``IN ({})`` filled by ``values``, a chunk at a time (nothing read for none)."""
        found: List[Tuple[Any, ...]] = []
        for start in range(0, len(values), _CHUNK):
            chunk = list(values[start : start + _CHUNK])
            found += self.rows(sql.format(", ".join("?" for _ in chunk)), [*params, *chunk])
        return found
