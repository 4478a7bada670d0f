"""An order costs one commit: the intent is durable before the request leaves, the outcome soon after.

The outcome is held by the store: its reads answer with it at once, the next
write carries it in its own commit, its group commit writes it within
``OUTCOME_DURABLE_WITHIN`` (driven here by the store's injected clock, never
by sleeping), and closing the store writes it. A process that dies holding
it loses it, and ``reconcile`` recovers it from the exchange's listing.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import List, Tuple

from gameproto._journal_records import CREATED, INTENT, OUTCOME_DURABLE_WITHIN, Intent, Outcome
from gameproto_journal import SQLiteJournal
from gameproto_journal._held import GROUP_COMMIT_AFTER
from tests.journal.test_journal import journaled
from tests.support.common import future_order
from tests.support.harness import Harness, every_driver


class StillClock:
    """The group commit's clock, moved by the test alone."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def on_disk(path: Path) -> List[Tuple[str, object]]:
    """What another connection reads of the file: the committed orders' (state, exchange id), oldest sent first."""
    reader = sqlite3.connect(str(path))
    try:
        return [
            (str(state), number)
            for state, number in reader.execute(
                "SELECT state, exchange_id FROM journal_orders ORDER BY sent_at, intent_id"
            )
        ]
    finally:
        reader.close()


def number_of(answer: object) -> int:
    assert isinstance(answer, dict)
    return int(str(answer["order_id"]).replace("ord_", ""))


@every_driver()
async def test_an_order_costs_one_commit_and_its_outcome_is_read_at_once(h: Harness, tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    store = SQLiteJournal(str(path), clock=StillClock())  # its group commit never comes due here
    api = h.client(journal=store)
    await api.create_order(future_order(price=50.0))  # the first order also records the exchange and the trader
    await journaled(api)
    before = store.commits
    order = await api.create_order(future_order(price=51.0))
    assert store.commits == before + 1 and store.held() == 1  # the intent's commit; the outcome is held
    assert on_disk(path)[-1] == (INTENT, None)  # the outcome is not in the file yet
    read = await journaled(api)  # a read of this process answers with it at once
    assert [(row.state, row.exchange_id) for row in read[-1:]] == [(CREATED, number_of(order))]
    assert on_disk(path)[-1] == (CREATED, number_of(order)) and store.held() == 0
    after = await api.create_order(future_order(price=52.0))
    await api.create_order(future_order(price=53.0))  # its intent's commit carries the previous outcome
    assert store.commits == before + 4 and store.held() == 1
    assert on_disk(path)[-2:] == [(CREATED, number_of(after)), (INTENT, None)]


@every_driver()
async def test_a_bulk_of_a_hundred_costs_two_commits(h: Harness, tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    store = SQLiteJournal(str(path), clock=StillClock())
    api = h.client(journal=store)
    await api.create_order(future_order(price=50.0))
    await journaled(api)
    before = store.commits
    result = await api.create_order({"orders": [future_order(price=10.0 + number) for number in range(100)]})
    assert len(result["created"]) == 100
    assert store.commits == before + 1 and store.held() == 100  # the intents, together
    assert [state for state, _ in on_disk(path)[1:]] == [INTENT] * 100
    store.flush(5.0)  # what the group commit does within the bound
    assert store.commits == before + 2 and store.outcomes_committed >= 100
    assert [state for state, _ in on_disk(path)[1:]] == [CREATED] * 100


def held_intent(store: SQLiteJournal, exchange_id: int) -> str:
    intent = Intent("a-held-one", future_order(), "2030-01-01T10:00:00.000000Z", "bot-a", "2030-01-01T10:00:10Z")
    store.add_intents([intent], 5.0)
    store.settle_soon([Outcome(intent.intent_id, CREATED, "2030-01-01T10:00:00.100000Z", exchange_id=exchange_id)])
    return intent.intent_id


def test_the_group_commit_makes_a_held_outcome_durable_within_the_bound(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    clock = StillClock()
    store = SQLiteJournal(str(path), clock=clock)
    try:
        committed = threading.Event()
        held_intent(store, 7)
        assert on_disk(path) == [(INTENT, None)] and store.held() == 1
        # The group commit starts half way through the bound, and is given the other half to end.
        assert GROUP_COMMIT_AFTER == OUTCOME_DURABLE_WITHIN / 2 and OUTCOME_DURABLE_WITHIN <= 1.0
        clock.now += GROUP_COMMIT_AFTER
        store.wake()
        give_up = time.monotonic() + 30.0  # a bound on a hang, not a timing
        while store.outcomes_committed < 1 and time.monotonic() < give_up:
            committed.wait(0.01)
        assert store.outcomes_committed == 1 and store.held() == 0
        assert on_disk(path) == [(CREATED, 7)]
    finally:
        store.close()


def test_closing_the_store_commits_what_it_holds(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    store = SQLiteJournal(str(path), clock=StillClock())
    held_intent(store, 8)
    assert on_disk(path) == [(INTENT, None)]
    store.close()
    assert on_disk(path) == [(CREATED, 8)]


@every_driver()
async def test_an_outcome_lost_with_its_process_is_recovered_by_reconcile(h: Harness, tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    dying = h.client(journal=SQLiteJournal(str(path), clock=StillClock()))
    first = await dying.create_order(future_order(price=59.0))  # it records the trader: a write, which carries it
    order = await dying.create_order(future_order(price=60.0))
    assert on_disk(path) == [(CREATED, number_of(first)), (INTENT, None)]  # the process dies here, holding it
    restarted = h.client(journal=f"sqlite:///{path}?writer={dying.journal.writer}")
    done = await restarted.reconcile()
    assert [(row.state, row.exchange_id) for row in done.settled] == [(CREATED, number_of(order))]
    assert on_disk(path) == [(CREATED, number_of(first)), (CREATED, number_of(order))]
