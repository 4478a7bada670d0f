"""``python -m benchmarks.sandbox_history``: does a busy sandbox with a long history slow its traders?

The case: ``game serve --state`` holding 100,000 resting orders of 10 traders
(the resting cap raised) over 96 quarter-hour contracts and about 100 price
levels each, after 50,000 orders filled; one public and one admin page open
(what the page's script does: ``GET /_view`` twice a second, the whole view
read when it changed) and 10 ``/market`` pollers, each twice a second. Four
figures, side by side in one run:

1. a well-behaved trader placing and cancelling one order at a time: its p99
   on that server with nothing open and no pollers, then with the pages and
   pollers (goal: within 2x);
2. what one change costs the server (placing or cancelling an order and its
   save to the state file, in process, CPU time), at 50,000 filled and at none
   (goal: within 1.2x);
3. what one render of the public and of the admin view costs, against one
   ``/market`` answer for the contracts the view shows (goal: within 2x);
4. that refused requests write nothing (the state file's WAL does not grow).

The state is made in process (placing the orders one by one through the
exchange's desk, then one save), then served by a ``game serve`` child
process. ``--small`` runs the same at a fiftieth of the size, in seconds (the
smoke test uses it). Timings are wall-clock on a shared machine: read them as
ratios of figures taken side by side.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

from gameproto._calls import encode_json
from gameproto.simulator.answers import iso
from gameproto.simulator.exchange import Exchange
from gameproto.simulator.views import day_start, level_row, summary_row
from gameproto_exchange import ManualClock, Sandbox, Store
from gameproto_exchange._web import Views

__all__ = ["main", "Size"]

ADMIN = "sandbox-history-admin"
PROBE = "sandbox-history-probe"
POLL_SECONDS = 0.5
_URL = re.compile(r"serving on (http://\S+?) ")


@dataclass(frozen=True)
class Size:
    traders: int = 10
    resting: int = 100_000
    filled: int = 50_000
    contracts: int = 96
    levels: int = 100
    calls: int = 10_000
    changes: int = 400
    renders: int = 50


SMALL = Size(traders=4, resting=2_000, filled=1_000, contracts=8, levels=20, calls=60, changes=60, renders=10)


def _tokens(size: Size) -> Dict[str, str]:
    tokens = {f"sandbox-history-trader-{n}": f"trader-{n}" for n in range(size.traders)}
    tokens[PROBE] = "probe"
    return tokens


def _order(start: dt.datetime, side: str, price: float, volume: float = 1.0) -> Dict[str, Any]:
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


def _starts(now: float, size: Size) -> List[dt.datetime]:
    first = dt.datetime.fromtimestamp((now // 900 + 4) * 900, dt.timezone.utc)  # an hour ahead at least
    return [first + dt.timedelta(minutes=15 * n) for n in range(size.contracts)]


def build(path: str, size: Size, now: float, filled: int) -> Sandbox:
    """A sandbox on ``path`` holding ``size.resting`` resting orders after ``filled`` filled ones, saved."""
    clock = ManualClock(now)
    exchange = Exchange(tokens=_tokens(size), clock=clock, max_resting_orders=size.resting, rate_limit_per_minute=10**6)
    sandbox = Sandbox(exchange, clock=clock, admin_token=ADMIN, store=Store(path))
    place, starts, names = exchange.desk.place, _starts(now, size), list(_tokens(size).values())[: size.traders]
    for n in range(filled // 2):  # pairs that trade in full at 50, between two traders
        start = starts[n % len(starts)]
        place(_order(start, "sell", 50.0), names[n % len(names)], now)
        place(_order(start, "buy", 50.0), names[(n + 1) % len(names)], now)
    half = size.levels // 2
    for n in range(size.resting):  # bids below 45, asks above 55: nothing trades
        start, level = starts[n % len(starts)], (n // len(starts)) % half
        side, price = ("buy", 45.0 - level * 0.1) if n % 2 else ("sell", 55.0 + level * 0.1)
        place(_order(start, side, round(price, 2)), names[n % len(names)], now)
    sandbox.changed()
    return sandbox


def change_cost(sandbox: Sandbox, changes: int) -> List[float]:
    """CPU seconds of each of ``changes`` changes (a place or a cancel, and its save)."""
    exchange, now = sandbox.exchange, sandbox.now()
    start = _starts(now, Size(contracts=1))[0]
    costs: List[float] = []
    for _ in range(changes // 2):
        began = time.process_time()
        order, _, _ = exchange.desk.place(_order(start, "buy", 1.0), "probe", now)
        sandbox.changed()
        costs.append(time.process_time() - began)
        assert order is not None
        began = time.process_time()
        exchange.ledger.cancel(order, now)
        sandbox.changed()
        costs.append(time.process_time() - began)
    return costs


def change_costs(fresh: Sandbox, history: Sandbox, changes: int) -> Tuple[float, float]:
    """The median change of each, measured in turns (20 of one, 20 of the other) so that the
    machine's other work weighs on both alike; each file checkpointed first, as a server that has
    run a while has it (the build wrote it in one large transaction)."""
    for sandbox in (fresh, history):
        assert sandbox.store is not None
        sandbox.store._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    costs: Tuple[List[float], List[float]] = ([], [])
    for _ in range(max(1, changes // 20)):
        costs[0].extend(change_cost(fresh, 20))
        costs[1].extend(change_cost(history, 20))
    return statistics.median(costs[0]), statistics.median(costs[1])


def render_cost(sandbox: Sandbox, renders: int) -> Dict[str, float]:
    """Seconds of one render (public, admin) and of one ``/market`` answer for the contracts a view shows."""
    exchange, now, views = sandbox.exchange, sandbox.now(), Views()
    book = exchange.ledger.book
    shown = Views.window(exchange, 0)[1]

    def timed(work: Callable[[], Any]) -> float:
        times = []
        for _ in range(renders):
            began = time.perf_counter()
            work()
            times.append(time.perf_counter() - began)
        return statistics.median(times)

    def market() -> bytes:
        # What /market answers for these contracts after each changed, made as the exchange makes it
        # (``MarketData``): from the book's displayed levels, a summary row and a row per level.
        rows: List[Any] = []
        for contract in shown:
            stamp, minutes = iso(book.versions[contract][1]), book.contract_minutes(contract)
            best = (book.best_shown(contract, "buy"), book.best_shown(contract, "sell"))
            total = book.shown_total(contract, "buy") + book.shown_total(contract, "sell")
            first = day_start(book, contract, now)
            rows.append(summary_row(book, contract, best, total, first, stamp))
            for side in ("buy", "sell"):
                for price, volume in book.shown(contract, side):
                    rows.append({"timestamp": stamp, **level_row(contract, minutes, side, price, volume)})
        return encode_json(rows)

    def public() -> bytes:
        return views.render(exchange, now, "k", admin=False, cancels=sandbox.cancels)

    start = _starts(now, Size(contracts=1))[0]

    def admin() -> bytes:  # after one trader's order came (counted in: an overestimate) and before it goes
        order, _, _ = exchange.desk.place(_order(start, "buy", 1.0), "probe", now)
        assert order is not None
        body = views.render(exchange, now, "k", admin=True, cancels=sandbox.cancels)
        exchange.ledger.cancel(order, now)
        return body

    return {"market": timed(market), "public": timed(public), "admin": timed(admin)}


# -- over HTTP: the trader, the pages, the pollers ----------------------------------------------------------------


def _serve(path: str, size: Size) -> Tuple[subprocess.Popen[str], str]:
    command = [sys.executable, "-m", "gameproto_cli", "serve", "--port", "0", "--state", path, "--clock", "manual"]
    command += ["--admin-token", ADMIN, "--rate-limit", "1000000", "--max-resting-orders", str(size.resting)]
    for token in _tokens(size):
        command += ["--token", token]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    for line in process.stdout:
        found = _URL.search(line)
        if found:
            return process, found.group(1)
    raise RuntimeError("game serve did not start")


class Poller(threading.Thread):
    """A page (``/_view``, public or admin) or a ``/market`` poller, twice a second on one connection."""

    def __init__(self, url: str, stop: threading.Event, path: str, token: Optional[str] = None) -> None:
        super().__init__(daemon=True)
        host, port = url.rsplit("//", 1)[1].split(":")
        self.address, self.stop, self.path, self.token = (host, int(port)), stop, path, token
        self.read = self.unchanged = self.failures = 0

    def run(self) -> None:
        connection = http.client.HTTPConnection(*self.address, timeout=60)
        key = ""
        while not self.stop.is_set():
            try:
                path = self.path + (f"?known={key}" if self.path == "/_view" else "")
                connection.request("GET", path, headers={"Authorization": f"Bearer {self.token}"} if self.token else {})
                answer = connection.getresponse()
                body = answer.read()
                if answer.status == 200:
                    self.read += 1
                    if self.path == "/_view":
                        key = json.loads(body)["key"]
                elif answer.status == 204:
                    self.unchanged += 1
                else:
                    self.failures += 1
            except (OSError, http.client.HTTPException):
                self.failures += 1
                connection.close()
                connection = http.client.HTTPConnection(*self.address, timeout=60)
            self.stop.wait(POLL_SECONDS)
        connection.close()


def _call(connection: http.client.HTTPConnection, method: str, path: str, token: str, body: Any = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"}
    data = None
    if body is not None:
        data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
    connection.request(method, path, data, headers)
    answer = connection.getresponse()
    raw = answer.read()
    return answer.status, json.loads(raw) if raw else None


def _access(url: str, personal: str) -> str:
    host, port = url.rsplit("//", 1)[1].split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        connection.request(
            "POST", "/api/v1/auth/token", json.dumps({"token": personal}), {"Content-Type": "application/json"}
        )
        return str(json.loads(connection.getresponse().read())["access_token"])
    finally:
        connection.close()


def trader(url: str, calls: int, now: float) -> List[float]:
    """Seconds each call of the well-behaved trader took: place one order, cancel it, again."""
    host, port = url.rsplit("//", 1)[1].split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    token, start = _access(url, PROBE), _starts(now, Size(contracts=1))[0]
    timings: List[float] = []
    try:
        while len(timings) < calls:
            began = time.perf_counter()
            status, created = _call(connection, "POST", "/api/v1/orders", token, _order(start, "buy", 1.0))
            timings.append(time.perf_counter() - began)
            assert status == 200, created
            began = time.perf_counter()
            status, _ = _call(connection, "DELETE", f"/api/v1/orders/{created['order_id']}", token)
            timings.append(time.perf_counter() - began)
            assert status == 200
    finally:
        connection.close()
    return timings


def _p99(values: List[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def poll(url: str, tokens: List[str]) -> Dict[str, int]:
    """Run the pages and pollers until stdin closes; what they read (``--poll``, in a process of its own)."""
    stop = threading.Event()
    pollers = [Poller(url, stop, "/_view"), Poller(url, stop, "/_view", ADMIN)]
    pollers += [Poller(url, stop, "/api/v1/market", tokens[n % len(tokens)]) for n in range(10)]
    for poller in pollers:
        poller.start()
    print("polling", flush=True)
    sys.stdin.read()  # until the benchmark closes it
    stop.set()
    for poller in pollers:
        poller.join()
    return {
        "views": sum(p.read for p in pollers[:2]),
        "markets": sum(p.read for p in pollers[2:]),
        "failures": sum(p.failures for p in pollers),
    }


def busy(url: str, size: Size, now: float) -> Dict[str, Any]:
    """The trader's timings with one public page, one admin page and 10 /market pollers running.

    The pollers run in a process of their own: as threads of this one they would hold the trader's
    client from its answers (Python's GIL), and the figure would be theirs, not the server's.
    """
    tokens = [_access(url, personal) for personal in list(_tokens(size))[:10]]
    # One word, "--poll=URL,TOKEN,...": a token may begin with "-", which argparse would take for an option.
    command = [sys.executable, "-m", "benchmarks.sandbox_history", "--poll=" + ",".join([url, *tokens])]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    pollers = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=root, env=env)
    assert pollers.stdin is not None and pollers.stdout is not None
    try:
        assert pollers.stdout.readline().strip() == "polling", "the pollers did not start"
        time.sleep(2 * POLL_SECONDS)  # every poller has made its first read
        timings = trader(url, size.calls, now)
    finally:
        out, _ = pollers.communicate(timeout=60)  # closes their stdin: they stop and say what they read
    counts: Dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return dict(counts, timings=timings)


def refused_write_nothing(url: str, path: str) -> bool:
    """Whether 200 refused requests (401, 404, 405 under /api/v1) leave the state file's WAL as it was."""
    host, port = url.rsplit("//", 1)[1].split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    before = os.path.getsize(path + "-wal") if os.path.exists(path + "-wal") else 0
    try:
        for n in range(200):
            method, target = [("POST", "/api/v1/orders"), ("POST", "/api/v1/nowhere"), ("PUT", "/api/v1/orders")][n % 3]
            connection.request(method, target)
            connection.getresponse().read()
    finally:
        connection.close()
    return (os.path.getsize(path + "-wal") if os.path.exists(path + "-wal") else 0) == before


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sandbox_history", description=__doc__)
    parser.add_argument("--small", action="store_true", help="a fiftieth of the size, in seconds (the smoke test)")
    parser.add_argument("--calls", type=int, help="the trader's calls per run")
    parser.add_argument("--dir", help="where the state files go (default: a temporary directory)")
    parser.add_argument("--poll", metavar="URL,TOKEN,...", help=argparse.SUPPRESS)  # busy()'s pollers
    args = parser.parse_args(argv)
    if args.poll:
        url, *tokens = args.poll.split(",")
        print(json.dumps(poll(url, tokens)), flush=True)
        return 0
    size = SMALL if args.small else Size()
    if args.calls:
        size = Size(**dict(size.__dict__, calls=args.calls))
    now = float((time.time() // 900) * 900)
    with tempfile.TemporaryDirectory(dir=args.dir) as where:
        print(
            f"building: {size.resting:,} resting orders of {size.traders} traders over {size.contracts} contracts, "
            f"{size.levels} levels each",
            flush=True,
        )
        began = time.perf_counter()
        fresh = build(os.path.join(where, "fresh.db"), size, now, filled=0)
        path = os.path.join(where, "history.db")
        history = build(path, size, now, filled=size.filled)
        costs_fresh, costs_history = change_costs(fresh, history, size.changes)
        assert fresh.store is not None
        fresh.store.close()
        del fresh
        stored = sum(os.path.getsize(path + tail) for tail in ("", "-wal") if os.path.exists(path + tail))
        print(f"built both in {time.perf_counter() - began:.0f} s; the state file: {stored / 1e6:.1f} MB", flush=True)
        renders = render_cost(history, size.renders)
        assert history.store is not None
        history.store.close()

        process, url = _serve(path, size)
        try:
            idle = trader(url, size.calls, now)
            loaded = busy(url, size, now)
            quiet = refused_write_nothing(url, path)
        finally:
            process.terminate()
            process.communicate(timeout=30)

    shown = f"{Views.window(history.exchange, 0)[1].__len__()} contracts"
    print()
    print(
        f"1. trader p99, idle:                 {_p99(idle) * 1000:8.2f} ms  (p50 {statistics.median(idle) * 1000:.2f})"
    )
    busy_timings = loaded["timings"]
    print(
        f"   trader p99, pages and pollers:    {_p99(busy_timings) * 1000:8.2f} ms  "
        f"(p50 {statistics.median(busy_timings) * 1000:.2f}; {loaded['views']} views and "
        f"{loaded['markets']} /market answers read, {loaded['failures']} failures)"
    )
    print(f"   ratio:                            {_p99(busy_timings) / _p99(idle):8.2f}   goal <= 2")
    print(f"2. a change, 0 filled:               {costs_fresh * 1000:8.3f} ms CPU")
    print(f"   a change, {size.filled:,} filled:          {costs_history * 1000:8.3f} ms CPU")
    print(f"   ratio:                            {costs_history / costs_fresh:8.2f}   goal <= 1.2")
    print(f"3. /market for the {shown} shown:  {renders['market'] * 1000:8.3f} ms")
    print(
        f"   public view render:               {renders['public'] * 1000:8.3f} ms  "
        f"ratio {renders['public'] / renders['market']:.2f}   goal <= 2"
    )
    print(
        f"   admin view render:                {renders['admin'] * 1000:8.3f} ms  "
        f"ratio {renders['admin'] / renders['market']:.2f}   goal <= 2"
    )
    print(f"4. refused requests wrote nothing:   {quiet}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
