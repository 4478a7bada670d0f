"""A market recording on disk: SQLite (the standard library's), one transaction per poll, versioned.

The format (``FORMAT``, version ``VERSION``), documented in docs/backtesting.md:

==============  ==========================================================================
``meta``        ``key``/``value`` text: ``format`` (``gameproto-recording``), ``version``,
                ``source`` (the exchange's URL), ``market_zone``, ``created``
``polls``       one row a poll: ``poll``, ``exchange_time`` and ``local_time`` (epoch
                seconds: the exchange's clock, and the recorder's when it polled),
                ``session`` (each start of the recorder is a session)
``levels``      each change of the public book: ``poll``, ``time`` (when the exchange
                says the contract's book changed, at most the poll's exchange time),
                ``contract``, ``minutes``, ``side``, ``price``, ``volume`` (decimal text;
                ``0`` when the level is gone)
``trades``      each public trade once: ``trade_id``, ``poll``, ``time``, ``body`` (the
                trade as ``GET /trades`` listed it, JSON)
``ltp``         each change of a last traded price: ``poll``, ``contract``, ``price``,
                ``volume``, ``timestamp``
``sessions``    ``session``, ``started`` (local epoch seconds), ``source``
==============  ==========================================================================

Only changes are written, so the file grows with what moves, not with the
polls (a poll that saw nothing new adds one ``polls`` row). The journal is
in WAL mode and each poll is one commit: a recorder killed at any moment
loses at most the poll it was writing, and starting it again on the same
file resumes the recording (the next poll is diffed against the book as
the file last knew it).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from gameproto._calls import encode_json
from gameproto.simulator.tape import LevelChange, LevelKey, Tape, TapeTrade, book_changes, level_volumes, tape_trade

__all__ = ["FORMAT", "VERSION", "RecordingError", "RecordingWriter", "RecordingInfo", "read_recording", "info"]

FORMAT = "gameproto-recording"
VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (session INTEGER PRIMARY KEY, started REAL NOT NULL, source TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS polls (
    poll INTEGER PRIMARY KEY, exchange_time REAL NOT NULL, local_time REAL NOT NULL, session INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS levels (
    poll INTEGER NOT NULL, time REAL NOT NULL, contract TEXT NOT NULL, minutes INTEGER NOT NULL,
    side TEXT NOT NULL, price TEXT NOT NULL, volume TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS trades (
    trade_id TEXT PRIMARY KEY, poll INTEGER NOT NULL, time REAL NOT NULL, body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ltp (
    poll INTEGER NOT NULL, contract TEXT NOT NULL, price TEXT NOT NULL, volume TEXT NOT NULL, timestamp TEXT
);
"""


#: Where a recording is: a path as text or a ``pathlib.Path``.
PathArg = Union[str, "os.PathLike[str]"]


class RecordingError(ValueError):
    """A file that is not a recording this version reads, or a recording that cannot be written."""


def _text(number: Decimal) -> str:
    """A decimal as the file keeps it: no exponent, no trailing zeros (``12.5``, ``0``)."""
    normal = number.normalize()
    return format(normal, "f") if normal != 0 else "0"


def _connect(path: str) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None)  # transactions are begun by hand
    connection.execute("PRAGMA journal_mode=WAL")
    # WAL with NORMAL: a commit survives the process being killed (not a power cut), at a poll's cost.
    connection.execute("PRAGMA synchronous=NORMAL")
    return connection


def _meta(connection: sqlite3.Connection) -> Dict[str, str]:
    try:
        return dict(connection.execute("SELECT key, value FROM meta").fetchall())
    except sqlite3.DatabaseError as failure:
        raise RecordingError(f"not a gameproto recording ({failure})") from None


def _check(meta: Mapping[str, str], path: str) -> None:
    if meta.get("format") != FORMAT:
        raise RecordingError(f"{path} is not a gameproto recording (no format {FORMAT!r} in its meta table)")
    if meta.get("version") != str(VERSION):
        raise RecordingError(
            f"{path} is a recording of format version {meta.get('version')}; this gameproto reads version {VERSION}"
        )


class RecordingWriter:
    """Writes polls into a recording, new or resumed; one commit a poll."""

    def __init__(self, path: PathArg, *, source: str, market_zone: str = "10YCH-SWISSGRIDZ") -> None:
        path = os.fspath(path)
        self.path = path
        fresh = not os.path.exists(path) or os.path.getsize(path) == 0
        try:
            self._db = _connect(path)
            if not fresh:
                _check(_meta(self._db), path)
            self._db.executescript(_SCHEMA)  # every statement is "if not exists": a resumed file is kept
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.DatabaseError as failure:
            if not fresh:
                raise RecordingError(f"{path} is not a gameproto recording ({failure}): name a new file") from None
            raise RecordingError(f"cannot write a recording at {path}: {failure}") from None
        if fresh:
            rows = {
                "format": FORMAT,
                "version": str(VERSION),
                "source": source,
                "market_zone": market_zone,
                "created": dt.datetime.now(dt.timezone.utc).isoformat(),
            }
            self._db.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", sorted(rows.items()))
        self.session = self._db.execute("SELECT coalesce(max(session), 0) + 1 FROM sessions").fetchone()[0]
        self._db.execute(
            "INSERT INTO sessions (session, started, source) VALUES (?, ?, ?)", (self.session, time.time(), source)
        )
        self._db.execute("COMMIT")
        self.resumed = not fresh
        self._levels = self._last_levels()
        self._market: Optional[List[Mapping[str, Any]]] = None  # the last poll's answer, as it came
        self._ltp = self._last_ltp()
        self._trades = {row[0] for row in self._db.execute("SELECT trade_id FROM trades")}
        last = self._db.execute("SELECT max(exchange_time), count(*) FROM polls").fetchone()
        #: The exchange time of the last poll written (None before the first), and how many there are.
        self.last_exchange_time: Optional[float] = last[0]
        self.polls: int = last[1]

    def _last_levels(self) -> Dict[LevelKey, Tuple[int, Decimal, Optional[float]]]:
        """The book as the file last knew it: each level's latest volume, the gone ones left out."""
        rows = self._db.execute(
            "SELECT contract, side, price, minutes, volume, time FROM levels WHERE rowid IN "
            "(SELECT max(rowid) FROM levels GROUP BY contract, side, price)"
        )
        return {
            (contract, side, Decimal(price)): (minutes, Decimal(volume), at)
            for contract, side, price, minutes, volume, at in rows
            if Decimal(volume) != 0
        }

    def _last_ltp(self) -> Dict[str, Tuple[str, str, Optional[str]]]:
        rows = self._db.execute(
            "SELECT contract, price, volume, timestamp FROM ltp WHERE rowid IN "
            "(SELECT max(rowid) FROM ltp GROUP BY contract)"
        )
        return {contract: (price, volume, stamp) for contract, price, volume, stamp in rows}

    def write(
        self,
        *,
        exchange_time: float,
        local_time: float,
        market: Sequence[Mapping[str, Any]],
        trades: Optional[Iterable[Mapping[str, Any]]] = None,
        ltp: Iterable[Mapping[str, Any]] = (),
    ) -> int:
        """Write one poll (the changes since the last), committed before it returns; the changes written.

        ``trades`` None: not listed at this poll (nothing new, as the last
        traded prices said). A listed trade the file has is skipped.
        """
        if self.last_exchange_time is not None and exchange_time < self.last_exchange_time:
            raise RecordingError(
                f"the exchange's clock ({exchange_time}) is before the recording's last poll "
                f"({self.last_exchange_time}): a recording only goes forward"
            )
        if self._market is not None and market == self._market:
            current, changes = self._levels, []  # the same answer as the last poll's: nothing to diff (the usual poll)
        else:
            try:
                current = level_volumes(market)
            except ValueError as wrong:
                raise RecordingError(f"the exchange's /market answer cannot be recorded: {wrong}") from None
            changes = book_changes(self._levels, current, exchange_time, since=self.last_exchange_time)
        new_trades: List[TapeTrade] = []
        for view in trades or ():
            try:
                trade = tape_trade(view)
            except ValueError as wrong:
                raise RecordingError(f"the exchange's /trades answer cannot be recorded: {wrong}") from None
            if trade.trade_id not in self._trades:
                new_trades.append(trade)
        prices: List[Tuple[str, Tuple[str, str, Optional[str]]]] = []
        for entry in ltp:
            contract = entry.get("contract")
            try:
                price, volume = _text(Decimal(str(entry.get("price")))), _text(Decimal(str(entry.get("volume"))))
            except (ArithmeticError, ValueError):
                continue  # a price that is not a number says nothing to replay: the trades carry the prices
            seen = (price, volume, entry.get("timestamp"))
            if isinstance(contract, str) and self._ltp.get(contract) != seen:
                prices.append((contract, seen))
        try:
            self._db.execute("BEGIN IMMEDIATE")
            poll = self._db.execute(
                "INSERT INTO polls (exchange_time, local_time, session) VALUES (?, ?, ?)",
                (exchange_time, local_time, self.session),
            ).lastrowid
            self._db.executemany(
                "INSERT INTO levels (poll, time, contract, minutes, side, price, volume) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (poll, item.time, item.contract, item.minutes, item.side, _text(item.price), _text(item.volume))
                    for item in changes
                ],
            )
            self._db.executemany(
                "INSERT OR IGNORE INTO trades (trade_id, poll, time, body) VALUES (?, ?, ?, ?)",
                [(trade.trade_id, poll, trade.time, encode_json(trade.view).decode()) for trade in new_trades],
            )
            self._db.executemany(
                "INSERT INTO ltp (poll, contract, price, volume, timestamp) VALUES (?, ?, ?, ?, ?)",
                [(poll, contract, *seen) for contract, seen in prices],
            )
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise
        self._levels = current
        self._market = list(market)
        self._trades.update(trade.trade_id for trade in new_trades)
        self._ltp.update(prices)
        self.last_exchange_time = exchange_time
        self.polls += 1
        return len(changes) + len(new_trades) + len(prices)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@dataclass(frozen=True)
class RecordingInfo:
    """What a recording holds: its span by the exchange's clock, its polls, changes, trades and size."""

    path: str
    source: str
    market_zone: str
    start: Optional[float]
    end: Optional[float]
    polls: int
    sessions: int
    level_changes: int
    trades: int
    bytes: int


def _open_reading(path: str) -> sqlite3.Connection:
    if not os.path.exists(path):
        raise RecordingError(f"no recording at {path}")
    try:
        # As a URI (read-only), with the path quoted: a name holding "?", "#" or "%" is still that file.
        connection = sqlite3.connect(Path(path).absolute().as_uri() + "?mode=ro", uri=True)
    except sqlite3.DatabaseError as failure:
        raise RecordingError(f"cannot read {path}: {failure}") from None
    _check(_meta(connection), path)
    return connection


def info(path: PathArg) -> RecordingInfo:
    """A recording's summary."""
    path = os.fspath(path)
    connection = _open_reading(path)
    try:
        meta = _meta(connection)
        span = "SELECT min(exchange_time), max(exchange_time), count(*) FROM polls"
        start, end, polls = connection.execute(span).fetchone()
        size = sum(os.path.getsize(name) for name in (path, path + "-wal") if os.path.exists(name))
        return RecordingInfo(
            path=path,
            source=meta.get("source", ""),
            market_zone=meta.get("market_zone", "10YCH-SWISSGRIDZ"),
            start=start,
            end=end,
            polls=polls,
            sessions=connection.execute("SELECT count(*) FROM sessions").fetchone()[0],
            level_changes=connection.execute("SELECT count(*) FROM levels").fetchone()[0],
            trades=connection.execute("SELECT count(*) FROM trades").fetchone()[0],
            bytes=size,
        )
    finally:
        connection.close()


def read_recording(path: PathArg) -> Tape:
    """A recording's events, ready to replay; ``RecordingError`` when it is not one or holds no poll."""
    path = os.fspath(path)
    connection = _open_reading(path)
    try:
        meta = _meta(connection)
        start, end = connection.execute("SELECT min(exchange_time), max(exchange_time) FROM polls").fetchone()
        if start is None:
            raise RecordingError(f"{path} holds no poll yet: record for a while first")
        changes = [
            LevelChange(at, contract, minutes, side, Decimal(price), Decimal(volume))
            for at, contract, minutes, side, price, volume in connection.execute(
                "SELECT time, contract, minutes, side, price, volume FROM levels ORDER BY rowid"
            )
        ]
        trades = [
            tape_trade(json.loads(body, parse_float=Decimal))
            for (body,) in connection.execute("SELECT body FROM trades ORDER BY time, rowid")
        ]
    except (sqlite3.DatabaseError, ValueError) as failure:
        raise RecordingError(f"{path}: a recording this version cannot read ({failure})") from None
    finally:
        connection.close()
    return Tape(changes, trades, start=start, end=end, market_zone=meta.get("market_zone", "10YCH-SWISSGRIDZ"))
