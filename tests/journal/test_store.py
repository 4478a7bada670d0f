"""The journal's stores on real SQLite files: the schema's version and migration, reads that cost what they return.

A journal written by the previous release (no version) is migrated once on
open; one of a version this release does not know is refused and never
altered; reads never take the write lock; a read-only journal is read; a
read fetches rows in proportion to what it returns, by an index.
"""

from __future__ import annotations

import hashlib
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any, List

import pytest

from gameproto._boundary import Blocking
from gameproto._journal import CREATED, INTENT, SCHEMA_VERSION, Intent, JournalFlows, Observed, Outcome
from gameproto._journal_resume import resume_watch
from gameproto._watch import TradeWatch
from gameproto.journal import ExchangeIdentity, JournalError
from gameproto_journal import SQLiteJournal, open_journal
from tests.support.common import future_order

#: The tables the previous release wrote (schema version 1, no version recorded), with one order in them.
PREVIOUS_RELEASE = (
    """CREATE TABLE journal_orders (intent_id TEXT PRIMARY KEY, exchange_id BIGINT UNIQUE, origin TEXT NOT NULL,
        writer TEXT NOT NULL, side TEXT NOT NULL, price TEXT NOT NULL, volume TEXT NOT NULL, contract TEXT NOT NULL,
        delivery_start TEXT NOT NULL, delivery_end TEXT NOT NULL, sent TEXT NOT NULL, state TEXT NOT NULL,
        reason TEXT NOT NULL DEFAULT '', sent_at TEXT NOT NULL, updated_at TEXT NOT NULL)""",
    """CREATE TABLE journal_changes (seq INTEGER PRIMARY KEY, intent_id TEXT NOT NULL, state TEXT NOT NULL,
        at TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '', UNIQUE (intent_id, state))""",
    """CREATE TABLE journal_fills (exchange_id BIGINT NOT NULL, executed_volume TEXT NOT NULL, at TEXT NOT NULL,
        PRIMARY KEY (exchange_id, executed_volume))""",
    """CREATE TABLE journal_trades (trade_id TEXT NOT NULL, side TEXT NOT NULL, exchange_id BIGINT,
        contract TEXT NOT NULL, price TEXT NOT NULL, volume TEXT NOT NULL, at TEXT NOT NULL,
        buyer TEXT NOT NULL DEFAULT '', seller TEXT NOT NULL DEFAULT '', PRIMARY KEY (trade_id, side))""",
    """CREATE TABLE journal_reported (stream TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
        PRIMARY KEY (stream, key))""",
    "CREATE INDEX journal_orders_state ON journal_orders (state)",
    "CREATE INDEX journal_changes_intent ON journal_changes (intent_id)",
    """INSERT INTO journal_orders VALUES ('a1', 7, 'ours', 'default', 'buy', '50', '1', '2031-01-15T13:00:00Z/PT15M',
        '2031-01-15T13:00:00.000Z', '2031-01-15T13:15:00.000Z', '{}', 'created', '', '2031-01-14T09:00:00.000000Z',
        '2031-01-14T09:00:00.100000Z')""",
    "INSERT INTO journal_changes (intent_id, state, at) VALUES ('a1', 'intent', '2031-01-14T09:00:00.000000Z')",
    "INSERT INTO journal_changes (intent_id, state, at) VALUES ('a1', 'created', '2031-01-14T09:00:00.100000Z')",
    "INSERT INTO journal_fills VALUES (7, '0.5', '2031-01-14T09:01:00.000Z')",
    "INSERT INTO journal_reported VALUES ('orders', '*started*', '1'), ('orders', '7', '0.5|0')",
)


def previous_release_file(path: Path) -> None:
    with sqlite3.connect(str(path)) as db:
        for statement in PREVIOUS_RELEASE:
            db.execute(statement)


def version_of(path: Path) -> List[str]:
    with sqlite3.connect(str(path)) as db:
        return [row[0] for row in db.execute("SELECT value FROM journal_meta WHERE key = 'schema_version'")]


def test_a_journal_of_the_previous_release_is_migrated_once_on_open(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    previous_release_file(path)
    store = open_journal(f"sqlite:///{path}")
    try:
        (order,) = store.orders()
        assert (order.intent_id, order.exchange_id, order.state, order.executed_volume) == ("a1", 7, CREATED, 0.5)
        assert [change.state for change in order.changes] == ["intent", "created"]
        assert order.deadline == "" and order.created_at == ""
        assert store.reported("orders", [], 5.0) == {"*started*": "1", "7": "0.5|0"}  # an open mark, kept open
    finally:
        store.close()
    assert version_of(path) == [str(SCHEMA_VERSION)]
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    SQLiteJournal(str(path)).close()  # opened again: nothing left to migrate
    with sqlite3.connect(str(path)) as db:
        columns = [row[1] for row in db.execute("PRAGMA table_info(journal_orders)")]
    assert columns.count("deadline") == 1 and columns.count("created_at") == 1
    assert version_of(path) == [str(SCHEMA_VERSION)]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_a_journal_of_an_unknown_version_is_refused_and_left_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    SQLiteJournal(str(path)).close()
    with sqlite3.connect(str(path)) as db:
        db.execute("UPDATE journal_meta SET value = '99' WHERE key = 'schema_version'")
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(JournalError, match=r"schema version 99.*does not know.*not altered"):
        open_journal(f"sqlite:///{path}")
    with pytest.raises(JournalError, match="schema version 99"):
        open_journal(f"sqlite:///{path}", read_only=True)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert version_of(path) == ["99"]


def test_a_journal_belongs_to_the_exchange_it_first_recorded(tmp_path: Path) -> None:
    from gameproto_sync import GameAPI

    url = f"sqlite:///{tmp_path / 'bot.db'}"
    GameAPI("token-a", "http://127.0.0.1:9/api/v1/", journal=url).close()
    GameAPI("a-new-token", "HTTP://127.0.0.1:9", journal=url).close()  # a token rotates: the same exchange
    with pytest.raises(JournalError) as refused:
        GameAPI("token-a", "http://127.0.0.1:10", journal=url)
    text = str(refused.value)
    assert "http://127.0.0.1:9" in text and "http://127.0.0.1:10" in text and "start a new journal" in text
    store = SQLiteJournal(str(tmp_path / "bot.db"))
    try:
        held = store.bind(ExchangeIdentity("http://127.0.0.1:80", "inst-1"), 5.0)
        assert held == ExchangeIdentity("http://127.0.0.1:9", "inst-1")
    finally:
        store.close()


def _intents(count: int) -> List[Intent]:
    order = future_order(day="2031-01-15")
    return [
        Intent(f"i{index:06d}", order, f"2031-01-14T09:00:{index % 60:02d}.{index:06d}Z", "w", "")
        for index in range(count)
    ]


def _filled_store(path: Path, count: int) -> SQLiteJournal:
    store = SQLiteJournal(str(path))
    intents = _intents(count)
    store.add_intents(intents, 30.0)
    at = "2031-01-14T09:10:00.000Z"
    store.settle(
        [Outcome(intent.intent_id, CREATED, at, exchange_id=index + 1) for index, intent in enumerate(intents)], 30.0
    )
    store.observe([Observed(index + 1, "0.5", CREATED, at) for index in range(count)], 30.0)
    return store


def test_reads_fetch_rows_in_proportion_to_what_they_return(tmp_path: Path) -> None:
    store = _filled_store(tmp_path / "bot.db", 2000)
    try:
        store.rows_read = 0
        (order,) = store.orders(exchange_id=1234)
        assert order.exchange_id == 1234 and order.executed_volume == Decimal("0.5")
        assert store.rows_read <= 4  # the order, its two changes, its fill
        store.rows_read = 0
        assert [order.exchange_id for order in store.known([5, 6, 99999], 5.0)] == [5, 6]
        assert store.rows_read == 2
        store.rows_read = 0
        assert store.unsettled(5.0) == [] and store.rows_read == 0
        store.rows_read = 0
        assert sum(1 for _ in store.iter_orders(page=500)) == 2000  # paged: never the whole journal at once
        assert store.rows_read == 2000 * 4
        with sqlite3.connect(str(tmp_path / "bot.db")) as db:
            plan = " ".join(
                str(row) for row in db.execute("EXPLAIN QUERY PLAN SELECT * FROM journal_orders WHERE exchange_id = 5")
            )
            assert "USING INDEX" in plan or "USING COVERING INDEX" in plan
    finally:
        store.close()


def test_reads_never_take_the_write_lock(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    store = _filled_store(path, 3)
    writer = sqlite3.connect(str(path), isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # another process is writing
    try:
        assert len(store.orders(time_left=0.2)) == 3
        assert [trade for trade in store.iter_trades(time_left=0.2)] == []
        with pytest.raises(Exception, match=r"locked|busy"):
            store.add_intents(_intents(1), 0.2)
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    reader = sqlite3.connect(str(path), isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM journal_orders").fetchall()  # a long export holds a read open
    try:
        store.add_intents([Intent("late", future_order(), "2031-01-14T09:20:00.000Z", "w", "")], 0.5)
    finally:
        reader.execute("COMMIT")
        reader.close()
        store.close()


def test_a_read_only_journal_is_read_and_never_changed(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    _filled_store(path, 3).close()
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    store = open_journal(f"sqlite:///{path}", read_only=True)
    try:
        assert [order.state for order in store.iter_orders()] == [CREATED] * 3
        with pytest.raises(JournalError, match="read-only"):
            store.add_intents(_intents(1), 1.0)
    finally:
        store.close()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert INTENT not in {order.state for order in SQLiteJournal(str(path)).orders()}


def test_a_resumed_trade_watch_never_gives_again_what_it_gave_whatever_their_number() -> None:
    watch = TradeWatch(mine=False, random=lambda: 0.5)
    listing = [{"trade_id": f"trd_{index}", "price": 50, "volume": 1} for index in range(12_000)]
    marks = {"*started*": "1", **{repr(("id", f"trd_{index}")): "1" for index in range(12_000)}}
    assert resume_watch(watch, marks)
    events, _ = watch.succeeded([*listing, {"trade_id": "trd_new", "price": 50, "volume": 1}])
    assert [trade["trade_id"] for trade in events] == ["trd_new"]


def drive(flow: Any) -> Any:
    """Run a journal flow whose only actions are store steps (``Blocking``), as the blocking client does."""
    reply: Any = None
    try:
        while True:
            action = flow.send(reply)
            assert isinstance(action, Blocking), action
            reply = action.function(action.time_left)
    except StopIteration as done:
        return done.value


def test_a_watch_poll_that_shows_nothing_new_touches_no_row(tmp_path: Path) -> None:
    store = _filled_store(tmp_path / "bot.db", 50)
    clock = iter(range(10**6)).__next__
    flows = JournalFlows(
        store,
        exchange_now=lambda: None,
        wall_clock=lambda: 1.9e9,
        clock=lambda: float(clock()),
        random=lambda: 0.25,
        timeout=10**6,
        writer="w",
    )
    listing = [{"order_id": n, "executed_volume": 0.5, "state": "Displayed", "trader": "alice"} for n in range(1, 51)]
    trades = [{"trade_id": f"trd_{n}", "buyer": "alice", "price": 50, "volume": 1, "buy_order_id": n} for n in (1, 2)]
    drive(flows.observe_orders(listing))
    assert drive(flows.observe_trades(trades)) == 2
    store.rows_read = 0
    drive(flows.observe_orders(listing))
    assert drive(flows.observe_trades(trades)) == 0
    assert store.rows_read == 0  # and no write transaction either: nothing changed
    listing[7] = {**listing[7], "executed_volume": 1}
    drive(flows.observe_orders(listing))
    assert store.rows_read <= 3  # the one order that changed: its state and its fills
    assert store.orders(exchange_id=8)[0].executed_volume == 1
    store.close()
