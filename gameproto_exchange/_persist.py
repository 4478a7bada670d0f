"""The sandbox's state on disk: one SQLite file (``game serve --state sandbox.db``).

What is saved: every order and fill (as ``gameproto.simulator.state`` writes
them), the last order number, the expiries still listed, the test clock, and
the trader name of each personal token (by its SHA-256, never the token).
Access tokens are not: clients exchange their personal token again after a
restart, as after any token expiry.

``save`` runs in one transaction before the server answers the request that
changed something, so what a client was told is on disk when it is told.
WAL with ``synchronous=NORMAL``: a committed transaction survives the
process being killed (``kill -9``); only a power cut may lose the last ones.
Each save writes what changed since the last one: new fills, and the orders
whose fingerprint (updated, executed, deleted) moved.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from decimal import Decimal
from typing import Any, Dict, List, Optional, Tuple

from gameproto._calls import encode_json
from gameproto.simulator import state
from gameproto.simulator.exchange import Exchange

__all__ = ["Store"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS orders (number INTEGER PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS fills (number INTEGER PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS traders (token_sha256 TEXT PRIMARY KEY, name TEXT NOT NULL);
"""

_Fingerprint = Tuple[float, Decimal, bool]


def _text(value: Any) -> str:
    return encode_json(value).decode("utf-8")


def _read(text: str) -> Any:
    return json.loads(text, parse_float=Decimal)


def _sha256(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class Store:
    """One SQLite file holding an exchange's trading state and its clock."""

    def __init__(self, path: str) -> None:
        self.path = path
        # Autocommit mode: transactions are the explicit BEGIN ... COMMIT of ``_transaction``.
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._orders: Dict[int, _Fingerprint] = {}
        self._fills = 0

    def close(self) -> None:
        self._db.close()

    # -- loading -------------------------------------------------------------------

    def load(self, exchange: Exchange) -> Optional[float]:
        """Put the saved state into ``exchange``; the saved clock, or None when the file was empty.

        Trader names follow their tokens: a personal token seen before gets its
        old name back; a new one gets a name no saved trader has.
        """
        self._names(exchange)
        meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        if "format" not in meta:
            return None
        orders = [_read(text) for (text,) in self._db.execute("SELECT data FROM orders ORDER BY number")]
        fills = [_read(text) for (text,) in self._db.execute("SELECT data FROM fills ORDER BY number")]
        exchange.load(
            {
                "format": int(meta["format"]),
                "last_number": int(meta["last_number"]),
                "orders": orders,
                "fills": fills,
                "expired": _read(meta["expired"]),
                "instance": meta.get("instance"),
            }
        )
        self._remember(exchange)
        return float(meta["clock"])

    def _names(self, exchange: Exchange) -> None:
        traders = exchange.access.traders
        saved = dict(self._db.execute("SELECT token_sha256, name FROM traders").fetchall())
        taken = set(saved.values())
        fresh = 0
        for token in list(traders):
            known = saved.get(_sha256(token))
            if known is not None:
                traders[token] = known
                continue
            while traders[token] in taken:  # a name a saved trader holds: the next free one
                fresh += 1
                traders[token] = f"trader-{len(saved) + fresh}"
            taken.add(traders[token])
        with self._transaction():
            self._db.executemany(
                "INSERT OR REPLACE INTO traders VALUES (?, ?)", [(_sha256(t), name) for t, name in traders.items()]
            )

    def _remember(self, exchange: Exchange) -> None:
        book = exchange.ledger.book
        self._orders = {number: (o.updated, o.executed, o.deleted) for number, o in book.orders.items()}
        self._fills = len(book.fills)

    # -- saving --------------------------------------------------------------------

    def save(self, exchange: Exchange, clock: float) -> None:
        """Write what changed since the last save, and the clock, in one transaction."""
        book = exchange.ledger.book
        changed: List[Tuple[int, str]] = []
        fingerprints: Dict[int, _Fingerprint] = {}
        for number, order in book.orders.items():
            mark = (order.updated, order.executed, order.deleted)
            if self._orders.get(number) != mark:
                changed.append((number, _text(state.dump_order(order))))
                fingerprints[number] = mark
        fills = [(fill.number, _text(state.dump_fill(fill))) for fill in book.fills[self._fills :]]
        meta = [
            ("format", str(state.FORMAT)),
            ("last_number", str(book.last_number)),
            ("expired", _text([[number, at] for number, at in exchange.ledger.expired.items()])),
            ("clock", repr(float(clock))),
            ("instance", exchange.instance),
        ]
        with self._transaction():
            self._db.executemany("INSERT OR REPLACE INTO orders VALUES (?, ?)", changed)
            self._db.executemany("INSERT OR REPLACE INTO fills VALUES (?, ?)", fills)
            self._db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", meta)
        self._orders.update(fingerprints)
        self._fills = len(book.fills)

    def reset(self, exchange: Exchange, clock: float) -> None:
        """Empty the saved orders and trades (the trader names stay), then save ``exchange`` as it is."""
        with self._transaction():
            self._db.execute("DELETE FROM orders")
            self._db.execute("DELETE FROM fills")
            self._db.execute("DELETE FROM meta")
        self._orders, self._fills = {}, 0
        self.save(exchange, clock)

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, rolled back when the block raises."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: Any, exc: Any, traceback: Any) -> None:
        self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")
