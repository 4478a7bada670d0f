"""The order journal on every driver, against the served exchange and real SQLite files.

Write-ahead (the intent committed before the request leaves, the outcome
after), a journal that cannot be written (nothing sent), reconciliation of
unknown outcomes and foreign orders, fills and trades recorded once, and the
watchers resuming after a restart.
"""

from __future__ import annotations

import inspect
import re
import sqlite3
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any, List

import pytest

from gameproto import OutcomeUnknownError
from gameproto._journal import CREATED, FOREIGN, NOT_PLACED, JournalOrder, match_listing
from gameproto._journal_life import window_of
from gameproto._journal_records import parse_time
from gameproto.journal import JournalError
from gameproto.simulator.faults import Fault
from gameproto_journal import SQLiteJournal
from tests.support.common import OTHER_TOKEN, TOKEN, future_order
from tests.support.harness import Harness, every_driver


def journal_url(tmp_path: Path, name: str = "bot.db") -> str:
    return f"sqlite:///{tmp_path / name}"


async def journaled(api: Any, what: str = "orders") -> Any:
    """``api.journal.orders()`` (or ``trades``) on either client."""
    result = getattr(Harness.unwrapped(api).journal, what)()
    return (await result) if inspect.isawaitable(result) else result


async def events(api: Any, name: str, count: int, **options: Any) -> List[Any]:
    """The first ``count`` events of ``api.<name>(**options)``, then the watch is closed."""
    watch = getattr(Harness.unwrapped(api), name)(**options)
    taken: List[Any] = []
    if inspect.isasyncgen(watch):
        async for event in watch:
            taken.append(event)
            if len(taken) == count:
                break
        await watch.aclose()
    else:
        for event in watch:
            taken.append(event)
            if len(taken) == count:
                break
        watch.close()
    return taken


def by_id(orders: List[JournalOrder]) -> dict:  # type: ignore[type-arg]
    return {order.exchange_id: order for order in orders}


@every_driver()
async def test_an_order_is_written_ahead_then_settled(h: Harness, tmp_path: Path) -> None:
    api = h.client(journal=journal_url(tmp_path))
    created = await api.create_order(future_order(price=50.0, volume=2.0))
    bulk = await api.create_order({"orders": [future_order(price=51.0), future_order(price=52.0, volume=3)]})
    orders = await journaled(api)
    assert len(orders) == 3
    numbers = {1, 2, 3}
    assert {order.exchange_id for order in orders} == numbers
    first = by_id(orders)[1]
    assert created["order_id"] == "ord_1" and first.state == CREATED
    assert [change.state for change in first.changes] == ["intent", "created"]
    assert first.side == "buy" and first.price == Decimal(50) and first.volume == Decimal(2)
    assert first.contract.endswith("/PT15M") and first.delivery_start.endswith("T10:00:00.000Z")
    assert first.delivery_end.endswith("T10:15:00.000Z")
    assert len({order.intent_id for order in orders}) == 3
    assert len(bulk["created"]) == 2


@every_driver()
async def test_a_refusal_is_recorded_with_its_reason(h: Harness, tmp_path: Path) -> None:
    api = h.client(journal=journal_url(tmp_path))
    h.faults.add(Fault("status", status=422, body=b'{"detail": "market closed"}'), method="POST", path="/orders")
    with pytest.raises(Exception, match="market closed"):
        await api.create_order(future_order())
    (order,) = await journaled(api)
    assert order.state == "refused" and "market closed" in order.reason and order.exchange_id is None


@every_driver()
async def test_nothing_is_sent_when_the_intent_cannot_be_committed(h: Harness, tmp_path: Path) -> None:
    url = journal_url(tmp_path)
    api = h.client(journal=url, timeout=0.5)
    await api.get_status()
    blocker = sqlite3.connect(str(tmp_path / "bot.db"), isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # another writer holds the file
    try:
        # The first write of this journal binds it to the exchange, then the intent: either one failing
        # stops the order before it is sent.
        with pytest.raises(JournalError, match=r"could not (commit the order's intent|record the exchange)"):
            await api.create_order(future_order())
        assert h.attempts("POST", "/orders") == 0
        assert await api.get_orders() == []  # reads go on
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    # The async client abandons the store's thread at the deadline: its commit may
    # land later. Such an intent was never sent; reconcile says so.
    await api.reconcile()
    assert {order.state for order in await journaled(api)} <= {NOT_PLACED}


@every_driver()
async def test_reconcile_settles_an_unknown_outcome_and_reports_a_foreign_order(h: Harness, tmp_path: Path) -> None:
    api = h.client(journal=journal_url(tmp_path))
    h.faults.add(Fault("drop_after"), method="POST", path="/orders")  # placed, no answer
    with pytest.raises(OutcomeUnknownError):
        await api.create_order(future_order(price=60.0))
    (unknown,) = await journaled(api)
    assert unknown.state == "unknown" and unknown.exchange_id is None
    other_tool = h.client()  # the same account, without the journal
    await other_tool.create_order(future_order(price=61.0))
    done = await api.reconcile()
    assert [order.intent_id for order in done.settled] == [unknown.intent_id]
    assert done.settled[0].state == CREATED and done.settled[0].exchange_id == 1
    assert [order.exchange_id for order in done.foreign] == [2] and done.foreign[0].state == FOREIGN
    again = await api.reconcile()
    assert not again and again.settled == () and again.foreign == ()
    states = {order.exchange_id: order.state for order in await journaled(api)}
    assert states == {1: CREATED, 2: FOREIGN}


@every_driver()
async def test_fills_and_trades_are_recorded_once(h: Harness, tmp_path: Path) -> None:
    url = journal_url(tmp_path)
    api = h.client(journal=url)
    order = await api.create_order(future_order(price=50.0, volume=2.0))
    bob = h.client(token=OTHER_TOKEN)
    await bob.create_order(future_order("sell", price=50.0, volume=0.5))
    await api.reconcile()
    await bob.create_order(future_order("sell", price=50.0, volume=1.0))
    second = h.client(journal=url, token=TOKEN)  # another client (process) on the same journal
    await second.reconcile()
    await api.reconcile()
    (recorded,) = await journaled(api)
    assert recorded.exchange_id == 1 and str(order["order_id"]) == "ord_1"
    assert recorded.executed_volume == Decimal("1.5")
    assert [fill.volume for fill in recorded.fills] == [Decimal("0.5"), Decimal(1)]
    trades = await journaled(api, "trades")
    assert [(trade.trade_id, trade.side, trade.volume) for trade in trades] == [
        ("trd_1", "buy", Decimal("0.5")),
        ("trd_2", "buy", Decimal(1)),
    ]
    assert sum(trade.volume for trade in trades) == recorded.executed_volume


@every_driver()
async def test_a_deletion_is_recorded(h: Harness, tmp_path: Path) -> None:
    api = h.client(journal=journal_url(tmp_path))
    order = await api.create_order(future_order())
    await api.delete_order(order["order_id"])
    (recorded,) = await journaled(api)
    assert recorded.state == "deleted"
    assert [change.state for change in recorded.changes] == ["intent", "created", "delete_requested", "deleted"]


@every_driver()
async def test_the_kill_switch_records_its_deletions_first(h: Harness, tmp_path: Path) -> None:
    api = h.client(journal=journal_url(tmp_path))
    await api.create_order({"orders": [future_order(), future_order(price=99)]})
    result = await api.cancel_all_orders()
    assert len(result.cancelled) == 2 and not result.failed
    recorded = await journaled(api)
    assert [order.state for order in recorded] == ["deleted", "deleted"]
    for order in recorded:
        assert [change.state for change in order.changes] == ["intent", "created", "delete_requested", "deleted"]


async def after_first_listing(h: Harness, path: str, before: int) -> None:
    """Once the watch's first listing of ``path`` is its baseline: its second listing has reached the exchange."""
    await h.wait_until(lambda: h.attempts("GET", path) >= before + 2, f"the watch's second listing of {path}")


@every_driver()
async def test_the_order_watch_resumes_after_a_restart(h: Harness, tmp_path: Path) -> None:
    url = journal_url(tmp_path)
    api = h.client(journal=url)
    await api.create_order(future_order(price=50.0, volume=2.0))  # the first watch's baseline
    listed = h.attempts("GET", "/orders")

    async def later() -> None:
        await h.wait_until(lambda: h.attempts("GET", "/orders") > listed, "the watch's first listing")
        await api.create_order(future_order(price=40.0, volume=1.0))

    first, _ = await h.concurrently(lambda: events(api, "watch_orders", 1, interval=0.05), later)
    assert [(event.kind, str(event.order_id)) for event in first] == [("placed", "ord_2")]
    bob = h.client(token=OTHER_TOKEN)
    await bob.create_order(future_order("sell", price=50.0, volume=0.5))  # while the bot is down
    restarted = h.client(journal=url)
    again = [(e.kind, str(e.order_id), e.volume) for e in await events(restarted, "watch_orders", 1, interval=0.05)]
    assert again == [("filled", "ord_1", 0.5)]


@every_driver()
async def test_a_watch_gives_each_event_once_marked_and_what_it_did_not_give_after_a_restart(
    h: Harness, tmp_path: Path
) -> None:
    """Two events in one poll; the caller stops after the first: the second is not marked, so it is not lost."""
    url = journal_url(tmp_path)
    api = h.client(journal=url)
    listed = h.attempts("GET", "/orders")

    async def later() -> None:
        await h.wait_until(lambda: h.attempts("GET", "/orders") > listed, "the watch's first listing")
        await api.create_order({"orders": [future_order(price=40.0), future_order(price=41.0)]})  # one poll shows both

    first, _ = await h.concurrently(lambda: events(api, "watch_orders", 1, interval=0.05), later)
    assert [(event.kind, str(event.order_id)) for event in first] == [("placed", "ord_1")]
    restarted = h.client(journal=url)
    again = await events(restarted, "watch_orders", 1, interval=0.05)
    assert [(event.kind, str(event.order_id)) for event in again] == [("placed", "ord_2")]


@every_driver()
async def test_the_trade_watch_resumes_after_a_restart(h: Harness, tmp_path: Path) -> None:
    url = journal_url(tmp_path)
    api = h.client(journal=url)
    bob = h.client(token=OTHER_TOKEN)
    await api.create_order(future_order(price=50.0, volume=3.0))
    await bob.create_order(future_order("sell", price=50.0, volume=0.5))  # history: before the first watch
    listed = h.attempts("GET", "/trades")

    async def later() -> None:
        await h.wait_until(lambda: h.attempts("GET", "/trades") > listed, "the watch's first listing")
        await bob.create_order(future_order("sell", price=50.0, volume=1.0))

    first, _ = await h.concurrently(lambda: events(api, "watch_trades", 1, interval=0.05), later)
    assert [trade["trade_id"] for trade in first] == ["trd_2"]
    await bob.create_order(future_order("sell", price=50.0, volume=1.5))  # while the bot is down
    restarted = h.client(journal=url)
    again = await events(restarted, "watch_trades", 1, interval=0.05)
    assert [trade["trade_id"] for trade in again] == ["trd_3"]
    assert [trade.trade_id for trade in await journaled(restarted, "trades")] == ["trd_1", "trd_2", "trd_3"]


@every_driver()
async def test_without_a_journal_there_is_none(h: Harness) -> None:
    api = h.client()
    with pytest.raises(JournalError, match="keeps no journal"):
        api.journal  # noqa: B018
    with pytest.raises(JournalError, match="needs a journal"):
        await api.reconcile()


def test_a_journal_url_that_can_never_work_is_a_value_error(tmp_path: Path) -> None:
    """As every constructor argument that can never work (the README's rule); a missing folder is not made."""
    from gameproto_sync import GameAPI

    with pytest.raises(ValueError, match="unknown journal scheme"):
        GameAPI(TOKEN, "http://127.0.0.1:9", journal="mysql://x/y")
    with pytest.raises(ValueError, match="must be a URL"):
        GameAPI(TOKEN, "http://127.0.0.1:9", journal="bot.db")
    with pytest.raises(ValueError, match=r"sqlite:///path/to/file\.db"):
        GameAPI(TOKEN, "http://127.0.0.1:9", journal="sqlite://bot.db")
    typo = tmp_path / "jounral" / "bot.db"
    with pytest.raises(ValueError, match=f"the folder {re.escape(str(typo.parent))} does not exist"):
        GameAPI(TOKEN, "http://127.0.0.1:9", journal=f"sqlite:///{typo}")
    assert not typo.parent.exists()
    with pytest.raises(ValueError, match="does not exist"):
        SQLiteJournal(str(typo))
    assert not typo.parent.exists()


def test_the_clients_load_no_journal_store_unless_asked() -> None:
    code = (
        "import sys\n"
        "import gameproto_sync, gameproto_async\n"
        "gameproto_sync.GameAPI('t', 'http://127.0.0.1:9').close()\n"
        "print(','.join(m for m in sys.modules if m.split('.')[0] in ('gameproto_journal', 'sqlite3', 'psycopg')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_the_core_loads_no_database_module() -> None:
    code = "import sys, gameproto._journal\nprint(','.join(m for m in ('sqlite3', 'psycopg') if m in sys.modules))\n"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


# -- the matching, pure -------------------------------------------------------------------


def _intent(intent_id: str, sent_at: str, price: float = 50.0, state: str = "unknown") -> JournalOrder:
    sent = future_order(price=price, day="2030-01-02")
    return JournalOrder(
        intent_id=intent_id,
        exchange_id=None,
        origin="ours",
        side="buy",
        price=Decimal(str(price)),
        volume=Decimal(1),
        contract="",
        delivery_start="",
        delivery_end="",
        state=state,
        executed_volume=Decimal(0),
        sent_at=sent_at,
        writer="default",
        order=sent,
        deadline=sent_at,
    )


def _listed(number: int, created_at: str, price: float = 50.0) -> Any:
    sent = future_order(price=price, day="2030-01-02")
    return {
        "order_id": number,
        "direction": "buy",
        "price": price,
        "volume": 1.0,
        "created_at": created_at,
        **{key: sent[key] for key in ("date", "start_time", "end_time", "duration", "tz_offset_hours")},
    }


def match(listing: Any, intents: Any, *, now: str, mine: bool = False, waiting: Any = ()) -> Any:
    """``match_listing`` at the exchange's time ``now``, the intents ours or not, some still waiting here."""
    return match_listing(
        listing,
        intents,
        window=lambda intent: window_of(intent, grace=5.0),
        mine=lambda intent: mine,
        waiting=lambda intent: intent.intent_id in waiting,
        now=parse_time(now),
        stamp=now,
    )


def test_identical_orders_settle_by_the_time_they_were_sent() -> None:
    intents = [_intent("a", "2030-01-01T10:00:00.000Z"), _intent("b", "2030-01-01T10:00:30.000Z")]
    listing = [_listed(7, "2030-01-01T10:00:30.100Z"), _listed(6, "2030-01-01T10:00:00.100Z")]
    outcomes, foreign, in_flight = match(listing, intents, now="2030-01-01T11:00:00Z")
    assert {(outcome.intent_id, outcome.exchange_id) for outcome in outcomes} == {("a", 6), ("b", 7)}
    assert foreign == [] and in_flight == []


def test_an_intent_in_flight_elsewhere_keeps_its_order_from_being_called_foreign() -> None:
    intents = [_intent("a", "2030-01-01T10:00:00.000Z", state="intent"), _intent("b", "2030-01-01T10:00:00.000Z", 70)]
    listing = [_listed(6, "2030-01-01T10:00:00.100Z"), _listed(9, "2030-01-01T10:00:00.100Z", 80.0)]
    outcomes, foreign, in_flight = match(listing, intents, now="2030-01-01T11:00:00Z", waiting={"a"})
    assert [(outcome.intent_id, outcome.state) for outcome in outcomes] == [("b", NOT_PLACED)]
    assert [order["order_id"] for order in foreign] == [9]
    assert in_flight == ["a"]
