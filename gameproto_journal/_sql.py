"""The journal's tables and statements, one text for SQLite and PostgreSQL.

This module only persists: every move of an order's state is the core's
decision (``gameproto._journal_life``: ``settle_allowed``, ``observed_move``,
``deleting_allowed``), asked here before a row is updated.

Every record is written once by a constraint, however many writers race:
an intent by its UUID (primary key), an order by the exchange's id
(``UNIQUE``), a fill by the order and the executed volume it reached
(primary key), a trade by its id and side (primary key). Writes are
``INSERT ... ON CONFLICT DO NOTHING``.

Reads cost what they return: every read is answered from an index (by
state, by exchange id, by intent, by time), the changes and fills of the
orders it returns and nothing else, and ``iter_orders``/``iter_trades``
read a page at a time. ``rows_read`` counts the rows every read fetched.

The tables carry a schema version (``journal_meta``). A journal without one
was written by the previous release (version 1): it is migrated once, on
open, in one transaction. A journal of a version this code does not know is
refused (``JournalError``) and never altered.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from decimal import Decimal
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, TypeVar

from gameproto._errors import JournalError
from gameproto._journal_life import deleting_allowed, observed_move, settle_allowed
from gameproto._journal_records import (
    DELETING,
    FOREIGN,
    INTENT,
    SCHEMA_VERSION,
    UNKNOWN,
    ExchangeIdentity,
    Intent,
    JournalOrder,
    JournalTrade,
    Observed,
    Outcome,
    StateChange,
    canonical,
    contract_and_times,
    mark_is_open,
)

from ._executor import Executor
from ._held import HeldOutcomes
from ._tables import _ORDER_COLUMNS, _TRADE_COLUMNS, MIGRATE_1_TO_2, SCHEMA, _fills, _order, _trade, _trade_order

__all__ = ["SQLStore", "SCHEMA"]

R = TypeVar("R")

logger = logging.getLogger("gameproto.journal")


def _nothing(db: Executor) -> None:
    return None


class SQLStore:
    """A ``JournalStore`` on a DB-API connection; ``_run`` (one transaction, bounded) is the dialect's."""

    url = ""
    placeholder = "?"
    serial = "INTEGER PRIMARY KEY"

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        #: Rows fetched by every read so far (tests hold reads to what they return).
        self.rows_read = 0
        #: Transactions that wrote and committed (the benchmark counts an order's).
        self.commits = 0
        #: Held outcomes committed so far (by a write that carried them, a group commit, a flush).
        self.outcomes_committed = 0
        #: The clock of the group commit's bound (injected by tests).
        self.clock = clock
        self._counted = threading.Lock()
        self._outcomes = HeldOutcomes(clock, self.flush, lambda: self.url)
        # Held while a transaction carries held outcomes: a read waits for it, then sees them committed.
        self._carrying = threading.Lock()

    def _run(self, body: Callable[[Executor], R], time_left: float, *, write: bool) -> R:  # pragma: no cover
        raise NotImplementedError

    def _write(self, body: Callable[[Executor], R], time_left: float) -> R:
        return self._step(body, time_left, write=True)

    def _read(self, body: Callable[[Executor], R], time_left: float) -> R:
        return self._step(body, time_left, write=False)

    def _step(self, body: Callable[[Executor], R], time_left: float, *, write: bool) -> R:
        """One transaction; the outcomes held then ride in it (a read with some held becomes a write)."""
        started = time.monotonic()
        if not self._carrying.acquire(timeout=max(0.001, time_left)):
            raise TimeoutError(f"the journal stayed busy for {time_left:.1f} s (the call's time left)")
        try:
            held, since = self._outcomes.take()
            if held:

                def carried(db: Executor) -> R:
                    self._settle_rows(db, held)
                    return body(db)

                try:
                    result = self._run(carried, time_left - (time.monotonic() - started), write=True)
                except BaseException:
                    self._outcomes.hold(
                        held, since
                    )  # not committed: still held, for the next write or the group commit
                    raise
                self._committed(len(held))
                return result
        finally:
            self._carrying.release()
        result = self._run(body, time_left - (time.monotonic() - started), write=write)
        if write:
            self._committed(0)
        return result

    def _committed(self, outcomes: int) -> None:
        with self._counted:
            self.commits += 1
            self.outcomes_committed += outcomes

    # -- outcomes held, committed by the next write or the group commit -------------------------

    def settle_soon(self, outcomes: Sequence[Outcome]) -> None:
        """Hold ``outcomes``: reads answer with them at once, the next write or the group commit makes them durable."""
        if not outcomes:
            return
        self._outcomes.hold(list(outcomes), self.clock())
        self._outcomes.start()

    def held(self) -> int:
        """How many outcomes are held, not yet committed."""
        return self._outcomes.count()

    def wake(self) -> None:
        """Have the group commit look at the clock again (after a test moved its injected clock)."""
        self._outcomes.wake()

    def flush(self, time_left: float) -> None:
        """Commit the outcomes held now; nothing when none are held."""
        if not self._outcomes.count():
            return
        # A read of nothing: it carries what is held then, a write only if another step did not take it first.
        self._read(_nothing, time_left)

    def _stop_group_commit(self) -> None:
        """At close: stop the group commit and commit what is held."""
        self._outcomes.stop()

    def _table_exists(self, db: Executor, name: str) -> bool:  # pragma: no cover - each dialect has its own
        raise NotImplementedError

    # -- the schema, its version, its migration ----------------------------------------------

    def _schema_version(self, db: Executor) -> Optional[int]:
        """The journal's version: None for an empty database, 1 for the previous release's tables."""
        if self._table_exists(db, "journal_meta"):
            rows = db.rows("SELECT value FROM journal_meta WHERE key = 'schema_version'")
            try:
                return int(rows[0][0]) if rows else 1
            except ValueError:
                raise JournalError(f"the journal {self.url} has a schema version that is no number: {rows[0][0]!r}")
        return 1 if self._table_exists(db, "journal_orders") else None

    def _refuse(self, version: int) -> JournalError:
        return JournalError(
            f"the journal {self.url} has schema version {version}, which this release does not know (it writes "
            f"version {SCHEMA_VERSION}): it was written by a newer release; open it with that release, or start a "
            "new journal. It was not altered."
        )

    def _prepare(self, db: Executor) -> None:
        """Create the tables of an empty database, migrate a previous release's once, refuse an unknown version."""
        version = self._schema_version(db)
        if version is not None and version > SCHEMA_VERSION:
            raise self._refuse(version)
        if version == 1:
            for statement in MIGRATE_1_TO_2:
                db.run(statement)
        for statement in SCHEMA:
            db.run(statement.format(serial=self.serial))
        db.run(
            "INSERT INTO journal_meta (key, value) VALUES ('schema_version', ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (str(SCHEMA_VERSION),),
        )

    def _check_readable(self, db: Executor) -> None:
        """A read-only journal: its version must be this release's (it cannot be migrated)."""
        version = self._schema_version(db)
        if version is None:
            raise JournalError(f"the journal {self.url} holds no journal tables")
        if version > SCHEMA_VERSION:
            raise self._refuse(version)
        if version < SCHEMA_VERSION:
            raise JournalError(
                f"the journal {self.url} was written by the previous release (schema version {version}): open it "
                "once writable (a bot or `game journal show`) to migrate it, then read it read-only"
            )

    # -- the exchange --------------------------------------------------------------------

    def bind(self, exchange: ExchangeIdentity, time_left: float) -> ExchangeIdentity:
        def body(db: Executor) -> ExchangeIdentity:
            held = dict(db.rows("SELECT key, value FROM journal_meta WHERE key IN ('base_url', 'instance', 'traders')"))
            wanted = {"base_url": exchange.base_url, "instance": exchange.instance}
            for key, value in wanted.items():
                if value and not held.get(key):
                    db.run("INSERT INTO journal_meta (key, value) VALUES (?, ?) ON CONFLICT DO NOTHING", (key, value))
                    held[key] = value
            traders = set(json.loads(held.get("traders") or "[]"))
            if not set(exchange.traders) <= traders:
                traders |= set(exchange.traders)
                held["traders"] = json.dumps(sorted(traders))
                db.run(
                    "INSERT INTO journal_meta (key, value) VALUES ('traders', ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (held["traders"],),
                )
            return ExchangeIdentity(
                str(held.get("base_url", "")), str(held.get("instance", "")), tuple(sorted(traders))
            )

        return self._write(body, time_left)

    # -- writes --------------------------------------------------------------------------

    def add_intents(self, intents: Sequence[Intent], time_left: float) -> None:
        def body(db: Executor) -> None:
            for intent in intents:
                order = intent.order
                contract, start, end = contract_and_times(order)
                db.run(
                    f"INSERT INTO journal_orders ({_ORDER_COLUMNS}, updated_at) "
                    "VALUES (?, NULL, 'ours', ?, ?, ?, ?, ?, ?, ?, ?, ?, '', ?, ?, '', ?)",
                    (
                        intent.intent_id,
                        intent.writer,
                        str(order.get("side", "")),
                        canonical(order.get("price", 0)),
                        canonical(order.get("volume", 0)),
                        contract,
                        start,
                        end,
                        json.dumps(order, default=str, sort_keys=True),
                        INTENT,
                        intent.sent_at,
                        intent.deadline,
                        intent.sent_at,
                    ),
                )
                self._change(db, intent.intent_id, INTENT, intent.sent_at, "")

        self._write(body, time_left)

    def settle(self, outcomes: Sequence[Outcome], time_left: float) -> None:
        self._write(lambda db: self._settle_rows(db, outcomes), time_left)

    def _settle_rows(self, db: Executor, outcomes: Sequence[Outcome]) -> None:
        for outcome in outcomes:
            rows = db.rows("SELECT state FROM journal_orders WHERE intent_id = ?", (outcome.intent_id,))
            if not rows or not settle_allowed(str(rows[0][0]), outcome):
                continue
            current = str(rows[0][0])
            if outcome.exchange_id is not None:
                # The order may have been seen first by a reconcile that did not
                # know this intent yet: the intent takes it over.
                for (foreign_id,) in db.rows(
                    "SELECT intent_id FROM journal_orders WHERE exchange_id = ? AND origin = 'foreign'",
                    (outcome.exchange_id,),
                ):
                    db.run("DELETE FROM journal_changes WHERE intent_id = ?", (foreign_id,))
                    db.run("DELETE FROM journal_orders WHERE intent_id = ?", (foreign_id,))
            changed = db.run(
                "UPDATE journal_orders SET state = ?, exchange_id = ?, reason = ?, updated_at = ?, "
                "created_at = CASE WHEN ? <> '' THEN ? ELSE created_at END WHERE intent_id = ? AND state = ?",
                (
                    outcome.state,
                    outcome.exchange_id,
                    outcome.reason,
                    outcome.at,
                    outcome.created_at,
                    outcome.created_at,
                    outcome.intent_id,
                    current,
                ),
            )
            if changed:
                self._change(db, outcome.intent_id, outcome.state, outcome.created_at or outcome.at, outcome.reason)
            if outcome.exchange_id is not None and outcome.executed_volume not in (None, "0"):
                self._fill(db, outcome.exchange_id, str(outcome.executed_volume), outcome.at)

    def observe(self, observed: Sequence[Observed], time_left: float) -> None:
        def body(db: Executor) -> None:
            numbers = sorted({item.exchange_id for item in observed})
            held: Dict[int, Tuple[str, str]] = {
                int(number): (str(intent_id), str(state))
                for intent_id, number, state in db.rows_in(
                    "SELECT intent_id, exchange_id, state FROM journal_orders WHERE exchange_id IN ({})", numbers
                )
            }
            fills = {
                (int(number), str(level))
                for number, level in db.rows_in(
                    "SELECT exchange_id, executed_volume FROM journal_fills WHERE exchange_id IN ({})", numbers
                )
            }
            for item in observed:
                if item.executed_volume not in ("", "0") and (item.exchange_id, item.executed_volume) not in fills:
                    self._fill(db, item.exchange_id, item.executed_volume, item.at)
                    fills.add((item.exchange_id, item.executed_volume))
                if item.exchange_id not in held:
                    continue
                intent_id, state = held[item.exchange_id]
                if item.created_at:
                    db.run(
                        "UPDATE journal_orders SET created_at = ? WHERE intent_id = ? AND created_at = ''",
                        (item.created_at, intent_id),
                    )
                wanted = observed_move(state, item.state)
                if wanted is not None and db.run(
                    "UPDATE journal_orders SET state = ?, updated_at = ? WHERE intent_id = ? AND state = ?",
                    (wanted, item.at, intent_id, state),
                ):
                    self._change(db, intent_id, wanted, item.at, "")
                    held[item.exchange_id] = (intent_id, wanted)

        self._write(body, time_left)

    def add_foreign(self, orders: Sequence[JournalOrder], time_left: float) -> None:
        def body(db: Executor) -> None:
            for order in orders:
                added = db.run(
                    f"INSERT INTO journal_orders ({_ORDER_COLUMNS}, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', ?, ?) ON CONFLICT DO NOTHING",
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
                        order.created_at,
                        order.sent_at,
                    ),
                )
                if added:
                    self._change(db, order.intent_id, FOREIGN, order.sent_at, order.reason)
                if order.exchange_id is not None and order.executed_volume > 0:
                    self._fill(db, order.exchange_id, canonical(order.executed_volume), order.sent_at)

        self._write(body, time_left)

    def add_trades(self, trades: Sequence[JournalTrade], time_left: float) -> int:
        def body(db: Executor) -> int:
            added = 0
            for trade in trades:
                added += db.run(
                    f"INSERT INTO journal_trades ({_TRADE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT DO NOTHING",
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

        return self._write(body, time_left)

    def delete_requested(self, exchange_id: int, at: str, time_left: float) -> None:
        def body(db: Executor) -> None:
            for intent_id, state in db.rows(
                "SELECT intent_id, state FROM journal_orders WHERE exchange_id = ?", (exchange_id,)
            ):
                if deleting_allowed(str(state)) and db.run(
                    "UPDATE journal_orders SET state = ?, updated_at = ? WHERE intent_id = ? AND state = ?",
                    (DELETING, at, intent_id, state),
                ):
                    self._change(db, str(intent_id), DELETING, at, "")

        self._write(body, time_left)

    def mark_reported(self, stream: str, items: Mapping[str, str], time_left: float) -> None:
        def body(db: Executor) -> None:
            for key, value in items.items():
                db.run(
                    "INSERT INTO journal_reported (stream, key, value, open) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (stream, key) DO UPDATE SET value = excluded.value, open = excluded.open",
                    (stream, key, value, 1 if mark_is_open(value) else 0),
                )

        self._write(body, time_left)

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

    def unsettled(self, time_left: float) -> List[JournalOrder]:
        def body(db: Executor) -> List[JournalOrder]:
            rows = db.rows(f"SELECT {_ORDER_COLUMNS} FROM journal_orders WHERE state IN (?, ?)", (INTENT, UNKNOWN))
            return [_order(row, (), ()) for row in rows]

        return self._read(body, time_left)

    def in_states(self, states: Sequence[str], time_left: float) -> List[JournalOrder]:
        def body(db: Executor) -> List[JournalOrder]:
            sql = f"SELECT {_ORDER_COLUMNS} FROM journal_orders WHERE state IN ({{}}) AND exchange_id IS NOT NULL"
            return [_order(row, (), ()) for row in db.rows_in(sql, list(states))]

        return self._read(body, time_left)

    def known(self, exchange_ids: Sequence[int], time_left: float) -> List[JournalOrder]:
        def body(db: Executor) -> List[JournalOrder]:
            sql = f"SELECT {_ORDER_COLUMNS} FROM journal_orders WHERE exchange_id IN ({{}})"
            return [_order(row, (), ()) for row in db.rows_in(sql, list(exchange_ids))]

        return self._read(body, time_left) if exchange_ids else []

    def orders(
        self,
        *,
        state: Optional[str] = None,
        exchange_id: Optional[int] = None,
        since: Optional[str] = None,
        intent_ids: Optional[Sequence[str]] = None,
        time_left: float = 30.0,
    ) -> List[JournalOrder]:
        where: List[str] = []
        params: List[Any] = []
        for column, value in (("state = ?", state), ("exchange_id = ?", exchange_id), ("sent_at >= ?", since)):
            if value is not None:
                where.append(column)
                params.append(value)

        def body(db: Executor) -> List[JournalOrder]:
            order_by = " ORDER BY sent_at, intent_id"
            if intent_ids is not None:
                clause = " AND ".join([*where, "intent_id IN ({})"])
                rows = db.rows_in(f"SELECT {_ORDER_COLUMNS} FROM journal_orders WHERE {clause}", intent_ids, params)
                rows.sort(key=lambda row: (row[13], row[0]))
            else:
                clause = (" WHERE " + " AND ".join(where)) if where else ""
                rows = db.rows(f"SELECT {_ORDER_COLUMNS} FROM journal_orders{clause}{order_by}", params)
            return self._complete(db, rows)

        return self._read(body, time_left)

    def _complete(self, db: Executor, rows: Sequence[Tuple[Any, ...]]) -> List[JournalOrder]:
        """The orders of ``rows`` with their changes and fills, read for those orders only."""
        changes: Dict[str, List[StateChange]] = {}
        for intent_id, change, at, detail, _ in sorted(
            db.rows_in(
                "SELECT intent_id, state, at, detail, seq FROM journal_changes WHERE intent_id IN ({})",
                [str(row[0]) for row in rows],
            ),
            key=lambda found: int(found[4]),
        ):
            changes.setdefault(str(intent_id), []).append(StateChange(str(change), str(at), str(detail)))
        levels: Dict[int, List[Tuple[Decimal, str]]] = {}
        for number, level, at in db.rows_in(
            "SELECT exchange_id, executed_volume, at FROM journal_fills WHERE exchange_id IN ({})",
            [int(row[1]) for row in rows if row[1] is not None],
        ):
            levels.setdefault(int(number), []).append((Decimal(str(level)), str(at)))
        return [_order(row, changes.get(str(row[0]), ()), _fills(row[1], levels)) for row in rows]

    def iter_orders(self, *, page: int = 1000, time_left: float = 30.0) -> Iterator[JournalOrder]:
        after: Optional[Tuple[str, str]] = None
        while True:

            def body(db: Executor, after: Optional[Tuple[str, str]] = after) -> List[JournalOrder]:
                if after is None:
                    clause, params = "", []
                else:
                    clause, params = " WHERE sent_at > ? OR (sent_at = ? AND intent_id > ?)", [after[0], *after]
                rows = db.rows(
                    f"SELECT {_ORDER_COLUMNS} FROM journal_orders{clause} "
                    f"ORDER BY sent_at, intent_id LIMIT {int(page)}",
                    params,
                )
                return self._complete(db, rows)

            found = self._read(body, time_left)
            yield from found
            if len(found) < page:
                return
            after = (found[-1].sent_at, found[-1].intent_id)

    def iter_trades(
        self, *, orphans: bool = False, page: int = 1000, time_left: float = 30.0
    ) -> Iterator[JournalTrade]:
        after: Optional[Tuple[str, str, str]] = None
        orphan = (
            "(exchange_id IS NULL OR NOT EXISTS "
            "(SELECT 1 FROM journal_orders o WHERE o.exchange_id = journal_trades.exchange_id))"
        )
        while True:

            def body(db: Executor, after: Optional[Tuple[str, str, str]] = after) -> List[JournalTrade]:
                where: List[str] = [orphan] if orphans else []
                params: List[Any] = []
                if after is not None:
                    where.append("(at > ? OR (at = ? AND (trade_id > ? OR (trade_id = ? AND side > ?))))")
                    params = [after[0], after[0], after[1], after[1], after[2]]
                clause = (" WHERE " + " AND ".join(where)) if where else ""
                rows = db.rows(
                    f"SELECT {_TRADE_COLUMNS} FROM journal_trades{clause} ORDER BY at, trade_id, side "
                    f"LIMIT {int(page)}",
                    params,
                )
                return [_trade(row) for row in rows]

            found = self._read(body, time_left)
            yield from found
            if len(found) < page:
                return
            after = (found[-1].at, found[-1].trade_id, found[-1].side)

    def trades_of(self, exchange_ids: Sequence[int], time_left: float) -> List[JournalTrade]:
        def body(db: Executor) -> List[JournalTrade]:
            sql = f"SELECT {_TRADE_COLUMNS} FROM journal_trades WHERE exchange_id IN ({{}})"
            return sorted((_trade(row) for row in db.rows_in(sql, list(exchange_ids))), key=_trade_order)

        return self._read(body, time_left) if exchange_ids else []

    def trades(self, *, since: Optional[str] = None, time_left: float = 30.0) -> List[JournalTrade]:
        clause, params = ("", []) if since is None else (" WHERE at >= ?", [since])

        def body(db: Executor) -> List[JournalTrade]:
            rows = db.rows(f"SELECT {_TRADE_COLUMNS} FROM journal_trades{clause} ORDER BY at, trade_id, side", params)
            return [_trade(row) for row in rows]

        return self._read(body, time_left)

    def reported(self, stream: str, keys: Sequence[str], time_left: float) -> Dict[str, str]:
        def body(db: Executor) -> Dict[str, str]:
            rows = db.rows(
                "SELECT key, value FROM journal_reported WHERE stream = ? AND open = 1 "
                "UNION SELECT key, value FROM journal_reported WHERE stream = ? AND key = '*started*'",
                (stream, stream),
            )
            rows += db.rows_in(
                "SELECT key, value FROM journal_reported WHERE stream = ? AND key IN ({})", list(keys), [stream]
            )
            return {str(key): str(value) for key, value in rows}

        return self._read(body, time_left)
