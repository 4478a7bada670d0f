"""``python -m benchmarks.sandbox_pages``: does watching the sandbox slow its traders?

A real ``game serve --seed-market`` child process; a trader (the blocking
client) places and cancels orders in a loop and times each call, first with no
page open, then with N open pages. A page is either what the web page's script
does, over HTTP (``--kind poll``, the default: ``GET /_view?known=KEY`` every
500 ms on a keep-alive connection, reading the whole view whenever it
changed), or a real headless Chromium tab on ``/`` (``--kind browser``: the
browser's own CPU then competes with the server's on a small machine, which
the figure includes). ``--admin`` opens the admin view instead (every trader's
orders and positions). Printed: the trader's p50, p99 and max per page count,
the share of one core the server used meanwhile, and the views the pages read
(``--kind poll``). ``--state PATH`` serves with its state on disk, to see what
committing each change costs.
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
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

from gameproto_sync import GameAPI

__all__ = ["main"]

TOKEN = "sandbox-pages-trader"
ADMIN = "sandbox-pages-admin"
POLL_SECONDS = 0.5
_URL = re.compile(r"serving on (http://\S+?) ")


def _serve(state: Optional[str]) -> Tuple[subprocess.Popen[str], str]:
    command = [sys.executable, "-m", "gameproto_cli", "serve", "--port", "0", "--seed-market"]
    command += ["--state", state] if state else []
    command += ["--token", TOKEN, "--admin-token", ADMIN, "--rate-limit", "1000000"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    for line in process.stdout:
        found = _URL.search(line)
        if found:
            return process, found.group(1)
    raise RuntimeError("game serve did not start")


class Poller(threading.Thread):
    """What the page's script does: poll /_view with the key it holds, read the view when it changed."""

    def __init__(self, url: str, admin: bool, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        host, port = url.rsplit("//", 1)[1].split(":")
        self.address = (host, int(port))
        self.headers = {"Authorization": f"Bearer {ADMIN}"} if admin else {}
        self.stop = stop
        self.views = 0
        self.unchanged = 0
        self.failures = 0

    def run(self) -> None:
        connection = http.client.HTTPConnection(*self.address, timeout=30)
        key = ""
        while not self.stop.is_set():
            try:
                connection.request("GET", f"/_view?known={key}", headers=self.headers)
                answer = connection.getresponse()
                body = answer.read()
                if answer.status == 200:
                    key = json.loads(body)["key"]
                    self.views += 1
                elif answer.status == 204:
                    self.unchanged += 1
                else:
                    self.failures += 1
            except (OSError, http.client.HTTPException):
                self.failures += 1
                connection.close()
                connection = http.client.HTTPConnection(*self.address, timeout=30)
            self.stop.wait(POLL_SECONDS)
        connection.close()


def _order(side: str, price: float) -> Dict[str, Any]:
    start = dt.datetime.now(dt.timezone.utc).replace(second=0, microsecond=0) + dt.timedelta(hours=3)
    start -= dt.timedelta(minutes=start.minute % 15)
    end = start + dt.timedelta(minutes=15)
    return {
        "side": side,
        "price": price,
        "volume": 1.0,
        "date": start.date().isoformat(),
        "start_time": start.strftime("%H:%M"),
        "end_time": end.strftime("%H:%M"),
        "duration": "15m",
        "tz_offset_hours": 0,
    }


def _trade(url: str, calls: int) -> List[float]:
    """Seconds each call took: create an order, list, cancel it; ``calls`` calls in all."""
    timings: List[float] = []
    with GameAPI(token=TOKEN, base_url=url) as api:
        api.get_status()  # the token exchange, outside the figures
        while len(timings) < calls:
            began = time.perf_counter()
            created = api.create_order(_order("buy", 10.0))
            timings.append(time.perf_counter() - began)
            began = time.perf_counter()
            api.get_orders()
            timings.append(time.perf_counter() - began)
            began = time.perf_counter()
            api.delete_order(created["order_id"])
            timings.append(time.perf_counter() - began)
    return timings


def _percentile(values: List[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _browser_pages(url: str, count: int, admin: bool) -> Tuple[Any, List[Any]]:
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    browser = playwright.chromium.launch(
        executable_path=os.environ.get("GAME_CHROMIUM", "/usr/bin/chromium"),
        args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"],
    )
    pages = []
    for _ in range(count):
        page = browser.new_page()
        page.goto(url + "/" + (f"#admin={ADMIN}" if admin else ""))
        pages.append(page)
    return (playwright, browser), pages


def _cpu_seconds(pid: int) -> float:
    """User and system CPU seconds the process used so far (Linux's /proc), 0 elsewhere."""
    try:
        with open(f"/proc/{pid}/stat") as source:
            fields = source.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(url: str, pages: int, calls: int, kind: str, admin: bool, server_pid: int) -> Dict[str, Any]:
    stop = threading.Event()
    pollers: List[Poller] = []
    opened: Optional[Tuple[Any, List[Any]]] = None
    if kind == "poll":
        pollers = [Poller(url, admin, stop) for _ in range(pages)]
        for poller in pollers:
            poller.start()
    elif pages:
        opened = _browser_pages(url, pages, admin)
    time.sleep(2 * POLL_SECONDS if pages else 0)  # every page has loaded and polls
    cpu_before, began = _cpu_seconds(server_pid), time.perf_counter()
    try:
        timings = _trade(url, calls)
        cpu = _cpu_seconds(server_pid) - cpu_before
        elapsed = time.perf_counter() - began
    finally:
        stop.set()
        for poller in pollers:
            poller.join()
        if opened is not None:
            (playwright, browser), _ = opened
            browser.close()
            playwright.stop()
    return {
        "pages": pages,
        "p50_ms": statistics.median(timings) * 1000,
        "p99_ms": _percentile(timings, 0.99) * 1000,
        "max_ms": max(timings) * 1000,
        "views": sum(poller.views for poller in pollers),
        "unchanged": sum(poller.unchanged for poller in pollers),
        "page_failures": sum(poller.failures for poller in pollers),
        "server_cpu_share": cpu / elapsed,
    }


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sandbox_pages", description=__doc__)
    parser.add_argument("--pages", type=int, nargs="+", default=[0, 50], help="open pages per run (default 0 50)")
    parser.add_argument("--calls", type=int, default=600, help="the trader's calls per run (default 600)")
    parser.add_argument("--kind", choices=("poll", "browser"), default="poll", help="what a page is")
    parser.add_argument("--admin", action="store_true", help="the pages open the admin view")
    parser.add_argument("--state", metavar="PATH", help="serve with --state PATH (each change committed to SQLite)")
    args = parser.parse_args(argv)
    process, url = _serve(args.state)
    try:
        print(f"{'pages':>5} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'server CPU':>10} {'views read':>10}")
        for count in args.pages:
            found = measure(url, count, args.calls, args.kind, args.admin, process.pid)
            failures = f"  ({found['page_failures']} page failures)" if found["page_failures"] else ""
            print(
                f"{found['pages']:>5} {found['p50_ms']:>8.2f} {found['p99_ms']:>8.2f} {found['max_ms']:>8.2f} "
                f"{found['server_cpu_share']:>9.0%} {found['views']:>10}{failures}",
                flush=True,
            )
    finally:
        process.terminate()
        process.communicate(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
