"""``game watch`` as a user runs it: real processes, a real exchange, two traders, Ctrl-C to stop."""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest

from gameproto._clock import ClockEstimator
from gameproto._events import MarketEvent, OrderEvent
from gameproto.simulator import Fault
from gameproto.simulator.exchange import Exchange
from gameproto_cli.watch import event_json, event_line
from gameproto_exchange import ServerThread
from gameproto_sync import GameAPI
from tests.support.common import future_order

ROOT = Path(__file__).resolve().parents[2]
URL = re.compile(r"serving on (http://127\.0\.0\.1:\d+) ")
ALICE, BOB = "watch-token-alice-0123456789", "watch-token-bob-9876543210"
# Generous: a busy two-core machine may take a while; these bound a hang, they time nothing.
PATIENCE = 60.0

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="sends POSIX signals")


def _environment() -> Dict[str, str]:
    clean = {key: value for key, value in os.environ.items() if not key.startswith("GAME_API_")}
    return {**clean, "PYTHONPATH": str(ROOT)}


class Process:
    """A ``game`` command running in its own process, its output read line by line as it comes."""

    def __init__(self, *arguments: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gameproto_cli", *arguments],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_environment(),
        )
        self.watchdog = threading.Timer(4 * PATIENCE, self.process.kill)
        self.watchdog.start()
        self.out: queue.Queue[Optional[str]] = queue.Queue()
        self.err: queue.Queue[Optional[str]] = queue.Queue()
        self.err_lines: List[str] = []
        for stream, lines in ((self.process.stdout, self.out), (self.process.stderr, self.err)):
            threading.Thread(target=self._pump, args=(stream, lines), daemon=True).start()

    @staticmethod
    def _pump(stream: Any, lines: queue.Queue[Optional[str]]) -> None:
        for line in stream:
            lines.put(line)
        lines.put(None)

    def line(self) -> str:
        """The next line on stdout."""
        line = self.out.get(timeout=PATIENCE)
        assert line is not None, f"the process ended: {self.stop()}"
        return line

    def wait_err(self, text: str) -> str:
        """Read stderr until a line holds ``text``."""
        while True:
            line = self.err.get(timeout=PATIENCE)
            assert line is not None, f"the process ended before saying {text!r}: {self.err_lines}"
            self.err_lines.append(line)
            if text in line:
                return line

    def stop(self, signum: int = signal.SIGINT) -> Tuple[int, List[str], str]:
        """Signal the process; its exit status, the stdout lines not read yet, and its stderr."""
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            self.process.wait(timeout=PATIENCE)
        finally:
            self.watchdog.cancel()
        rest: List[str] = []
        for lines, keep in ((self.out, rest), (self.err, self.err_lines)):
            while True:
                line = lines.get(timeout=PATIENCE)
                if line is None:
                    break
                keep.append(line)
        return self.process.returncode, rest, "".join(self.err_lines)

    def kill(self) -> None:
        self.watchdog.cancel()
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def run() -> Iterator[Any]:
    started: List[Process] = []

    def start(*arguments: str) -> Process:
        started.append(Process(*arguments))
        return started[-1]

    yield start
    for process in started:
        process.kill()


def _serve(run: Any, *flags: str) -> str:
    served = run("serve", "--port", "0", *flags)
    while True:
        match = URL.search(served.line())
        if match:
            return match.group(1)


def _watch(run: Any, url: str, token: str, what: str, *flags: str) -> Process:
    watcher: Process = run("watch", what, "--json", "--interval", "0.1", "--url", url, "--token", token, *flags)
    watcher.wait_err("watching")  # the first round is done: every change from now on is reported
    return watcher


def _events(watcher: Process, done: Any) -> List[Dict[str, Any]]:
    events: List[Dict[str, Any]] = []
    while not done(events):
        events.append(json.loads(watcher.line()))
    return events


def _filled(events: List[Dict[str, Any]], number: int) -> Decimal:
    return sum(
        (Decimal(str(e["volume"])) for e in events if e["kind"] == "filled" and e["order"]["order_id"] == number),
        Decimal(0),
    )


def _number(created: Any) -> int:
    """The numeric id of a created order (``"ord_12"``: 12)."""
    return int(str(created["order_id"])[len("ord_") :])


def _stopped_cleanly(watcher: Process) -> List[str]:
    status, rest, err = watcher.stop()
    assert status == 0, err
    assert "Traceback" not in err
    return rest


def _polled(exchange: Exchange, *paths: str, polls: int = 10) -> None:
    """Until ``polls`` more GETs of each of ``paths`` have reached ``exchange`` (each watch's polls), bounded."""
    wanted = {path: exchange.attempts[("GET", path)] + polls for path in paths}
    deadline = time.monotonic() + PATIENCE
    while any(exchange.attempts[("GET", path)] < count for path, count in wanted.items()):
        assert time.monotonic() < deadline, f"the watches stopped polling: {dict(exchange.attempts)}"
        time.sleep(0.01)


def test_two_traders_partial_fills_and_a_deletion(run: Any) -> None:
    exchange = Exchange((ALICE, BOB))  # as ``game serve --token ALICE --token BOB``: trader-1 and trader-2
    with ServerThread(exchange) as running:
        _partial_fills_and_a_deletion(run, running.base_url, exchange)


def _partial_fills_and_a_deletion(run: Any, url: str, exchange: Exchange) -> None:
    orders = _watch(run, url, ALICE, "orders")
    trades = _watch(run, url, ALICE, "trades")
    events: List[Dict[str, Any]] = []

    def until(done: Any) -> None:
        while not done(events):
            events.append(json.loads(orders.line()))

    with GameAPI(ALICE, url) as alice, GameAPI(BOB, url) as bob:
        first = _number(alice.create_order(future_order("sell", 50, 6)))
        for volume, total in ((1, 1), (2, 3), (3, 6)):
            bob.create_order(future_order("buy", 50, volume))
            until(lambda seen, total=total: _filled(seen, first) == total)  # each fill seen on its own
        second = _number(alice.create_order(future_order("sell", 55, 4)))
        bob.create_order(future_order("buy", 55, 1.5))
        until(lambda seen: _filled(seen, second) == Decimal("1.5"))
        alice.delete_order(second)
        until(lambda seen: any(e["kind"] == "gone" for e in seen))
        mine = [t for t in bob.get_trades() if "trader-1" in (t["buyer"], t["seller"])]

    kinds = {number: [e["kind"] for e in events if e["order"]["order_id"] == number] for number in (first, second)}
    assert kinds[first] == ["placed", "filled", "filled", "filled"]
    assert [e["volume"] for e in events if e["order"]["order_id"] == first][1:] == [1, 2, 3]
    assert [e["complete"] for e in events if e["order"]["order_id"] == first] == [False, False, False, True]
    assert kinds[second] == ["placed", "filled", "gone"]

    assert len(mine) == 4
    seen = _events(trades, lambda got: len(got) == len(mine))
    assert sorted(e["trade"]["trade_id"] for e in seen) == sorted(t["trade_id"] for t in mine)
    assert all(e["kind"] == "trade" for e in seen)

    _polled(exchange, "/orders", "/trades")  # ten more polls of each watch: nothing may be reported twice
    assert _stopped_cleanly(orders) == []
    assert _stopped_cleanly(trades) == []


def test_fills_are_counted_exactly_through_dropped_connections_and_503s(run: Any) -> None:
    exchange = Exchange({ALICE: "alice", BOB: "bob"})
    with ServerThread(exchange) as running:
        url = f"http://127.0.0.1:{running.port}"
        watcher = run("watch", "orders", "--json", "--verbose", "--interval", "0.1", "--url", url, "--token", ALICE)
        watcher.wait_err("watching")
        with GameAPI(ALICE, url) as alice, GameAPI(BOB, url) as bob:
            number = _number(alice.create_order(future_order("sell", 50, 10)))
            for volume, fault in ((1, "drop_before"), (2, "status"), (3, "drop_after"), (4, "status")):
                # More faults in a row than the client retries: the watch itself meets the failure.
                exchange.faults.add(Fault(fault, status=503), method="GET", path="/orders", times=3)
                bob.create_order(future_order("buy", 50, volume))
            events = _events(watcher, lambda seen: _filled(seen, number) == 10)
            assert events[0]["kind"] == "placed"
            assert events[-1]["complete"] is True
            watcher.wait_err("polling again")  # it did meet failures, and carried on
            _polled(exchange, "/orders")  # ten more polls: nothing may be reported twice
            assert _stopped_cleanly(watcher) == []


def test_the_market_watch_reports_a_better_bid(run: Any) -> None:
    url = _serve(run, "--token", ALICE, "--seed-market")
    watcher = run("watch", "market", "--json", "--existing", "--interval", "0.1", "--url", url, "--token", ALICE)
    first = json.loads(watcher.line())
    assert first["kind"] == "market" and first["contract"] and first["existing"] is True  # the book as it was
    watcher.wait_err("watching")
    start = dt.datetime.strptime(first["contract"][:16], "%Y-%m-%dT%H:%M").replace(tzinfo=dt.timezone.utc)
    better = Decimal(str(first["bid"])) + Decimal("0.25")
    assert Decimal(str(first["ask"])) > better  # the seeded spread leaves room: nothing trades
    with GameAPI(ALICE, url) as alice:
        alice.create_order(
            future_order(
                "buy",
                float(better),
                1,
                date=start.date().isoformat(),
                start_time=start.strftime("%H:%M"),
                end_time=(start + dt.timedelta(minutes=15)).strftime("%H:%M"),
            )
        )
    while True:
        event = json.loads(watcher.line())
        if event["contract"] == first["contract"]:
            break
    assert Decimal(str(event["bid"])) == better and event["ask"] == first["ask"] and "existing" not in event
    _stopped_cleanly(watcher)


def test_a_refused_token_ends_the_watch_with_one_line(run: Any) -> None:
    url = _serve(run, "--token", ALICE)
    status, rest, err = run("watch", "orders", "--url", url, "--token", "not-the-token").stop(signal.SIGCONT)
    assert status == 1 and rest == []
    assert err.startswith("game: ") and "refused your personal token" in err and "Traceback" not in err
    assert "not-the-token" not in err


def test_ctrl_c_before_any_event_is_a_clean_exit(run: Any) -> None:
    url = _serve(run, "--token", ALICE)
    watcher = _watch(run, url, ALICE, "trades", "--all")
    status, rest, err = watcher.stop()
    assert (status, rest) == (0, []) and "Traceback" not in err


@pytest.mark.parametrize("offset", ["300", "-300"])
def test_serve_with_a_clock_offset_dates_its_answers_by_it(run: Any, offset: str) -> None:
    url = _serve(run, "--token", ALICE, "--clock-offset", offset)
    connection = http.client.HTTPConnection(url[len("http://") :].split(":")[0], int(url.rsplit(":", 1)[1]), timeout=10)
    try:
        sent = time.time()
        connection.request("POST", "/api/v1/auth/token", body=json.dumps({"token": ALICE}))
        answer = connection.getresponse()
        access = json.loads(answer.read())["access_token"]
        connection.request("GET", "/api/v1/status", headers={"Authorization": f"Bearer {access}"})
        status = connection.getresponse()
        timestamp = json.loads(status.read())["timestamp"]
        received = time.time()
    finally:
        connection.close()
    estimator = ClockEstimator()
    assert estimator.observe(sent, received, date=status.getheader("Date"), timestamp=timestamp)
    low, high = estimator.interval  # type: ignore[misc]
    assert low <= float(offset) <= high


@pytest.mark.parametrize("flags", [["--interval", "0"], ["--interval", "soon"], ["everything"]])
def test_bad_watch_flags_are_status_2(flags: List[str]) -> None:
    from gameproto_cli.main import main

    with pytest.raises(SystemExit) as exit_info:
        main(["watch", *flags])
    assert exit_info.value.code == 2


def test_event_lines_and_json_lines() -> None:
    order: Any = {"order_id": 7, "direction": "sell", "volume": 5, "price": 50, "executed_volume": 2, "contract": "C"}
    # The id in the one form every message shows, the creation's: ord_7 for an order listed as 7.
    assert event_line(OrderEvent("existing", order)) == "existing order ord_7 sell 5 @ 50 C"
    assert event_line(OrderEvent("placed", order)) == "placed order ord_7 sell 5 @ 50 C"
    assert event_line(OrderEvent("filled", order, 2)) == "filled order ord_7 +2 (executed 2 of 5)"
    gone: Any = dict(order, status="expired")
    assert event_line(OrderEvent("gone", gone)) == "gone   order ord_7 sell 5 @ 50 C (expired)"
    assert event_line(MarketEvent("C", 49, None)) == "market C bid 49 ask -"
    assert event_line(MarketEvent("C", 49, None, existing=True)) == "existing market C bid 49 ask -"
    trade: Any = {"trade_id": "trd_1", "direction": "buy", "volume": 1, "price": 50, "contract": "C"}
    trade.update(buyer="b", seller="s")
    assert event_line(trade) == "trade  trd_1 buy 1 @ 50 C s -> b"
    assert json.loads(event_json(OrderEvent("filled", order, Decimal("0.5"), True))) == {
        "kind": "filled",
        "order_id": "ord_7",
        "order": order,
        "volume": "0.5",
        "complete": True,
    }
    assert json.loads(event_json(trade)) == {"kind": "trade", "trade": trade}
    assert json.loads(event_json(MarketEvent("C", 1, 2))) == {"kind": "market", "contract": "C", "bid": 1, "ask": 2}


def test_watch_without_what_says_what_can_be_watched(run: Any) -> None:
    watcher = run("watch")
    watcher.process.wait(timeout=PATIENCE)  # it ends on its own
    status, _, err = watcher.stop()
    assert status == 2 and "game watch orders, game watch trades or game watch market" in err
    assert "the following arguments are required" not in err


def test_ctrl_c_leaves_the_prompt_on_a_line_of_its_own(run: Any) -> None:
    url = _serve(run, "--token", ALICE)
    watcher = run("watch", "orders", "--url", url, "--token", ALICE, "--interval", "0.1")
    watcher.wait_err("watching")
    status, _, err = watcher.stop()
    assert status == 0 and err.endswith("Ctrl-C to stop\n\n"), err  # the terminal's ^C, then a newline


def test_the_watch_names_orders_as_their_creation_did(run: Any) -> None:
    url = _serve(run, "--token", ALICE)
    with GameAPI(ALICE, url) as alice:
        before = alice.create_order(future_order("sell", 50, 1))
        watcher = run("watch", "orders", "--existing", "--url", url, "--token", ALICE, "--interval", "0.1")
        assert watcher.line().startswith(f"existing order {before['order_id']} sell 1")
        watcher.wait_err("watching")
        created = alice.create_order(future_order("sell", 51, 1))
        assert watcher.line().startswith(f"placed order {created['order_id']} sell 1")
    _stopped_cleanly(watcher)
