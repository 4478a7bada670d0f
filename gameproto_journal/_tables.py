"""The journal's tables as text, and its rows read back into records: one text for SQLite and PostgreSQL.

Split from ``_sql.py`` (the statements and the store's steps): this module holds the schema (tables,
indexes, the migration of a version-1 journal) and how a row becomes a ``JournalOrder`` or ``JournalTrade``.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, List, Mapping, Sequence, Tuple

from gameproto._journal_records import (
    JournalFill,
    JournalOrder,
    JournalTrade,
    StateChange,
)

_INDEXES = (
    "CREATE INDEX IF NOT EXISTS journal_orders_state ON journal_orders (state)",
    "CREATE INDEX IF NOT EXISTS journal_orders_sent ON journal_orders (sent_at, intent_id)",
    "CREATE INDEX IF NOT EXISTS journal_trades_at ON journal_trades (at, trade_id, side)",
    "CREATE INDEX IF NOT EXISTS journal_trades_order ON journal_trades (exchange_id)",
    "CREATE INDEX IF NOT EXISTS journal_reported_open ON journal_reported (stream, open)",
)

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS journal_meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    )""",
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
        updated_at TEXT NOT NULL,
        deadline TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL DEFAULT ''
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
        open INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (stream, key)
    )""",
    *_INDEXES,
    # The changes of an intent are found by the UNIQUE (intent_id, state) index: this one, made by earlier
    # releases, only cost every write two more pages.
    "DROP INDEX IF EXISTS journal_changes_intent",
)

#: From version 1 (the previous release: no version recorded) to version 2, in one transaction.
MIGRATE_1_TO_2 = (
    "ALTER TABLE journal_orders ADD COLUMN deadline TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE journal_orders ADD COLUMN created_at TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE journal_reported ADD COLUMN open INTEGER NOT NULL DEFAULT 0",
    "UPDATE journal_reported SET open = 1 WHERE value LIKE '%|0'",
    *_INDEXES,
)

_ORDER_COLUMNS = (
    "intent_id, exchange_id, origin, writer, side, price, volume, contract, delivery_start, delivery_end, "
    "sent, state, reason, sent_at, deadline, created_at"
)
_TRADE_COLUMNS = "trade_id, side, exchange_id, contract, price, volume, at, buyer, seller"


def _trade_order(trade: JournalTrade) -> Tuple[str, str, str]:
    return (trade.at, trade.trade_id, trade.side)


def _trade(row: Sequence[Any]) -> JournalTrade:
    return JournalTrade(
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
    (intent_id, number, origin, writer, side, price, volume, contract, start, end, sent, state, reason, sent_at) = row[
        :14
    ]
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
        deadline=str(row[14] or ""),
        created_at=str(row[15] or ""),
    )
