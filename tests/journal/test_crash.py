"""The crash test: a bot killed with SIGKILL at ten random moments loses nothing and doubles nothing.

A bot (a subprocess, ``tests/support/journal_crash_bot.py``) places 300 orders while
a second trader fills some of them. It is killed at ten seeded random
moments: some when a request of its reached the exchange and the answer is
held back by a loopback proxy (the intent committed, the answer not come:
certain, not likely), some when its request reaches the proxy and is
dropped there (committed, never sent), the rest at a random time (start-up,
a reconciliation, a commit). After each kill it restarts on the same
journal and reconciles. At the end the journal and the exchange agree:
every order of the account is in the journal with its exchange id and
executed volume, no intent is unsettled, no order is recorded twice, every
trade once, and the recorded fills of each order add up to its executed
volume. Then two processes trade at once on one PostgreSQL journal.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest

from gameproto._journal import UNSETTLED
from gameproto.simulator.exchange import Exchange
from gameproto_exchange import ServerThread
from gameproto_journal import open_journal
from gameproto_sync import GameAPI
from tests.support.common import OTHER_TOKEN, TOKEN
from tests.support.holding_proxy import HoldingProxy
from tests.support.postgres_server import PostgresServer, postgres_server

pytestmark = pytest.mark.component

ROOT = Path(__file__).resolve().parents[2]
ORDERS = 300
KILLS = 10


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    yield from postgres_server()


def bot(url: str, journal: str, driver: str, seed: int, orders: int = ORDERS, every: int = 0) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "tests.support.journal_crash_bot", url, journal, "--driver", driver]
    command += ["--orders", str(orders), "--seed", str(seed), "--reconcile-every", str(every)]
    environment = dict(os.environ, PYTHONPATH=str(ROOT))
    pipe = subprocess.PIPE
    return subprocess.Popen(command, cwd=ROOT, env=environment, stdout=pipe, stderr=pipe, text=True)


class Seller:
    """The second trader: sells now and then, at prices that meet some of the bot's buys."""

    def __init__(self, base_url: str, seed: int) -> None:
        self.api = GameAPI(OTHER_TOKEN, base_url, requests_per_minute=None)
        self.rng = random.Random(seed)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import datetime as dt

        day = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=2)).date().isoformat()
        while not self.stop.wait(0.02):
            hour = self.rng.randrange(8, 12)
            self.api.create_order(
                {
                    "side": "sell",
                    "price": float(45 + self.rng.randrange(15)),
                    "volume": float(self.rng.choice((0.5, 1, 2))),
                    "date": day,
                    "start_time": f"{hour:02d}:00",
                    "end_time": f"{hour:02d}:15",
                    "duration": "15m",
                    "tz_offset_hours": 0,
                }
            )

    def __enter__(self) -> Seller:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop.set()
        self.thread.join()
        self.api.close()


def check(exchange: Exchange, journal: str) -> Dict[str, int]:
    """The journal and the exchange agree (the issue's list); returns a few counts for the report."""
    store = open_journal(journal)
    try:
        recorded = store.orders()
        trades = store.trades()
    finally:
        store.close()
    assert [order.intent_id for order in recorded if order.state in UNSETTLED] == []
    numbers = Counter(order.exchange_id for order in recorded if order.exchange_id is not None)
    assert [number for number, count in numbers.items() if count > 1] == []
    by_number = {order.exchange_id: order for order in recorded if order.exchange_id is not None}
    held = exchange.orders_of("alice")
    for listed in held:
        number = int(listed["order_id"])
        assert number in by_number, f"order {number} of the exchange is not in the journal"
        order = by_number[number]
        assert order.executed_volume == Decimal(str(listed["executed_volume"])), number
    for order in recorded:
        assert sum((fill.volume for fill in order.fills), Decimal(0)) == order.executed_volume
    mine = [(trade["trade_id"], "buy") for trade in exchange.trades if trade["buyer"] == "alice"]
    mine += [(trade["trade_id"], "sell") for trade in exchange.trades if trade["seller"] == "alice"]
    journaled = [(trade.trade_id, trade.side) for trade in trades]
    assert sorted(journaled) == sorted(mine)
    assert len(set(journaled)) == len(journaled)
    foreign = [order for order in recorded if order.origin == "foreign"]
    assert foreign == []  # every order of the account was placed by the bot
    return {"orders": len(recorded), "held": len(held), "trades": len(trades)}


def wait_for(event: threading.Event, process: subprocess.Popen[str]) -> bool:
    """Wait for ``event`` while the bot runs; False when the bot ended first."""
    while not event.wait(0.05):
        if process.poll() is not None:
            return event.is_set()
    return True


class Killer:
    """Counts one run's order requests; at the chosen one, holds its answer or drops it and kills the bot."""

    def __init__(self, kind: str, at: int, proxy: HoldingProxy) -> None:
        self.kind = kind
        self.at = at
        self.proxy = proxy
        self.posts = 0
        self.process: Optional[subprocess.Popen[str]] = None
        self.dropped = threading.Event()

    def on_request(self, method: str, target: str) -> bool:
        if method != "POST" or not target.startswith("/api/v1/orders"):
            return False
        self.posts += 1
        if self.posts != self.at:
            return False
        if self.kind == "held":
            self.proxy.hold_next("POST")  # this very request: passed on, its answer kept
        elif self.kind == "dropped" and self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.dropped.set()
            return True
        return False


def crash_run(exchange: Exchange, journal: str, driver: str, seed: int) -> Dict[str, Any]:
    rng = random.Random(seed)
    kinds = ["held"] * 4 + ["dropped"] * 3 + ["timer"] * 3
    rng.shuffle(kinds)
    outcomes: List[str] = []
    with ServerThread(exchange) as running, HoldingProxy("127.0.0.1", running.port) as proxy:
        with Seller(running.base_url, seed):
            for run, kind in enumerate([*kinds, "finish"]):
                killer = Killer(kind, rng.randrange(1, 25), proxy)
                proxy.on_request = killer.on_request
                process = killer.process = bot(proxy.url, journal, driver, seed * 100 + run)
                if kind == "held":
                    if wait_for(proxy.held, process):
                        process.send_signal(signal.SIGKILL)
                elif kind == "timer":
                    time.sleep(rng.uniform(0.3, 1.0))
                    process.send_signal(signal.SIGKILL)
                elif kind == "dropped":
                    wait_for(killer.dropped, process)
                out, err = process.communicate(timeout=120)
                proxy.cancel_hold()
                if kind == "finish":
                    assert process.returncode == 0 and "done" in out, err
                outcomes.append(f"{kind}:{process.returncode}")
        # The trader stopped: one last reconciliation records the last fills and trades
        # (through the proxy: the journal belongs to the exchange at that address).
        settle_everything(proxy.url, journal)
    killed = [outcome for outcome in outcomes if outcome.endswith(f":{-signal.SIGKILL}")]
    assert len(killed) >= KILLS - 3, outcomes  # a timer may fire after the bot finished
    assert sum(1 for outcome in outcomes if outcome == f"held:{-signal.SIGKILL}") >= 3, outcomes
    return {"outcomes": outcomes}


def settle_everything(url: str, journal: str) -> None:
    """Reconcile until no intent is left in flight: a killed run's intents settle once their windows close."""
    with GameAPI(TOKEN, url, journal=journal) as api:
        deadline = time.monotonic() + 120
        while api.reconcile().in_flight:
            assert time.monotonic() < deadline, "intents still in flight two minutes after the last run"
            time.sleep(0.5)


def fresh_exchange() -> Exchange:
    return Exchange(tokens={TOKEN: "alice", OTHER_TOKEN: "bob"}, seed=11, rate_limit_per_minute=1_000_000)


@pytest.mark.parametrize(
    ("store", "driver"),
    [("sqlite", "sync"), ("sqlite", "asyncio"), ("sqlite", "trio"), ("postgres", "sync"), ("postgres", "asyncio")],
)
def test_a_bot_killed_ten_times_loses_and_doubles_nothing(
    store: str, driver: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if store == "sqlite":
        journal = f"sqlite:///{tmp_path / 'bot.db'}"
    else:
        journal = request.getfixturevalue("pg").new_database()
    exchange = fresh_exchange()
    crash_run(exchange, journal, driver, seed=sum(map(ord, store + driver)))
    counts = check(exchange, journal)
    assert counts["orders"] >= ORDERS


def test_two_processes_trade_at_once_on_one_postgres_journal(pg: PostgresServer) -> None:
    journal = pg.new_database()
    exchange = fresh_exchange()
    with ServerThread(exchange) as running:
        with Seller(running.base_url, 5):
            bots = [
                bot(running.base_url, f"{journal}?writer={name}", driver, seed, orders=150, every=10)
                for name, driver, seed in (("a", "sync", 1), ("b", "asyncio", 2))
            ]
            for process in bots:
                out, err = process.communicate(timeout=300)
                assert process.returncode == 0 and "done" in out, err
        settle_everything(running.base_url, journal)
    counts = check(exchange, journal)
    assert counts["orders"] == counts["held"] >= 300
