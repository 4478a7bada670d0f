"""The time the order journal adds to an order, against its floor: ``python -m benchmarks.journal``.

Options: ``[--orders N] [--rounds R] [--bulk N] [--postgres URL | --no-postgres] [--json]``.

The blocking client places ``--orders`` single orders (200) against
``game serve`` in a child process on loopback, in ``--rounds`` rounds (10)
interleaved so that the machine's drift falls on all alike: without a
journal, with a SQLite journal (WAL, ``synchronous=FULL``) in a temporary
folder, and with a PostgreSQL journal (``--postgres URL``, or a durable
server started for the run when the binaries are installed: fsync on, the
defaults). In the same rounds, in the same folder, it times the **floor**:
one bare SQLite commit of a small row (WAL, ``synchronous=FULL``), alone and
followed by the order without a journal (``commit+order``): what no journal
that makes its intent durable before the request leaves can beat.

It prints each way's median and 99th percentile round trip, the journal's
share (the median of the rounds' medians, minus the same without a
journal), that share over the floor and over ``commit+order``'s, and the
commits each journal made: per single order (its outcome rides on the next
order's commit, or the group commit), and for one bulk of ``--bulk`` orders
(100) until its outcomes are durable.
Figures are printed, not asserted: benchmarks are not tests.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sqlite3
import statistics
import tempfile
import time
from contextlib import ExitStack
from typing import Any, Callable, Dict, List, Optional, Union

from gameproto_journal import PostgresJournal, SQLiteJournal, open_journal
from gameproto_sync import GameAPI

from .server import TOKEN, ServerProcess

__all__ = ["main", "percentile", "bare_commit"]


def percentile(values: List[float], share: float) -> float:
    """The ``share`` (0..1) percentile of ``values``, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def _order(number: int) -> Dict[str, Any]:
    day = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=2)).date().isoformat()
    return {
        "side": "buy",
        "price": float(10 + number % 50),
        "volume": 1.0,
        "date": day,
        "start_time": "10:00",
        "end_time": "10:15",
        "duration": "15m",
        "tz_offset_hours": 0,
    }


def bare_commit(folder: str) -> Callable[[], None]:
    """The floor: one commit of a small row in a SQLite file in ``folder``, WAL, ``synchronous=FULL``."""
    db = sqlite3.connect(os.path.join(folder, "floor.db"), isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE IF NOT EXISTS floor (id INTEGER PRIMARY KEY, value TEXT NOT NULL)")
    row = ("an intent of about a hundred bytes " * 3,)

    def commit() -> None:
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO floor (value) VALUES (?)", row)
        db.execute("COMMIT")

    return commit


def _postgres(stack: ExitStack, given: Optional[str]) -> Optional[str]:
    if given:
        return given
    try:
        from tests.support.postgres_server import PostgresServer, postgres_binaries
    except ImportError:
        return None
    if postgres_binaries() is None:
        return None
    server = PostgresServer(durable=True)
    server.start()
    stack.callback(server.stop)
    return server.new_database()


Store = Union[SQLiteJournal, PostgresJournal]


def _commits(store: Store) -> Callable[[], float]:
    """How many transactions ``store`` has committed so far (a store without the count: SQLite's own COMMITs)."""
    if hasattr(store, "commits"):
        return lambda: int(store.commits)
    if not isinstance(store, SQLiteJournal):
        return lambda: float("nan")  # not counted
    seen = [0]  # an older store: counted from the statements its connection runs

    def trace(statement: str) -> None:
        seen[0] += statement.strip().upper() == "COMMIT"

    store._db.set_trace_callback(trace)  # type: ignore[union-attr]
    return lambda: seen[0]


def _flush(store: Store) -> None:
    """Commit what the store holds now, as its group commit would within a second (a store holding none: nothing)."""
    flush = getattr(store, "flush", None)
    if flush is not None:
        flush(10.0)


def _bulk_commits(api: GameAPI, store: Store, count: Callable[[], float], size: int) -> float:
    """The commits a bulk of ``size`` orders costs until its outcomes are durable (the group commit's flush)."""
    _flush(store)
    before = count()
    api.create_order({"orders": [_order(number) for number in range(size)]})
    _flush(store)
    return count() - before


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=200, help="single orders per way (200)")
    parser.add_argument("--rounds", type=int, default=10, help="rounds the orders are spread over (10)")
    parser.add_argument("--bulk", type=int, default=100, help="orders in the bulk whose commits are counted (100)")
    parser.add_argument("--postgres", metavar="URL", help="a PostgreSQL database for the journal")
    parser.add_argument("--no-postgres", action="store_true", help="leave PostgreSQL out")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    rounds = max(1, args.rounds)
    per_round = max(1, args.orders // rounds)
    with ExitStack() as stack:
        server = stack.enter_context(ServerProcess())
        folder = stack.enter_context(tempfile.TemporaryDirectory())
        stores: Dict[str, Optional[Store]] = {"none": None, "sqlite": SQLiteJournal(os.path.join(folder, "bench.db"))}
        postgres = None if args.no_postgres else _postgres(stack, args.postgres)
        if postgres is not None:
            stores["postgres"] = open_journal(postgres)
        clients = {
            name: stack.enter_context(GameAPI(TOKEN, server.base_url, journal=store, requests_per_minute=None))
            for name, store in stores.items()
        }
        floor = bare_commit(folder)
        for api in clients.values():  # the token, the connection, the tables: out of the measure
            api.create_order(_order(0))
        counts = {name: _commits(store) for name, store in stores.items() if store is not None}
        commits_before = {name: count() for name, count in counts.items()}
        plain = clients["none"]

        def commit_then_order(order: Dict[str, Any]) -> Any:
            floor()
            return plain.create_order(order)

        # The floor inside an order: the bare commit, then the order without a journal. No write-ahead
        # journal can add less; what it adds beyond is the journal's own work.
        ways: Dict[str, Callable[[Dict[str, Any]], Any]] = {
            **{name: api.create_order for name, api in clients.items()},
            "commit+order": commit_then_order,
        }
        times: Dict[str, List[float]] = {name: [] for name in [*ways, "floor"]}
        medians: Dict[str, List[float]] = {name: [] for name in times}
        for round_ in range(rounds):
            for name, place in ways.items():
                spent = []
                for number in range(per_round):
                    started = time.perf_counter()
                    place(_order(round_ * 1000 + number))
                    spent.append(time.perf_counter() - started)
                times[name] += spent
                medians[name].append(statistics.median(spent))
            spent = []
            for _ in range(per_round):
                started = time.perf_counter()
                floor()
                spent.append(time.perf_counter() - started)
            times["floor"] += spent
            medians["floor"].append(statistics.median(spent))
        commits: Dict[str, Dict[str, float]] = {}
        for name, store in stores.items():
            if store is None:
                continue
            _flush(store)  # the last outcome, as the group commit would within a second
            single = (counts[name]() - commits_before[name]) / (rounds * per_round)
            bulk = _bulk_commits(clients[name], store, counts[name], args.bulk)
            commits[name] = {"per_order": single, "per_bulk": bulk}
    figures: Dict[str, Any] = {"rounds": rounds, "orders_per_round": per_round, "bulk": args.bulk, "ways": {}}
    base_p99 = percentile(times["none"], 0.99)
    floor_median = statistics.median(medians["floor"])
    added = {
        name: statistics.median(mine - bare for mine, bare in zip(medians[name], medians["none"])) for name in times
    }
    for name, values in times.items():
        median = statistics.median(medians[name])
        row: Dict[str, float] = {
            "orders": len(values),
            "median_ms": median * 1000,
            "p99_ms": percentile(values, 0.99) * 1000,
        }
        if name not in ("none", "floor"):
            row.update(
                added_median_ms=added[name] * 1000,
                added_p99_ms=(percentile(values, 0.99) - base_p99) * 1000,
                added_over_floor=added[name] / floor_median,
                added_over_commit_in_order=added[name] / added["commit+order"],
            )
        if name in commits:
            row.update(commits_per_order=commits[name]["per_order"], commits_per_bulk=commits[name]["per_bulk"])
        figures["ways"][name] = row
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    print(f"{rounds} rounds of {per_round} orders a way; the median of the rounds' medians")
    print(
        f"{'way':<12} {'median ms':>9} {'p99 ms':>7} {'added ms':>9} {'added p99':>9} {'/ floor':>8}"
        f" {'/ commit+order':>14} {'commits/order':>13} {f'commits/bulk {args.bulk}':>16}"
    )
    for name, row in figures["ways"].items():
        line = f"{name:<12} {row['median_ms']:>9.3f} {row['p99_ms']:>7.2f}"
        if "added_median_ms" in row:
            line += (
                f" {row['added_median_ms']:>9.3f} {row['added_p99_ms']:>9.2f} {row['added_over_floor']:>7.2f}x"
                f" {row['added_over_commit_in_order']:>13.2f}x"
            )
        if "commits_per_order" in row:
            line += f" {row['commits_per_order']:>13.3f} {row['commits_per_bulk']:>16.0f}"
        print(line)
    print("floor: one bare SQLite commit of a small row, WAL, synchronous=FULL, in the journal's folder;")
    print("commit+order: that commit, then the order without a journal (what no write-ahead journal can beat)")
    if "postgres" not in figures["ways"]:
        print("(no PostgreSQL: pass --postgres URL, or install the server binaries)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
