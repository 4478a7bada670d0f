"""``python -m benchmarks.replay``: record a moving sandbox, replay it over HTTP at 100x and in process.

1. A sandbox with moving makers (``game serve --clock manual --seed-market``,
   its own process) is recorded by ``game record``'s loop driving its clock:
   one poll a replayed second for ``--hours`` (24 by default).
2. ``game serve --replay --speed 100`` (its own process) plays it while a bot
   places an order every replayed minute; each minute the bot also reads
   ``/status`` and measures how far behind its schedule the replayed clock
   is when the answer reaches the bot: the schedule at the answer's arrival
   (the recording's start plus 100 times the host seconds since the replay
   began) minus the time the answer shows (the book is played up to the
   clock it is read at, so the answer shows the book of that moment).
   Server and bot share this host's monotonic clock; where the schedule
   began is bounded from the readings (no reading of the clock comes before
   its request was sent), which makes each figure an upper bound, exact to
   the quickest request's way in. Done when never more than 2 s. The whole
   round trip of each ``/status`` call, at 100x, is reported beside it: it
   also counts the request's way in and the token exchanges the client
   makes on the way (one a replayed hour).
3. ``Backtest`` plays it in process with the same bot, as fast as the CPU
   allows. Done when 24 h take at most 86 s (1000x).

Prints the recording's size (file, polls, book changes, trades) and the
replay's (events, the bot's orders and fills, the fill log), and the times.
``--busy N`` records a synthetic busy book instead of the sandbox (N of its
400 levels change each replayed second, 50 giving 180,000 changes an hour):
a replay must keep up with many recorded changes too.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any, Dict, List, Optional

ADMIN = "bench-admin"
TOKEN = "demo-token"
SPEED = 100.0
_URL = re.compile(r"serving on (http://[0-9.:]+)")


class Served:
    """``game serve`` in a child process, on a free port; stopped at the end of the block."""

    def __init__(self, *flags: str) -> None:
        command = [sys.executable, "-m", "gameproto_cli", "serve", "--port", "0", *flags]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.base_url = ""
        assert self.process.stdout is not None
        for line in self.process.stdout:
            found = _URL.search(line)
            if found:
                self.base_url = found.group(1)
            if line.startswith("press Ctrl-C"):
                return
        raise RuntimeError(f"game serve did not start (exit {self.process.wait()})")

    def __enter__(self) -> Served:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.process.terminate()
        self.process.wait(30)
        assert self.process.stdout is not None
        self.process.stdout.close()


def _order(contract: str, side: str, price: Decimal, volume: Decimal) -> Dict[str, Any]:
    start = dt.datetime.strptime(contract[:16], "%Y-%m-%dT%H:%M").replace(tzinfo=dt.timezone.utc)
    end = start + dt.timedelta(minutes=15)
    return {
        "side": side,
        "price": price,
        "volume": volume,
        "date": start.date().isoformat(),
        "start_time": start.strftime("%H:%M"),
        "end_time": end.strftime("%H:%M"),
        "duration": "15m",
        "tz_offset_hours": 0,
    }


def minute_bot(
    api: Any,
    lags: Optional[List[float]] = None,
    stop: Optional[float] = None,
    round_trips: Optional[List[float]] = None,
) -> int:
    """An order every replayed minute: a small bid just under the best offer of the nearest open quarter-hour.

    With ``lags`` it also reads ``/status`` each minute and notes how far the
    exchange's clock is behind its schedule as each answer arrives (and in
    ``round_trips`` each call's round trip, at SPEED). Returns the orders placed.
    """
    placed = 0
    minute = 0
    readings: List[tuple] = []  # (sent, received, the exchange's time it answered with), host seconds
    api.get_status()  # the exchange's clock (the replay's), and the token exchange out of the measured calls
    first = api._session.exchange_now()
    assert first is not None  # /status told it
    while stop is None or time.monotonic() < stop:
        if lags is not None:
            sent = time.monotonic()
            status = api.get_status()
            received = time.monotonic()
            if status["replay"].get("finished"):
                break
            stamp = dt.datetime.fromisoformat(status["timestamp"].replace("Z", "+00:00")).timestamp()
            readings.append((sent, received, stamp))
        now = api._session.exchange_now()
        assert now is not None  # /status told it
        soon = now + dt.timedelta(minutes=5)
        best = api.get_market_best_offers(duration="15m", top_n=1)
        for contract in sorted(best):
            start = dt.datetime.strptime(contract[:16], "%Y-%m-%dT%H:%M").replace(tzinfo=dt.timezone.utc)
            asks = best[contract].get("sell")
            if start > soon and asks:
                price = Decimal(str(asks[0]["price"])) - Decimal(minute % 3)
                api.create_order(_order(contract, "buy", price, Decimal("0.5")))
                placed += 1
                break
        minute += 1
        # On each minute of the exchange's clock: the time a round takes is not added to the next wait, so
        # the bot keeps to one order a replayed minute however slow its answers come.
        due = first + dt.timedelta(minutes=minute)
        current = api._session.exchange_now()
        api.sleep(max(0.0, (due - current).total_seconds()) if current is not None else 60.0)
    if lags is not None and readings:
        lags.extend(behind_schedule(readings))
        if round_trips is not None:
            round_trips.extend((received - sent) * SPEED for sent, received, _ in readings)
    return placed


def behind_schedule(readings: List[tuple]) -> List[float]:
    """How far behind its schedule the replayed clock was as each answer arrived, in replayed seconds.

    ``readings`` are (sent, received, shown): the host's monotonic clock
    when the request left and when its answer came, and the exchange time
    the answer shows. The schedule is ``origin + SPEED * host``; ``origin``
    is not told, but each answer's clock was read after its request left
    (``shown >= origin + SPEED * sent``), so ``origin`` is at most the least
    ``shown - SPEED * sent``: with it, ``SPEED * received + origin - shown``
    is each answer's lag or more (never less).
    """
    origin = min(shown - SPEED * sent for sent, _, shown in readings)
    return [max(0.0, SPEED * received + origin - shown) for _, received, shown in readings]


def record_sandbox(path: Path, hours: float) -> Dict[str, Any]:
    from gameproto_exchange import SandboxClock, record
    from gameproto_exchange._recording import info
    from gameproto_sync import GameAPI

    with Served("--clock", "manual", "--admin-token", ADMIN, "--seed-market", "--seed", "5") as served:
        with GameAPI(TOKEN, served.base_url) as api:
            driver = SandboxClock(served.base_url, ADMIN)
            started = time.monotonic()
            polls = record(api, str(path), every=1.0, duration=hours * 3600, driver=driver, say=lambda line: None)
            took = time.monotonic() - started
            driver.close()
    held = info(str(path))
    return {
        "polls": polls,
        "seconds": round(took, 1),
        "bytes": held.bytes,
        "level_changes": held.level_changes,
        "trades": held.trades,
        "bytes_per_replayed_hour": round(held.bytes / hours),
    }


class _InMemory:
    """A moving sandbox answered in memory (no server), and its manual clock moved directly: for long recordings.

    ``record`` runs on it as on ``game serve`` (the same engine, makers and
    client); only HTTP is left out, so that a 24-hour recording takes
    minutes on a busy machine.
    """

    def __init__(self, start: float) -> None:
        from gameproto.simulator.exchange import Exchange
        from gameproto.simulator.makers import Scenario
        from gameproto_exchange import ManualClock, Sandbox

        self.clock = ManualClock(start)
        self.exchange = Exchange([TOKEN], clock=self.clock, seed=5)
        self.sandbox = Sandbox(self.exchange, clock=self.clock, scenario=Scenario())
        self.exchange.seed_market()
        self.sandbox.quote()
        self.seed = 0
        self.token = TOKEN
        self._progress = 0  # what a backtest's transport counts

    def wait(self, seconds: float) -> None:
        raise AssertionError("the recorder drives the clock: it never waits")

    # The clock driver's face (SandboxClock's): the time, and moving it as the admin endpoint does.
    def now(self) -> float:
        return self.clock()

    def advance(self, seconds: float) -> float:
        self.clock.advance(seconds)
        self.exchange.ledger.expire(self.clock())
        self.sandbox.quote()
        return self.clock()

    def set(self, moment: float) -> float:
        self.clock.set(moment)
        return self.clock()

    def close(self) -> None:
        pass


def record_in_memory(path: Path, hours: float) -> Dict[str, Any]:
    from gameproto_exchange import record
    from gameproto_exchange._backtest import _BlockingClient
    from gameproto_exchange._recording import info

    memory = _InMemory(time.time())
    with _BlockingClient(memory) as api:  # type: ignore[arg-type]
        started = time.monotonic()
        polls = record(api, str(path), every=1.0, duration=hours * 3600, driver=memory, say=lambda line: None)  # type: ignore[arg-type]
        took = time.monotonic() - started
    held = info(str(path))
    return {
        "in_memory": True,
        "polls": polls,
        "seconds": round(took, 1),
        "bytes": held.bytes,
        "level_changes": held.level_changes,
        "trades": held.trades,
        "bytes_per_replayed_hour": round(held.bytes / hours),
    }


def record_busy(path: Path, hours: float, per_second: int) -> Dict[str, Any]:
    """A synthetic busy book, written poll by poll as ``game record`` does: ``per_second`` of 400 levels move a second.

    Twenty quarter-hours, from two hours after the start, ten bids and ten
    offers each; a seeded random draw picks the levels that change and their
    new volumes. No trades: it measures how a replay keeps up with many
    recorded changes.
    """
    import random

    from gameproto_exchange import RecordingWriter
    from gameproto_exchange._recording import info

    draw = random.Random(7)
    start = float(int(time.time()) // 900 * 900)
    first = dt.datetime.fromtimestamp(start, dt.timezone.utc) + dt.timedelta(hours=2)
    contracts = [(first + dt.timedelta(minutes=15 * k)).strftime("%Y-%m-%dT%H:%M:00Z/PT15M") for k in range(20)]
    levels = {
        (contract, side, base + step): draw.randrange(1, 20)
        for contract in contracts
        for side, base in (("buy", 40), ("sell", 60))
        for step in range(10)
    }
    keys = sorted(levels)
    started = time.monotonic()
    with RecordingWriter(path, source="synthetic") as writer:
        for second in range(int(hours * 3600) + 1):
            moment = start + second
            for key in draw.sample(keys, min(per_second, len(keys))):
                levels[key] = draw.randrange(1, 20)
            stamp = dt.datetime.fromtimestamp(moment, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            rows = [
                {
                    "contract": contract,
                    "direction": side,
                    "price": price,
                    "volume": volume,
                    "duration": "15m",
                    "timestamp": stamp,
                }
                for (contract, side, price), volume in levels.items()
            ]
            writer.write(exchange_time=moment, local_time=time.time(), market=rows, trades=None, ltp=())
    held = info(str(path))
    return {
        "synthetic": True,
        "polls": held.polls,
        "seconds": round(time.monotonic() - started, 1),
        "bytes": held.bytes,
        "level_changes": held.level_changes,
        "trades": held.trades,
        "bytes_per_replayed_hour": round(held.bytes / hours),
    }


def replay_http(path: Path, hours: float) -> Dict[str, Any]:
    from gameproto_sync import GameAPI

    lags: List[float] = []
    round_trips: List[float] = []
    with Served("--replay", str(path), "--speed", str(SPEED)) as served:
        with GameAPI(TOKEN, served.base_url) as api:
            started = time.monotonic()
            placed = minute_bot(api, lags, stop=started + hours * 3600 / SPEED + 5, round_trips=round_trips)
            took = time.monotonic() - started
            trades = api.get_trades()
    mine = [trade for trade in trades if trade["buyer"] == "trader-1" or trade["seller"] == "trader-1"]
    return {
        "orders": placed,
        "fills": len(mine),
        "seconds": round(took, 1),
        "status_calls": len(lags),
        **_spread("behind_schedule_s", lags),
        **_spread("round_trip_at_100x_s", round_trips),
    }


def _spread(name: str, figures: List[float]) -> Dict[str, Optional[float]]:
    """The worst, 99th percentile and median of ``figures`` (None each when there are none)."""
    ordered = sorted(figures)
    picks = {"max": -1, "p99": int(len(ordered) * 0.99), "median": len(ordered) // 2}
    return {f"{which}_{name}": round(ordered[at], 3) if ordered else None for which, at in picks.items()}


def replay_in_process(path: Path) -> Dict[str, Any]:
    from gameproto_exchange import Backtest

    started = time.monotonic()
    backtest = Backtest(str(path))
    loaded = time.monotonic() - started
    placed: List[int] = []
    report = backtest.run(lambda api: placed.append(minute_bot(api)))
    took = time.monotonic() - started
    log = backtest.fill_log()
    return {
        "events": len(backtest.tape),
        "load_seconds": round(loaded, 2),
        "seconds": round(took, 2),
        "fills": len(report["fills"]),
        "trades_listed": len(backtest.trades()),
        "fill_log_bytes": len(log),
        "fill_hash": report["fill_hash"],
        "speedup": round((backtest.tape.end - backtest.tape.start) / took),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.replay", description=__doc__)
    parser.add_argument("--hours", type=float, default=24.0, help="replayed hours to record (24)")
    parser.add_argument("--recording", help="reuse (or keep) this recording instead of a temporary one")
    parser.add_argument("--skip-http", action="store_true", help="only record and replay in process")
    parser.add_argument(
        "--record-in-memory", action="store_true", help="record the sandbox without HTTP (the same engine and loop)"
    )
    parser.add_argument("--http-hours", type=float, help="replay only this many hours over HTTP (default: all)")
    parser.add_argument(
        "--busy",
        type=int,
        metavar="N",
        help="record a synthetic busy book instead: N of its 400 levels change a second",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(args.recording) if args.recording else Path(scratch) / "day.sqlite"
        results: Dict[str, Any] = {"hours": args.hours}
        if not path.exists() and args.busy:
            results["record"] = record_busy(path, args.hours, args.busy)
        elif not path.exists():
            recorder = record_in_memory if args.record_in_memory else record_sandbox
            results["record"] = recorder(path, args.hours)
        if not args.skip_http:
            results["replay_http_100x"] = replay_http(path, args.http_hours or args.hours)
        results["replay_in_process"] = replay_in_process(path)
    if args.json:
        print(json.dumps(results))
    else:
        for name, figures in results.items():
            print(f"{name}: {figures}")
        process = results["replay_in_process"]
        budget = 86 * args.hours / 24
        print(f"in process: {process['seconds']} s for {args.hours:g} h (done when at most {budget:.1f} s)")
        if "replay_http_100x" in results:
            http = results["replay_http_100x"]
            print(
                f"over HTTP at 100x: at most {http['max_behind_schedule_s']} s behind schedule (done when at most"
                f" 2 s); the slowest /status round trip, at 100x: {http['max_round_trip_at_100x_s']} s"
            )
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
