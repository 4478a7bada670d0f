"""The journal's tables and statements, one text for SQLite and PostgreSQL.

Every record is written once by a constraint, however many writers race:
an intent by its UUID (primary key), an order by the exchange's id
(``UNIQUE``), a fill by the order and the executed volume it reached
(primary key), a trade by its id and side (primary key). Writes are
``INSERT ... ON CONFLICT DO NOTHING``; an outcome only moves an intent that
is still unsettled, so that the exchange's own answer is never overwritten
by a reconciliation's guess.
"""

from __future__ import annotations

import json
import threading
from contextlib import contextmanager
from decimal import Decimal
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

from gameproto._journal import (
    CREATED,
    DELETED,
    DELETING,
    EXPIRED,
    FILLED,
    FOREIGN,
    GONE,
    INTENT,
    NOT_PLACED,
    UNKNOWN,
    Intent,
    JournalFill,
    JournalOrder,
    JournalTrade,
    Observed,
    Outcome,
    StateChange,
    canonical,
    contract_of,
    delivery_times,
)

__all__ = ["SQLStore", "SCHEMA"]

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS journal_orders (
        intent_id TEXT PRIMARY KEY,
        exchange_id BIGINT UNIQUE,
        origin TEXT NOT NULL,
        writer TEXT NOT NULL,
        side TEXT NOT NULL,
        price TEXT NOT NULL,
        volume TEXT NOT NULL,
        contract TEXT NOT NULL,
        delivery_start TEXT NOT NULL,
        delivery_end TEXT NOT NULL,
        sent TEXT NOT NULL,
        state TEXT NOT NULL,
        reason TEXT NOT NULL DEFAULT '',
        sent_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS journal_changes (
        seq {serial},
        intent_id TEXT NOT NULL,
        state TEXT NOT NULL,
        at TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT '',
        UNIQUE (intent_id, state)
    )""",
    """CREATE TABLE IF NOT EXISTS journal_fills (
        exchange_id BIGINT NOT NULL,
        executed_volume TEXT NOT NULL,
        at TEXT NOT NULL,
        PRIMARY KEY (exchange_id, executed_volume)
    )""",
    """CREATE TABLE IF NOT EXISTS journal_trades (
        trade_id TEXT NOT NULL,
        side TEXT NOT NULL,
        exchange_id BIGINT,
        contract TEXT NOT NULL,
        price TEXT NOT NULL,
        volume TEXT NOT NULL,
        at TEXT NOT NULL,
        buyer TEXT NOT NULL DEFAULT '',
        seller TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (trade_id, side)
    )""",
    """CREATE TABLE IF NOT EXISTS journal_reported (
        stream TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (stream, key)
    )""",
    "CREATE INDEX IF NOT EXISTS journal_orders_state ON journal_orders (state)",
    "CREATE INDEX IF NOT EXISTS journal_changes_intent ON journal_changes (intent_id)",
)

#: States an observation (a listing, a deletion's answer) may move an order out of.
_LIVE = (CREATED, FOREIGN, DELETING, FILLED)
#: The states of an observation that end what the listing can say.
_ORDER_COLUMNS = (
    "intent_id, exchange_id, origin, writer, side, price, volume, contract, delivery_start, delivery_end, "
    "sent, state, reason, sent_at"
)


class Executor:
    """One transaction's cursor, with the dialect's placeholders put in."""

    def __init__(self, cursor: Any, placeholder: str) -> None:
        self.cursor = cursor
        self.placeholder = placeholder

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        if self.placeholder != "?":
            sql = sql.replace("?", self.placeholder)
        self.cursor.execute(sql, tuple(params))
        return int(self.cursor.rowcount or 0)

    def rows(self, sql: str, params: Sequence[Any] = ()) -> List[Tuple[Any, ...]]:
        self.run(sql, params)
        return [tuple(row) for row in self.cursor.fetchall()]


class SQLStore:
    """A ``JournalStore`` on a DB-API connection; ``_transaction`` is the dialect's."""

    url = ""
    placeholder = "?"
    serial = "INTEGER PRIMARY KEY"

    def __init__(self) -> None:
        self._lock = threading.Lock()

    @contextmanager
    def _transaction(self, time_left: float) -> Iterator[Executor]:  # pragma: no cover - each dialect has its own
        raise NotImplementedError
        yield

    @contextmanager
    def _locked(self, time_left: float) -> Iterator[Executor]:
        """The store's one connection for one transaction, waiting no longer than ``time_left``."""
        if not self._lock.acquire(timeout=max(0.001, time_left)):
            raise TimeoutError(f"the journal stayed busy for {time_left:.1f} s (the call's time left)")
        try:
            with self._transaction(time_left) as executor:
                yield executor
        finally:
            self._lock.release()

    def _create_schema(self, executor: Executor) -> None:
        for statement in SCHEMA:
            executor.run(statement.format(serial=self.serial))

    # -- writes --------------------------------------------------------------------------

    def add_intents(self, intents: Sequence[Intent], time_left: float) -> None:
        with self._locked(time_left) as db:
            for intent in intents:
                order = intent.order
                start, end = delivery_times(order)
                db.run(
                    f"INSERT INTO journal_orders ({_ORDER_COLUMNS}, updated_at) "
                    "VALUES (?, NULL, 'ours', ?, ?, ?, ?, ?, ?, ?, ?, ?, '', ?, ?)",
                    (
                        intent.intent_id,
                        intent.writer,
                        str(order.get("side", "")),
                        canonical(order.get("price", 0)),
                        canonical(order.get("volume", 0)),
                        contract_of(order),
                        start,
                        end,
                        json.dumps(order, default=str, sort_keys=True),
                        INTENT,
                        intent.sent_at,
                        intent.sent_at,
                    ),
                )
                self._change(db, intent.intent_id, INTENT, intent.sent_at, "")

    def settle(self, outcomes: Sequence[Outcome], time_left: float) -> None:
        with self._locked(time_left) as db:
            for outcome in outcomes:
                movable = (INTENT, UNKNOWN, NOT_PLACED) if outcome.authoritative else (INTENT, UNKNOWN)
                marks = ", ".join("?" for _ in movable)
                if outcome.exchange_id is not None:
                    # The order may have been seen first by a reconcile that did not
                    # know this intent yet: the intent takes it over.
                    foreign = db.rows(
                        "SELECT intent_id FROM journal_orders WHERE exchange_id = ? AND origin = 'foreign'",
                        (outcome.exchange_id,),
                    )
                    for (foreign_id,) in foreign:
                        db.run("DELETE FROM journal_changes WHERE intent_id = ?", (foreign_id,))
                        db.run("DELETE FROM journal_orders WHERE intent_id = ?", (foreign_id,))
                changed = db.run(
                    f"UPDATE journal_orders SET state = ?, exchange_id = ?, reason = ?, updated_at = ? "
                    f"WHERE intent_id = ? AND state IN ({marks})",
                    (outcome.state, outcome.exchange_id, outcome.reason, outcome.at, outcome.intent_id, *movable),
                )
                if changed:
                    self._change(db, outcome.intent_id, outcome.state, outcome.at, outcome.reason)
                if outcome.exchange_id is not None and outcome.executed_volume not in (None, "0"):
                    self._fill(db, outcome.exchange_id, str(outcome.executed_volume), outcome.at)

    def observe(self, observed: Sequence[Observed], time_left: float) -> None:
        with self._locked(time_left) as db:
            numbers = {item.exchange_id for item in observed}
            held: Dict[int, Tuple[str, str]] = {}
            for intent_id, number, state in db.rows(
                "SELECT intent_id, exchange_id, state FROM journal_orders WHERE exchange_id IS NOT NULL"
            ):
                if number in numbers:
                    held[int(number)] = (str(intent_id), str(state))
            fills = {
                (int(number), str(level))
                for number, level in db.rows("SELECT exchange_id, executed_volume FROM journal_fills")
                if number in numbers
            }
            for item in observed:
                if item.executed_volume not in ("", "0") and (item.exchange_id, item.executed_volume) not in fills:
                    self._fill(db, item.exchange_id, item.executed_volume, item.at)
                if item.exchange_id not in held:
                    continue
                intent_id, state = held[item.exchange_id]
                wanted = item.state
                if wanted == CREATED and state in (FOREIGN, DELETING, FILLED):
                    continue  # listed and live: nothing new
                if wanted == state or state not in _LIVE:
                    continue
                if state == FOREIGN and wanted not in (FILLED, DELETED, EXPIRED, GONE):
                    continue
                if state == FILLED and wanted in (GONE, DELETED):
                    continue  # a filled order is not cancellable (404): it stays filled
                if db.run(
                    "UPDATE journal_orders SET state = ?, updated_at = ? WHERE intent_id = ? AND state = ?",
                    (wanted, item.at, intent_id, state),
                ):
                    self._change(db, intent_id, wanted, item.at, "")

    def add_foreign(self, orders: Sequence[JournalOrder], time_left: float) -> None:
        with self._locked(time_left) as db:
            for order in orders:
                added = db.run(
                    f"INSERT INTO journal_orders ({_ORDER_COLUMNS}, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    (
                        order.intent_id,
                        order.exchange_id,
                        order.origin,
                        order.writer,
                        order.side,
                        str(order.price),
                        str(order.volume),
                        order.contract,
                        order.delivery_start,
                        order.delivery_end,
                        json.dumps(dict(order.order), default=str, sort_keys=True),
                        order.state,
                        order.reason,
                        order.sent_at,
                        order.sent_at,
                    ),
                )
                if added:
                    self._change(db, order.intent_id, FOREIGN, order.sent_at, order.reason)
                if order.exchange_id is not None and order.executed_volume > 0:
                    self._fill(db, order.exchange_id, canonical(order.executed_volume), order.sent_at)

    def add_trades(self, trades: Sequence[JournalTrade], time_left: float) -> int:
        added = 0
        with self._locked(time_left) as db:
            for trade in trades:
                added += db.run(
                    "INSERT INTO journal_trades (trade_id, side, exchange_id, contract, price, volume, at, "
                    "buyer, seller) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    (
                        trade.trade_id,
                        trade.side,
                        trade.exchange_id,
                        trade.contract,
                        canonical(trade.price),
                        canonical(trade.volume),
                        trade.at,
                        trade.buyer,
                        trade.seller,
                    ),
                )
        return added

    def delete_requested(self, exchange_id: int, at: str, time_left: float) -> None:
        with self._locked(time_left) as db:
            rows = db.rows(
                "SELECT intent_id, state FROM journal_orders WHERE exchange_id = ?",
                (exchange_id,),
            )
            for intent_id, state in rows:
                if state in (CREATED, FOREIGN) and db.run(
                    "UPDATE journal_orders SET state = ?, updated_at = ? WHERE intent_id = ? AND state = ?",
                    (DELETING, at, intent_id, state),
                ):
                    self._change(db, str(intent_id), DELETING, at, "")

    def mark_reported(self, stream: str, items: Mapping[str, str], time_left: float) -> None:
        with self._locked(time_left) as db:
            for key, value in items.items():
                db.run(
                    "INSERT INTO journal_reported (stream, key, value) VALUES (?, ?, ?) "
                    "ON CONFLICT (stream, key) DO UPDATE SET value = excluded.value",
                    (stream, key, value),
                )

    def _change(self, db: Executor, intent_id: str, state: str, at: str, detail: str) -> None:
        db.run(
            "INSERT INTO journal_changes (intent_id, state, at, detail) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (intent_id, state, at, detail),
        )

    def _fill(self, db: Executor, exchange_id: int, executed: str, at: str) -> None:
        db.run(
            "INSERT INTO journal_fills (exchange_id, executed_volume, at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            (exchange_id, canonical(executed), at),
        )

    # -- reads ---------------------------------------------------------------------------

    def snapshot(self, time_left: float) -> List[JournalOrder]:
        with self._locked(time_left) as db:
            rows = db.rows(
                f"SELECT {_ORDER_COLUMNS} FROM journal_orders WHERE exchange_id IS NOT NULL OR state IN (?, ?)",
                (INTENT, UNKNOWN),
            )
        return [_order(row, (), ()) for row in rows]

    def orders(
        self,
        *,
        state: Optional[str] = None,
        exchange_id: Optional[int] = None,
        since: Optional[str] = None,
        time_left: float = 30.0,
    ) -> List[JournalOrder]:
        where: List[str] = []
        params: List[Any] = []
        if state is not None:
            where.append("state = ?")
            params.append(state)
        if exchange_id is not None:
            where.append("exchange_id = ?")
            params.append(exchange_id)
        if since is not None:
            where.append("sent_at >= ?")
            params.append(since)
        clause = (" WHERE " + " AND ".join(where)) if where else ""
        with self._locked(time_left) as db:
            rows = db.rows(f"SELECT {_ORDER_COLUMNS} FROM journal_orders{clause} ORDER BY sent_at, intent_id", params)
            changes: Dict[str, List[StateChange]] = {}
            for intent_id, change, at, detail in db.rows(
                "SELECT intent_id, state, at, detail FROM journal_changes ORDER BY seq"
            ):
                changes.setdefault(str(intent_id), []).append(StateChange(str(change), str(at), str(detail)))
            levels: Dict[int, List[Tuple[Decimal, str]]] = {}
            for number, level, at in db.rows("SELECT exchange_id, executed_volume, at FROM journal_fills"):
                levels.setdefault(int(number), []).append((Decimal(str(level)), str(at)))
        return [_order(row, changes.get(str(row[0]), ()), _fills(row[1], levels)) for row in rows]

    def trades(self, *, since: Optional[str] = None, time_left: float = 30.0) -> List[JournalTrade]:
        clause, params = ("", []) if since is None else (" WHERE at >= ?", [since])
        with self._locked(time_left) as db:
            rows = db.rows(
                "SELECT trade_id, side, exchange_id, contract, price, volume, at, buyer, seller "
                f"FROM journal_trades{clause} ORDER BY at, trade_id, side",
                params,
            )
        return [
            JournalTrade(
                trade_id=str(row[0]),
                side=str(row[1]),
                exchange_id=None if row[2] is None else int(row[2]),
                contract=str(row[3]),
                price=Decimal(str(row[4])),
                volume=Decimal(str(row[5])),
                at=str(row[6]),
                buyer=str(row[7]),
                seller=str(row[8]),
            )
            for row in rows
        ]

    def reported(self, stream: str, time_left: float) -> Dict[str, str]:
        with self._locked(time_left) as db:
            rows = db.rows("SELECT key, value FROM journal_reported WHERE stream = ?", (stream,))
        return {str(key): str(value) for key, value in rows}


def _fills(number: Any, levels: Mapping[int, List[Tuple[Decimal, str]]]) -> Tuple[JournalFill, ...]:
    if number is None:
        return ()
    reached = Decimal(0)
    fills = []
    for level, at in sorted(levels.get(int(number), ())):
        if level > reached:
            fills.append(JournalFill(int(number), level - reached, level, at))
            reached = level
    return tuple(fills)


def _order(row: Sequence[Any], changes: Sequence[StateChange], fills: Tuple[JournalFill, ...]) -> JournalOrder:
    (intent_id, number, origin, writer, side, price, volume, contract, start, end, sent, state, reason, sent_at) = row
    return JournalOrder(
        intent_id=str(intent_id),
        exchange_id=None if number is None else int(number),
        origin=str(origin),
        side=str(side),
        price=Decimal(str(price)),
        volume=Decimal(str(volume)),
        contract=str(contract),
        delivery_start=str(start),
        delivery_end=str(end),
        state=str(state),
        executed_volume=fills[-1].executed_volume if fills else Decimal(0),
        sent_at=str(sent_at),
        writer=str(writer),
        reason=str(reason),
        order=json.loads(sent) if sent else {},
        changes=tuple(changes),
        fills=fills,
    )
