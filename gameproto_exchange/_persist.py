"""The sandbox's state on disk: one SQLite file (``game serve --state sandbox.db``).

What is saved: every order and fill (as ``gameproto.simulator.state`` writes
them), the last order number, the expiries still listed, the test clock, and
the trader name of each personal token (by an HMAC of its SHA-256 under a
random key kept in the file, never the token). Access tokens are not: clients
exchange their personal token again after a restart, as after any token expiry.

The file is created readable by its owner alone (0600; SQLite gives its
``-wal`` and ``-shm`` files the same mode). One server holds it at a time: an
exclusive ``flock`` taken at open and kept until ``close`` (the kernel drops
it when the process dies, ``kill -9`` included); a second server is refused,
naming the holder's pid where the system tells it.

``save`` runs in one transaction before the server answers the request that
changed something, so what a client was told is on disk when it is told; a
save that fails leaves the file as it was, and the caller puts the exchange
back as the file has it (``restore_saved``). WAL with ``synchronous=NORMAL``:
a committed transaction survives the process being killed (``kill -9``); only
a power cut may lose the last ones, and a commit costs no fsync (the WAL is
synced at its checkpoints). Each save writes what changed since the last one:
the orders the book noted as changed and the new fills, never a walk over
every order ever placed.

A file that is not a sandbox state file (another program's database, a damaged
one) is refused at open or load with a :class:`StateFileError` naming the file
and what is wrong; nothing is added to it.
"""

from __future__ import annotations

import errno
import hashlib
import hmac
import json
import os
import secrets
import sqlite3
import stat
from decimal import Decimal
from typing import Any, Dict, List, Optional, Tuple

from gameproto._calls import encode_json
from gameproto.simulator import state
from gameproto.simulator.exchange import Exchange

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no flock, one server per file is then the user's care
    fcntl = None  # type: ignore[assignment]

__all__ = ["Store", "StateFileError"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS orders (number INTEGER PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS fills (number INTEGER PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS traders (token_hmac TEXT PRIMARY KEY, name TEXT NOT NULL);
"""
#: The tables a state file holds, and their columns.
_TABLES = {
    "meta": ("key", "value"),
    "orders": ("number", "data"),
    "fills": ("number", "data"),
    "traders": ("token_hmac", "name"),
}
#: The traders table of files written before tokens were keyed: migrated at open.
_OLD_TRADERS = ("token_sha256", "name")
#: The meta keys of the trading state (a reset deletes these, never the token key).
_TRADING_KEYS = ("format", "last_number", "expired", "clock")
_MAGIC = b"SQLite format 3\x00"
#: How long a save waits for a reader of the file (the sqlite3 shell, say) to let go.
_BUSY_SECONDS = 1.0


class StateFileError(Exception):
    """A state file the sandbox cannot use; the message names the file and what is wrong."""


def _text(value: Any) -> str:
    return encode_json(value).decode("utf-8")


def _read(text: str) -> Any:
    return json.loads(text, parse_float=Decimal)


def _sha256(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _holder(fd: int) -> str:
    """`` (pid N)`` for the process holding a flock on ``fd``'s file, where /proc/locks tells it."""
    inode = str(os.fstat(fd).st_ino)
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as locks:
            for line in locks:
                fields = line.split()
                if len(fields) > 5 and fields[1] == "FLOCK" and fields[5].split(":")[-1] == inode:
                    return f" (pid {fields[4]})"
    except OSError:
        pass
    return ""


def _claim(path: str) -> int:
    """Open (creating it 0600) and lock ``path`` for this process; the descriptor holding the lock."""
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as failure:
        raise StateFileError(f"cannot open the state file {path}: {failure.strerror}") from None
    if fcntl is None:  # pragma: no cover - Windows
        return fd
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        _private(fd, path)
    except OSError as failure:
        holder = _holder(fd) if failure.errno in (errno.EWOULDBLOCK, errno.EAGAIN) else ""
        os.close(fd)
        if failure.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
            raise StateFileError(f"cannot lock the state file {path}: {failure.strerror}") from None
        raise StateFileError(
            f"the state file {path} is in use by another game serve{holder}: one server per state file "
            "(stop that one, or give this one another --state)"
        ) from None
    return fd


def _private(fd: int, path: str) -> None:
    """An older file (or one made by hand) that others may read is made its owner's alone, with its WAL."""
    mode = stat.S_IMODE(os.fstat(fd).st_mode)
    if mode & 0o077 and os.fstat(fd).st_uid == os.geteuid():
        os.fchmod(fd, mode & 0o700)
        for tail in ("-wal", "-shm"):
            try:
                os.chmod(path + tail, mode & 0o700)
            except OSError:  # not there: SQLite makes it with the file's mode
                pass


class Store:
    """One SQLite file holding an exchange's trading state and its clock, held by this process alone."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = _claim(path)
        try:
            with open(path, "rb") as head:
                magic = head.read(len(_MAGIC))
            if magic and magic != _MAGIC:
                raise self._error("is not a SQLite database (give --state a new file name)")
            try:
                # Autocommit mode: transactions are the explicit BEGIN ... COMMIT of ``_transaction``.
                self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=_BUSY_SECONDS)
                self._open()
            except sqlite3.Error as failure:
                raise self._error(f"cannot be opened as a sandbox state file: {failure}") from None
        except BaseException:
            if hasattr(self, "_db"):
                self._db.close()
            os.close(self._lock)
            raise
        self._fills = 0
        self._expired_written: Optional[Tuple[int, Any, Any]] = None

    def _error(self, what: str) -> StateFileError:
        return StateFileError(f"the state file {self.path} {what}")

    def _damaged(self, what: str) -> StateFileError:
        return self._error(f"is damaged: {what}")

    def _open(self) -> None:
        """Check the file is ours (or empty) before writing a byte to it; migrate an older one."""
        tables: Dict[str, Tuple[str, ...]] = {}
        for (name,) in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
            tables[name] = tuple(row[1] for row in self._db.execute(f'PRAGMA table_info("{name}")'))
        foreign = sorted(set(tables) - set(_TABLES))
        if foreign:
            raise self._error(
                f"is another program's SQLite database (its tables: {', '.join(foreign)}): the sandbox adds "
                "nothing to it; give --state a new file name"
            )
        for name, columns in tables.items():
            if columns != _TABLES[name] and not (name == "traders" and columns == _OLD_TRADERS):
                raise self._damaged(f"its table {name} has the columns ({', '.join(columns)}), not the sandbox's")
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        with self._transaction():
            if tables.get("traders") == _OLD_TRADERS:
                old = self._db.execute("SELECT token_sha256, name FROM traders").fetchall()
                self._db.execute("DROP TABLE traders")
            else:
                old = []
            for statement in _SCHEMA.strip().splitlines():
                self._db.execute(statement)
            found = self._db.execute("SELECT value FROM meta WHERE key = 'token_key'").fetchone()
            if found is None:
                key = secrets.token_hex(32)
                self._db.execute("INSERT INTO meta VALUES ('token_key', ?)", (key,))
            else:
                key = str(found[0])
            self._key = bytes.fromhex(key) if len(key) == 64 else key.encode()
            # An older file kept each token's bare SHA-256: keyed now, so its traders keep their names.
            self._db.executemany(
                "INSERT OR REPLACE INTO traders VALUES (?, ?)", [(self._keyed(str(h)), n) for h, n in old]
            )

    def _keyed(self, token_sha256: str) -> str:
        return hmac.new(self._key, token_sha256.encode("ascii"), hashlib.sha256).hexdigest()

    def _token_id(self, token: str) -> str:
        return self._keyed(_sha256(token))

    def close(self) -> None:
        """Close the file and let go of it (another server may open it then)."""
        try:
            self._db.close()
        finally:
            if self._lock >= 0:
                os.close(self._lock)
                self._lock = -1

    # -- loading -------------------------------------------------------------------

    def load(self, exchange: Exchange) -> Optional[float]:
        """Put the saved state into ``exchange``; the saved clock, or None when the file was empty.

        Trader names follow their tokens: a personal token seen before gets its
        old name back; a new one gets a name no saved trader has. From here on
        the exchange's book notes the orders that change, for ``save``.
        """
        exchange.ledger.book.track_changes()
        try:
            self._names(exchange)
        except sqlite3.Error as failure:
            raise self._error(f"cannot be written: {failure}") from None
        return self.restore_saved(exchange)

    def restore_saved(self, exchange: Exchange) -> Optional[float]:
        """Put the exchange's trading state back as the file has it (empty when the file is); the saved clock."""
        saved = self._saved()
        if saved is None:
            exchange.load({"format": state.FORMAT, "last_number": 0, "orders": [], "fills": [], "expired": []})
            self._fills, self._expired_written = 0, None
            return None
        trading, clock = saved
        try:
            exchange.load(trading)
        except KeyError as missing:
            raise self._damaged(f"an order or a trade has no {missing}") from None
        except (ValueError, TypeError, ArithmeticError, AttributeError) as failure:
            raise self._damaged(f"an order or a trade cannot be read ({failure})") from None
        self._fills = len(exchange.ledger.book.fills)
        self._expired_written = None
        return clock

    def _saved(self) -> Optional[Tuple[Dict[str, Any], float]]:
        try:
            meta = {str(k): str(v) for k, v in self._db.execute("SELECT key, value FROM meta").fetchall()}
            if "format" not in meta:
                if self._db.execute("SELECT EXISTS (SELECT 1 FROM orders UNION ALL SELECT 1 FROM fills)").fetchone()[0]:
                    raise self._damaged("it holds orders or trades but no 'format' in its meta table")
                return None
            missing = [key for key in _TRADING_KEYS if key not in meta]
            if missing:
                raise self._damaged(f"its meta table has no {', '.join(repr(key) for key in missing)}")
            orders = [self._row("order", n, text) for n, text in self._db.execute("SELECT * FROM orders ORDER BY 1")]
            fills = [self._row("trade", n, text) for n, text in self._db.execute("SELECT * FROM fills ORDER BY 1")]
        except sqlite3.Error as failure:
            raise self._damaged(str(failure)) from None
        try:
            number, expired, clock = int(meta["last_number"]), _read(meta["expired"]), float(meta["clock"])
            form = int(meta["format"])
        except ValueError as failure:
            raise self._damaged(f"a value of its meta table cannot be read ({failure})") from None
        if form != state.FORMAT:
            raise self._damaged(f"its format is {form}; this sandbox reads format {state.FORMAT}")
        if not isinstance(expired, list):
            raise self._damaged("its meta 'expired' is not a list")
        trading = {
            "format": form,
            "last_number": number,
            "orders": orders,
            "fills": fills,
            "expired": expired,
            "instance": meta.get("instance"),
        }
        return trading, clock

    def _row(self, kind: str, number: Any, text: Any) -> Dict[str, Any]:
        try:
            found = _read(text)
        except (ValueError, TypeError):
            raise self._damaged(f"{kind} row {number} is not JSON") from None
        if not isinstance(found, dict):
            raise self._damaged(f"{kind} row {number} is not a JSON object")
        return found

    def _names(self, exchange: Exchange) -> None:
        traders = exchange.access.traders
        saved = {str(k): str(v) for k, v in self._db.execute("SELECT token_hmac, name FROM traders").fetchall()}
        taken = set(saved.values())
        fresh = 0
        for token in list(traders):
            known = saved.get(self._token_id(token))
            if known is not None:
                traders[token] = known
                continue
            while traders[token] in taken:  # a name a saved trader holds: the next free one
                fresh += 1
                traders[token] = f"trader-{len(saved) + fresh}"
            taken.add(traders[token])
        with self._transaction():
            self._db.executemany(
                "INSERT OR REPLACE INTO traders VALUES (?, ?)",
                [(self._token_id(t), name) for t, name in traders.items()],
            )

    # -- saving --------------------------------------------------------------------

    def save(self, exchange: Exchange, clock: float) -> None:
        """Write what changed since the last save, and the clock, in one transaction.

        Costs what changed: the orders the book noted since the last save, the
        fills since then, five meta rows (the expiries still listed only when
        they moved). Raises ``sqlite3.Error`` or ``OSError`` when the file
        cannot take it; the file is then as it was before.
        """
        self._write(exchange, clock, empty_first=False)

    def reset(self, exchange: Exchange, clock: float) -> None:
        """Empty the saved orders and trades (the names stay), then save ``exchange`` as it is: one transaction."""
        self._write(exchange, clock, empty_first=True)

    def _write(self, exchange: Exchange, clock: float, *, empty_first: bool) -> None:
        ledger = exchange.ledger
        book = ledger.book
        changed: List[Tuple[int, str]] = [(o.number, _text(state.dump_order(o))) for o in book.take_changed()]
        start = 0 if empty_first else self._fills
        fills = [(fill.number, _text(state.dump_fill(fill))) for fill in book.fills[start:]]
        expired = ledger.expired
        mark = (len(expired), next(iter(expired), None), next(reversed(expired.keys()), None))
        meta = [
            ("format", str(state.FORMAT)),
            ("last_number", str(book.last_number)),
            ("clock", repr(float(clock))),
            ("instance", exchange.instance),
        ]
        if empty_first or mark != self._expired_written:
            meta.append(("expired", _text([[number, at] for number, at in expired.items()])))
        if empty_first:
            changed = [(o.number, _text(state.dump_order(o))) for o in book.orders.values()]
        with self._transaction():
            if empty_first:
                self._db.execute("DELETE FROM orders")
                self._db.execute("DELETE FROM fills")
            self._db.executemany("INSERT OR REPLACE INTO orders VALUES (?, ?)", changed)
            self._db.executemany("INSERT OR REPLACE INTO fills VALUES (?, ?)", fills)
            self._db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", meta)
        self._fills = len(book.fills)
        self._expired_written = mark

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, rolled back when the block (or the commit) fails."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: Any, exc: Any, traceback: Any) -> None:
        if exc_type is None:
            try:
                self._db.execute("COMMIT")
                return
            except BaseException:
                self._rollback()
                raise
        self._rollback()

    def _rollback(self) -> None:
        if self._db.in_transaction:
            try:
                self._db.execute("ROLLBACK")
            except sqlite3.Error:  # the failure that brought us here stands; the file is as it was
                pass
