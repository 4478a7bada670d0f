"""Reconcile and the write-ahead steps against late answers, restarts, a second process and a locked store.

Every driver (sync, asyncio, trio) against the served exchange, on real
SQLite files. An intent's late-request window runs from its sending (less a
skew) to its call's deadline plus a grace; journal rows whose window closed
long ago are written through the store itself, as a process that died
minutes ago left them.
"""

from __future__ import annotations

import datetime as dt
import inspect
import json
import logging
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any, Dict

import pytest

from gameproto import NetworkError, OutcomeUnknownError
from gameproto._journal import CREATED, FILLED, FOREIGN, GONE, INTENT, NOT_PLACED, UNKNOWN, Intent, Outcome
from gameproto._journal_records import iso
from gameproto.journal import JournalError
from gameproto.simulator.faults import Fault
from gameproto_journal import SQLiteJournal
from tests.journal.test_journal import by_id, events, journal_url, journaled
from tests.support.common import OTHER_TOKEN, TOKEN, future_order
from tests.support.harness import Harness, every_driver


async def maybe(value: Any) -> Any:
    return (await value) if inspect.isawaitable(value) else value


def states(orders: Any) -> Dict[Any, str]:
    return {order.exchange_id or order.intent_id: order.state for order in orders}


def left_by_a_dead_process(tmp_path: Path, order: Dict[str, Any], *, seconds_ago: float, state: str = UNKNOWN) -> str:
    """An intent written ``seconds_ago`` by another process, its call's deadline 10 s after; its id."""
    sent = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=seconds_ago)
    store = SQLiteJournal(str(tmp_path / "bot.db"))
    try:
        intent = Intent(
            "dead-beef", order, iso(sent, "microseconds"), "a-process-gone", iso(sent + dt.timedelta(seconds=10))
        )
        store.add_intents([intent], 5.0)
        if state != INTENT:
            store.settle([Outcome(intent.intent_id, state, intent.sent_at, reason="no answer")], 5.0)
    finally:
        store.close()
    return intent.intent_id


@every_driver()
async def test_two_bots_with_the_default_writer_never_settle_each_others_live_intents(
    h: Harness, tmp_path: Path
) -> None:
    url = journal_url(tmp_path)
    first, second = h.client(journal=url), h.client(journal=url)
    assert first.journal.writer != second.journal.writer
    h.faults.add(Fault("drop_after"), method="POST", path="/orders")
    with pytest.raises(OutcomeUnknownError):
        await first.create_order(future_order(price=60.0))
    await journaled(first)  # its read commits the outcome it holds (else its group commit would, within 1 s)
    done = await second.reconcile()  # the first bot's window is open: its intent and its order are left alone
    assert done.settled == () and done.foreign == () and len(done.in_flight) == 1
    assert states(await journaled(second)) == {done.in_flight[0]: UNKNOWN}
    mine = await first.reconcile()  # its own process settles it from what the exchange shows
    assert [(order.state, order.exchange_id) for order in mine.settled] == [(CREATED, 1)]


@every_driver(timeout=1.0)
async def test_a_call_that_times_out_records_unknown(h: Harness, tmp_path: Path) -> None:
    api = h.client(journal=journal_url(tmp_path))
    h.faults.add(Fault("delay", delay=3.0), method="POST", path="/orders")
    with pytest.raises(OutcomeUnknownError):
        await api.create_order(future_order())
    (order,) = await journaled(api)
    assert order.state == UNKNOWN and [change.state for change in order.changes] == [INTENT, UNKNOWN]


@every_driver()
async def test_a_late_order_is_adopted_within_its_window_not_settled_before(h: Harness, tmp_path: Path) -> None:
    api = h.client(journal=journal_url(tmp_path))
    h.faults.add(Fault("drop_before"), method="POST", path="/orders")  # the request has not landed (yet)
    with pytest.raises(OutcomeUnknownError):
        await api.create_order(future_order(price=61.0))
    early = await api.reconcile()
    assert early.settled == () and len(early.in_flight) == 1  # its window is open: never "not placed" now
    await h.client().create_order(future_order(price=61.0))  # the request lands late, inside the window
    late = await api.reconcile()
    assert [(order.state, order.exchange_id) for order in late.settled] == [(CREATED, 1)] and late.foreign == ()


@every_driver()
async def test_an_order_created_after_the_window_is_never_adopted(h: Harness, tmp_path: Path) -> None:
    api = h.client(journal=journal_url(tmp_path))
    intent_id = left_by_a_dead_process(tmp_path, future_order(price=62.0), seconds_ago=120)
    await h.client().create_order(future_order(price=62.0))  # the same order, placed by hand minutes later
    done = await api.reconcile()
    assert [(order.intent_id, order.state) for order in done.settled] == [(intent_id, NOT_PLACED)]
    assert [(order.exchange_id, order.state) for order in done.foreign] == [(1, FOREIGN)]


@every_driver()
async def test_another_process_intent_is_not_settled_while_its_window_is_open(h: Harness, tmp_path: Path) -> None:
    api = h.client(journal=journal_url(tmp_path))
    intent_id = left_by_a_dead_process(tmp_path, future_order(price=63.0), seconds_ago=0, state=INTENT)
    done = await api.reconcile()
    assert done.in_flight == (intent_id,) and done.settled == ()
    assert states(await journaled(api)) == {intent_id: INTENT}


@every_driver()
async def test_orders_that_ended_while_the_bot_was_down_settle_with_their_fills(h: Harness, tmp_path: Path) -> None:
    url = journal_url(tmp_path)
    api = h.client(journal=url)
    await api.create_order(future_order(price=50.0, volume=1.0))
    await api.create_order(future_order(price=49.0, volume=1.0))
    # Deleted, every answer lost (the retries too): the journal holds it requested.
    h.faults.add(Fault("drop_after"), method="DELETE", path="/orders/2", times=10)
    with pytest.raises(NetworkError):
        await api.delete_order(2)
    assert states(await journaled(api)) == {1: CREATED, 2: "delete_requested"}
    await h.client().create_order(future_order(price=48.0, volume=1.0))  # a third, by another tool
    await h.client().delete_order(3)
    bob = h.client(token=OTHER_TOKEN)
    await bob.create_order(future_order("sell", price=50.0, volume=1.0))  # fills order 1 entirely
    restarted = h.client(journal=url)
    await restarted.reconcile()
    orders = by_id(await journaled(restarted))
    assert orders[1].state == FILLED and orders[1].executed_volume == Decimal(1)
    assert orders[2].state == "deleted" and 3 not in orders
    assert [trade.exchange_id for trade in await journaled(restarted, "trades")] == [1]


@every_driver()
async def test_an_order_placed_traded_and_cancelled_while_away_is_adopted_by_its_trades(
    h: Harness, tmp_path: Path
) -> None:
    url = journal_url(tmp_path)
    api = h.client(journal=url)
    await api.create_order(future_order(price=40.0))  # the bot's first order: its trader name is known
    await api.delete_order(1)
    h.faults.add(Fault("drop_after"), method="POST", path="/orders")
    with pytest.raises(OutcomeUnknownError):
        await api.create_order(future_order(price=50.0, volume=2.0))  # placed: order 2, no answer
    await h.client(token=OTHER_TOKEN).create_order(future_order("sell", price=50.0, volume=0.5))
    await h.client().delete_order(2)  # cancelled elsewhere: no longer listed
    done = await api.reconcile()
    assert [(order.exchange_id, order.state) for order in done.settled] == [(2, GONE)]
    order = by_id(await journaled(api))[2]
    assert order.state == GONE and order.executed_volume == Decimal("0.5")
    assert [(trade.trade_id, trade.exchange_id) for trade in await journaled(api, "trades")] == [("trd_1", 2)]


@every_driver()
async def test_a_delete_is_sent_whatever_the_journal_does(
    h: Harness, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    api = h.client(journal=journal_url(tmp_path), timeout=10.0)
    await api.create_order(future_order())
    blocker = sqlite3.connect(str(tmp_path / "bot.db"), isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # the journal cannot be written for longer than the call lasts
    try:
        with caplog.at_level(logging.WARNING, logger="gameproto.journal"):
            await api.delete_order("ord_1")
            result = await api.cancel_all_orders()
        assert h.attempts("DELETE", "/orders/1") == 1 and not result.cancelled
        assert "the deletes go ahead without journal records" in caplog.text
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    await api.reconcile()  # completes the record
    # The async clients' abandoned store thread may still write "deleted" once the lock is
    # free; otherwise reconcile finds the order gone from the listing. Either way it has ended.
    assert states(await journaled(api)) in ({1: GONE}, {1: "deleted"})


@every_driver()
async def test_each_watch_resumes_its_own_marks(h: Harness, tmp_path: Path) -> None:
    url = journal_url(tmp_path)
    api = h.client(journal=url)
    await api.create_order(future_order(price=50.0))
    listed = h.attempts("GET", "/orders")

    async def later() -> None:
        # After the watch's first listing (its baseline): waited on, not assumed after a pause.
        await h.wait_until(lambda: h.attempts("GET", "/orders") > listed, "the buy watch's first listing")
        await api.create_order(future_order(price=45.0))

    bought, _ = await h.concurrently(lambda: events(api, "watch_orders", 1, interval=0.05, direction="buy"), later)
    assert [(event.kind, str(event.order_id)) for event in bought] == [("placed", "ord_2")]
    restarted = h.client(journal=url)
    listed = h.attempts("GET", "/orders")

    async def sell() -> None:
        await h.wait_until(lambda: h.attempts("GET", "/orders") > listed, "the sell watch's first listing")
        await restarted.create_order(future_order("sell", price=90.0))

    sold, _ = await h.concurrently(lambda: events(restarted, "watch_orders", 1, interval=0.05, direction="sell"), sell)
    assert [(event.kind, str(event.order_id)) for event in sold] == [("placed", "ord_3")]
    by_name, by_number = [
        await maybe(Harness.unwrapped(restarted).journal.orders(exchange_id=key)) for key in ("ord_3", 3)
    ]
    assert [order.exchange_id for order in by_name] == [3] and by_name == by_number


def status_naming(instance: str) -> Fault:
    """``/status`` as an exchange that names its instance answers it (the sandbox changes it on every reset)."""
    body = json.dumps({"status": "healthy", "version": "1", "instance": instance}).encode()
    return Fault("status", status=200, body=body, headers=(("Content-Type", "application/json"),))


@every_driver()
async def test_a_journal_refuses_another_instance_of_its_exchange(h: Harness, tmp_path: Path) -> None:
    url = journal_url(tmp_path)
    h.faults.add(status_naming("first"), method="GET", path="/status")
    await h.client(journal=url).create_order(future_order())
    h.faults.add(status_naming("first"), method="GET", path="/status")
    await h.client(journal=url, token=TOKEN).create_order(future_order(price=99.0))  # the same instance, restarted
    h.faults.add(status_naming("second"), method="GET", path="/status")  # the sandbox was reset
    with pytest.raises(JournalError, match=r"instance first.*instance second.*start a new journal"):
        await h.client(journal=url).create_order(future_order())
    assert h.attempts("POST", "/orders") == 2


@every_driver()
async def test_a_journal_refuses_another_exchange_and_keeps_its_own_through_a_new_token(
    h: Harness, tmp_path: Path
) -> None:
    url = journal_url(tmp_path)
    await h.client(journal=url).create_order(future_order())
    await h.client(journal=url, token=OTHER_TOKEN).get_status()  # a token rotates: the same exchange
    elsewhere = h.base_url.replace("127.0.0.1", "localhost")  # the same server, under another name
    with pytest.raises(JournalError, match=r"start a new journal") as refused:
        h.client(elsewhere, journal=url)
    assert h.base_url.split("/api")[0] in str(refused.value) and "localhost" in str(refused.value)
    assert h.attempts("POST", "/orders") == 1
