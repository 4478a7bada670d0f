"""What the journal's reads cost on a big journal: ``python -m benchmarks.journal_reads [--orders 100000]``.

A SQLite journal of ``--orders`` orders (each with two state changes, a fill
and, for one in ten, a trade; a hundred still live) is written through the
store, then:

- ``reconcile()`` of the blocking client against ``game serve`` (a child
  process on loopback), with ``timeout=2``: the median and the slowest of
  five runs (it reads the unsettled intents, the journal's orders among
  those listed or traded, and the live ones: by index, not the journal);
- ``orders(exchange_id=...)``: the median of a hundred lookups, and the rows
  each read;
- ``game journal export`` (CSV) in a child process: its time and its peak
  resident memory (the child's whole ``ru_maxrss``, interpreter included);
  the export reads a page at a time, so that figure does not grow with the
  journal.

Figures are printed, not asserted: benchmarks are not tests.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional

from gameproto._journal import CREATED, DELETED, Intent, JournalTrade, Observed, Outcome
from gameproto._journal_records import normalise_base_url
from gameproto.journal import ExchangeIdentity
from gameproto_journal import SQLiteJournal
from gameproto_sync import GameAPI

from .journal import _order
from .server import TOKEN, ServerProcess

__all__ = ["main", "fill_journal"]

#: Orders written per store call while the journal is filled.
BATCH = 5000
#: Orders left live (``created``) in the journal: the rest have ended.
LIVE = 100


def fill_journal(path: str, orders: int, base_url: str) -> None:
    """A journal of ``orders`` orders, bound to ``base_url``, written through the store."""
    store = SQLiteJournal(path)
    try:
        store.bind(ExchangeIdentity(normalise_base_url(base_url), traders=("alice",)), 30.0)
        for start in range(0, orders, BATCH):
            numbers = range(start, min(orders, start + BATCH))
            stamp = "2031-01-14T09:00:00.000Z"
            intents = [
                Intent(f"i{n:09d}", _order(n), f"2031-01-14T09:{n % 60:02d}:00.{n:06d}Z", "w", "") for n in numbers
            ]
            store.add_intents(intents, 60.0)
            # Exchange ids far above the sandbox's: the journal's old orders are not listed.
            store.settle([Outcome(f"i{n:09d}", CREATED, stamp, exchange_id=10**6 + n) for n in numbers], 60.0)
            store.observe([Observed(10**6 + n, "0.5", CREATED if n < LIVE else DELETED, stamp) for n in numbers], 60.0)
            trades = [
                JournalTrade(f"trd_b{n}", "buy", 10**6 + n, "c", _dec("50"), _dec("0.5"), stamp, "alice", "bob")
                for n in numbers
                if n % 10 == 0
            ]
            store.add_trades(trades, 60.0)
    finally:
        store.close()


def _dec(text: str) -> Any:
    from decimal import Decimal

    return Decimal(text)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=100_000, help="orders in the journal (100000)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    figures: Dict[str, Any] = {"orders": args.orders}
    with ServerProcess() as server, tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "big.db")
        started = time.perf_counter()
        fill_journal(path, args.orders, server.base_url)
        figures["fill_s"] = time.perf_counter() - started
        url = f"sqlite:///{path}"
        with GameAPI(TOKEN, server.base_url, journal=url, timeout=2.0, requests_per_minute=None) as api:
            api.create_order(_order(1))  # the token, the connection: out of the measure
            times = []
            for _ in range(5):
                started = time.perf_counter()
                api.reconcile()
                times.append(time.perf_counter() - started)
            figures["reconcile_median_s"] = statistics.median(times)
            figures["reconcile_max_s"] = max(times)
        store = SQLiteJournal(path)
        try:
            lookups = []
            store.rows_read = 0
            for n in range(0, args.orders, max(1, args.orders // 100)):
                started = time.perf_counter()
                store.orders(exchange_id=10**6 + n)
                lookups.append(time.perf_counter() - started)
            figures["lookup_median_ms"] = statistics.median(lookups) * 1000
            figures["lookup_rows_read"] = store.rows_read / len(lookups)
        finally:
            store.close()
        started = time.perf_counter()
        command = [sys.executable, "-m", "gameproto_cli", "journal", "export", "--journal", url, "--format", "csv"]
        with open(os.devnull, "w") as sink:
            subprocess.run(command, stdout=sink, stderr=subprocess.DEVNULL, check=True, env=_no_token())
        figures["export_s"] = time.perf_counter() - started
        figures["export_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    for name, value in figures.items():
        print(f"{name:<22} {value:>12.3f}" if isinstance(value, float) else f"{name:<22} {value:>12}")
    return 0


def _no_token() -> Dict[str, str]:
    return {key: value for key, value in os.environ.items() if key != "GAME_API_TOKEN"}


if __name__ == "__main__":
    raise SystemExit(main())
