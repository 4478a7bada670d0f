"""The time the order journal adds to an order: ``python -m benchmarks.journal [--orders N] [--postgres URL]``.

The blocking client places ``--orders`` single orders (200) against
``game serve`` in a child process on loopback, three ways, interleaved in
rounds so that the machine's drift falls on all alike: without a journal,
with a SQLite journal (WAL, ``synchronous=FULL``: two fsyncs per order, the
intent and the outcome) in a temporary folder, and with a PostgreSQL journal
(``--postgres URL``, or a durable server started for the run when the
binaries are installed: fsync on, the defaults). It prints the median and
the 99th percentile of each order's round trip, and the journal's share: the
same figures minus those without a journal. Figures are printed, not
asserted: benchmarks are not tests.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import tempfile
import time
from contextlib import ExitStack
from typing import Any, Dict, List, Optional

from gameproto_sync import GameAPI

from .server import TOKEN, ServerProcess

__all__ = ["main", "percentile"]


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


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=200, help="orders per way (200)")
    parser.add_argument("--postgres", metavar="URL", help="a PostgreSQL database for the journal")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    with ExitStack() as stack:
        server = stack.enter_context(ServerProcess())
        folder = stack.enter_context(tempfile.TemporaryDirectory())
        ways: Dict[str, Optional[str]] = {"none": None, "sqlite": f"sqlite:///{folder}/bench.db"}
        postgres = _postgres(stack, args.postgres)
        if postgres is not None:
            ways["postgres"] = postgres
        clients = {
            name: stack.enter_context(GameAPI(TOKEN, server.base_url, journal=url, requests_per_minute=None))
            for name, url in ways.items()
        }
        for api in clients.values():  # the token, the connection, the tables: out of the measure
            api.create_order(_order(0))
        times: Dict[str, List[float]] = {name: [] for name in clients}
        rounds = 10
        for round_ in range(rounds):
            for name, api in clients.items():
                for number in range(args.orders // rounds):
                    started = time.perf_counter()
                    api.create_order(_order(round_ * 1000 + number))
                    times[name].append(time.perf_counter() - started)
    figures: Dict[str, Dict[str, float]] = {}
    base_median = statistics.median(times["none"])
    base_p99 = percentile(times["none"], 0.99)
    for name, values in times.items():
        median, p99 = statistics.median(values), percentile(values, 0.99)
        figures[name] = {
            "orders": len(values),
            "median_ms": median * 1000,
            "p99_ms": p99 * 1000,
            "added_median_ms": (median - base_median) * 1000,
            "added_p99_ms": (p99 - base_p99) * 1000,
        }
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    print(f"{'journal':<10} {'orders':>6} {'median ms':>10} {'p99 ms':>8} {'added median':>13} {'added p99':>10}")
    for name, row in figures.items():
        print(
            f"{name:<10} {int(row['orders']):>6} {row['median_ms']:>10.2f} {row['p99_ms']:>8.2f}"
            f" {row['added_median_ms']:>13.2f} {row['added_p99_ms']:>10.2f}"
        )
    if "postgres" not in figures:
        print("(no PostgreSQL: pass --postgres URL, or install the server binaries)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
