"""The journal on a real PostgreSQL server that the suite starts: the same steps, and writers that race.

Component tests (``pytest -m component``): a server takes seconds to start.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from decimal import Decimal
from typing import Any, Iterator, List

import pytest

from gameproto import OutcomeUnknownError
from gameproto._journal import CREATED, FOREIGN, INTENT, Observed, foreign_record
from gameproto.journal import JournalError
from gameproto.risk import is_resting
from gameproto.simulator.faults import Fault
from gameproto_journal import PostgresJournal, open_journal
from tests.journal.test_journal import journaled
from tests.support.common import OTHER_TOKEN, future_order
from tests.support.harness import Harness, every_driver
from tests.support.postgres_server import PostgresServer, postgres_server

pytestmark = pytest.mark.component


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    yield from postgres_server()


@every_driver()
async def test_write_ahead_reconcile_fills_and_trades(h: Harness, pg: PostgresServer) -> None:
    url = pg.new_database()
    api = h.client(journal=url)
    await api.create_order(future_order(price=50.0, volume=2.0))
    h.faults.add(Fault("drop_after"), method="POST", path="/orders")
    with pytest.raises(OutcomeUnknownError):
        await api.create_order(future_order(price=49.0))
    await h.client().create_order(future_order(price=48.0))  # another tool
    bob = h.client(token=OTHER_TOKEN)
    await bob.create_order(future_order("sell", price=50.0, volume=0.5))
    done = await api.reconcile()
    assert [(order.exchange_id, order.state) for order in done.settled] == [(2, CREATED)]
    assert [(order.exchange_id, order.state) for order in done.foreign] == [(3, FOREIGN)]
    await h.client(journal=url + "?writer=other").reconcile()  # a second writer sees the same: nothing twice
    orders = {order.exchange_id: order for order in await journaled(api)}
    assert sorted(orders) == [1, 2, 3]
    assert orders[1].executed_volume == Decimal("0.5") and orders[1].state == CREATED
    trades = await journaled(api, "trades")
    assert [(trade.trade_id, trade.exchange_id) for trade in trades] == [("trd_1", 1)]


@every_driver()
async def test_an_order_costs_one_commit_its_outcome_read_at_once_and_committed_at_close(
    h: Harness, pg: PostgresServer
) -> None:
    url = pg.new_database()
    store = PostgresJournal(url, clock=lambda: 0.0)  # its group commit never comes due here
    api = h.client(journal=store)
    await api.create_order(future_order(price=50.0))
    await journaled(api)
    before = store.commits
    await api.create_order(future_order(price=51.0))
    assert store.commits == before + 1 and store.held() == 1
    other = open_journal(url)  # another process reads only what was committed
    try:
        assert [order.state for order in other.orders()] == [CREATED, INTENT]
        assert [order.state for order in await journaled(api)] == [CREATED, CREATED]  # this process: at once
        assert [order.state for order in other.orders()] == [CREATED, CREATED]
        await api.create_order(future_order(price=52.0))
        store.close()  # as the client's close does: what it holds is committed
        assert [order.state for order in other.orders()] == [CREATED, CREATED, CREATED]
    finally:
        other.close()


def test_a_missing_server_is_a_journal_error() -> None:
    from tests.support.redis_server import free_port

    with pytest.raises(JournalError, match="could not open the journal"):
        open_journal(f"postgresql://postgres:secret@127.0.0.1:{free_port()}/x", connect_timeout=2)


def test_racing_writers_record_each_fill_trade_and_foreign_order_once(pg: PostgresServer) -> None:
    """Eight writers, each on its own connection, record the same facts at once: each lands once."""
    url = pg.new_database()
    stores = [PostgresJournal(url) for _ in range(8)]
    listing: List[Any] = [
        {
            "order_id": number,
            "direction": "buy",
            "price": 50,
            "volume": 2,
            "executed_volume": 1,
            "created_at": "2030-01-01T10:00:00Z",
            **{key: value for key, value in future_order(day="2030-01-02").items() if key not in ("side",)},
        }
        for number in range(1, 31)
    ]
    from gameproto._journal import trade_records

    trades = trade_records(
        [
            {"trade_id": f"trd_{n}", "buyer": "alice", "seller": "bob", "price": 50, "volume": 1, "contract": "c"}
            for n in range(1, 31)
        ],
        {"alice"},
    )
    start = threading.Barrier(len(stores))
    errors: List[BaseException] = []

    def write(store: PostgresJournal) -> None:
        try:
            start.wait()
            for _ in range(3):
                store.add_foreign([foreign_record(order, "2030-01-01T10:00:01Z") for order in listing], 10.0)
                store.observe([Observed(n, "1.5", CREATED, "2030-01-01T10:00:02Z") for n in range(1, 31)], 10.0)
                store.add_trades(trades, 10.0)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=write, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    orders = stores[0].orders()
    assert sorted(order.exchange_id or 0 for order in orders) == list(range(1, 31))
    for order in orders:
        assert [fill.executed_volume for fill in order.fills] == [Decimal(1), Decimal("1.5")]
        assert order.executed_volume == Decimal("1.5")
    assert sorted(trade.trade_id for trade in stores[0].trades()) == sorted(f"trd_{n}" for n in range(1, 31))
    for store in stores:
        store.close()


@contextlib.contextmanager
def stopped_backends(url: str) -> Iterator[None]:
    """The journal's connections to ``url``'s database stopped (SIGSTOP): no answer, no error, no server timeout."""
    import psycopg

    database = url.rsplit("/", 1)[1]
    with psycopg.connect(url, autocommit=True) as admin:
        backends = [
            pid
            for (pid,) in admin.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (database,)
            ).fetchall()
        ]
    assert backends
    for pid in backends:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in backends:
            os.kill(pid, signal.SIGCONT)


@every_driver(timeout=2.0)
async def test_a_stopped_backend_holds_no_call_past_its_deadline(h: Harness, pg: PostgresServer) -> None:
    url = pg.new_database()
    api = h.client(journal=url)
    await api.create_order(future_order(price=50.0))
    with stopped_backends(url):
        with pytest.raises(JournalError, match=r"(did not answer|no answer) within"):
            await api.create_order(future_order(price=51.0))
        assert h.attempts("POST", "/orders") == 1  # nothing sent when the intent was not committed
    await api.create_order(future_order(price=52.0))  # a new connection: the stalled one was discarded
    assert [order.exchange_id for order in await journaled(api) if order.exchange_id] == [1, 2]


def test_a_previous_release_journal_is_migrated_once_and_an_unknown_version_refused(pg: PostgresServer) -> None:
    import psycopg

    from tests.journal.test_store import PREVIOUS_RELEASE

    url = pg.new_database()
    with psycopg.connect(url, autocommit=True) as db:
        for statement in PREVIOUS_RELEASE:
            db.execute(statement.replace("seq INTEGER PRIMARY KEY", "seq BIGSERIAL PRIMARY KEY"))
    store = open_journal(url)
    try:
        (order,) = store.orders()
        assert (order.exchange_id, order.state, order.executed_volume) == (7, CREATED, Decimal("0.5"))
        assert store.reported("orders", [], 5.0) == {"*started*": "1", "7": "0.5|0"}
    finally:
        store.close()
    open_journal(url).close()  # opened again: nothing left to migrate
    with psycopg.connect(url, autocommit=True) as db:
        db.execute("UPDATE journal_meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(JournalError, match="schema version 99"):
        open_journal(url)
    with psycopg.connect(url, autocommit=True) as db:
        assert db.execute("SELECT value FROM journal_meta WHERE key = 'schema_version'").fetchone() == ("99",)


@every_driver(timeout=2.0, max_retries=0)
async def test_the_kill_switch_cancels_everything_while_the_backend_is_stopped(h: Harness, pg: PostgresServer) -> None:
    """The deletes' records get their short budget and fail; the deletes go; reconcile completes the records."""
    url = pg.new_database()
    api = h.client(journal=url)
    await api.create_order({"orders": [future_order(price=50.0 + n) for n in range(3)]})
    with stopped_backends(url):
        result = await api.cancel_all_orders()
        assert len(result.cancelled) == 3 and result.ok, result
        assert [order for order in h.orders() if is_resting(order)] == []
    await api.reconcile()  # a new connection: the records completed from the exchange
    # Each ended: "deleted" where its request's record got through (an async client's abandoned store thread
    # may write it once the backend runs again), "gone" where the journal never saw it asked for.
    assert {order.exchange_id: order.state in ("deleted", "gone") for order in await journaled(api)} == {
        1: True,
        2: True,
        3: True,
    }
