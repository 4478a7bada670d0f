"""The bot of the crash test: reconciles at start, then places orders until its journal holds ``--orders``.

``python -m tests.support.journal_crash_bot URL JOURNAL --driver sync|asyncio|trio --orders 300 --seed 1``

Run as a subprocess and killed with SIGKILL at random moments by
``test_journal_crash.py``; every restart goes on from what the journal
says. Prints ``reconciled <settled> <foreign>`` after its start-up
reconciliation and ``done`` at the end. ``--reconcile-every N`` reconciles
again after every N orders (two processes sharing a journal).
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
import time
from typing import Any, Dict, List

import anyio

from gameproto import OutcomeUnknownError
from tests.support.common import TOKEN

#: Seconds between two order requests: orders placed over time (300 take at least 6 s).
PACE = 0.02
DAY = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=2)).date().isoformat()


def order(rng: random.Random) -> Dict[str, Any]:
    hour = rng.randrange(8, 12)
    return {
        "side": "buy",
        "price": float(40 + rng.randrange(20)),
        "volume": float(rng.choice((1, 2, 3))),
        "date": DAY,
        "start_time": f"{hour:02d}:00",
        "end_time": f"{hour:02d}:15",
        "duration": "15m",
        "tz_offset_hours": 0,
    }


def plan(rng: random.Random) -> List[Dict[str, Any]]:
    """One request's orders: mostly one, sometimes a bulk of three."""
    return [order(rng) for _ in range(3 if rng.random() < 0.1 else 1)]


def mine(orders: List[Any], writer: str, journal: str) -> int:
    """The orders this bot placed, its earlier runs included: by its writer name when the URL gives one.

    Without one, each run has a name of its own, and every order of ours is the bot's.
    """
    named = "writer=" in journal
    return sum(1 for recorded in orders if recorded.origin == "ours" and (recorded.writer == writer or not named))


def run_sync(args: argparse.Namespace, rng: random.Random) -> None:
    from gameproto_sync import GameAPI

    with GameAPI(TOKEN, args.url, journal=args.journal, timeout=10, requests_per_minute=None) as api:
        done = api.reconcile()
        print("reconciled", len(done.settled), len(done.foreign), flush=True)
        placed = mine(api.journal.orders(), api.journal.writer, args.journal)
        sent = 0
        while placed < args.orders:
            orders = plan(rng)[: args.orders - placed]
            try:
                api.create_order(orders[0] if len(orders) == 1 else {"orders": orders})
            except OutcomeUnknownError:
                pass
            placed += len(orders)
            sent += 1
            if args.reconcile_every and sent % args.reconcile_every == 0:
                api.reconcile()
            time.sleep(PACE)
    print("done", flush=True)


async def run_async(args: argparse.Namespace, rng: random.Random) -> None:
    from gameproto_async import GameAPI

    async with GameAPI(TOKEN, args.url, journal=args.journal, timeout=10, requests_per_minute=None) as api:
        done = await api.reconcile()
        print("reconciled", len(done.settled), len(done.foreign), flush=True)
        placed = mine(await api.journal.orders(), api.journal.writer, args.journal)
        sent = 0
        while placed < args.orders:
            orders = plan(rng)[: args.orders - placed]
            try:
                await api.create_order(orders[0] if len(orders) == 1 else {"orders": orders})
            except OutcomeUnknownError:
                pass
            placed += len(orders)
            sent += 1
            if args.reconcile_every and sent % args.reconcile_every == 0:
                await api.reconcile()
            await anyio.sleep(PACE)
    print("done", flush=True)


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("journal")
    parser.add_argument("--driver", default="sync", choices=("sync", "asyncio", "trio"))
    parser.add_argument("--orders", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reconcile-every", type=int, default=0)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    if args.driver == "sync":
        run_sync(args, rng)
    else:
        anyio.run(run_async, args, rng, backend=args.driver)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
