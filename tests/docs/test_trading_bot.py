"""The README's trading bot, run as printed on the sandbox, on an account that already has a history.

``tests/docs/test_examples.py`` runs it as one example among all; this test
reads what it printed and asks the exchange what it left: with more than a
hundred orders already resting, the bot still finds its own, says what it
bought and that the rest is gone, and leaves nothing of its own resting.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import math
import re
import threading
import time
from pathlib import Path
from typing import Any, Dict, List

from gameproto.simulator.exchange import Exchange
from gameproto_exchange import ServerThread
from gameproto_sync import GameAPI
from tests.docs.test_examples import SANDBOX_PORT, SANDBOX_TOKEN, _printed_ports, _wait_free, blocks_of, sandbox

README = Path(__file__).resolve().parents[2] / "README.md"
#: A bound on the bot's run (it takes well under a second); never a measurement.
PATIENCE = 60.0
#: Orders the account holds before the bot starts: more than one listing's worth of events.
HISTORY = 120


def _bot() -> str:
    (code,) = [block.code for block in blocks_of(README) if block.language == "python" and "watch_orders" in block.code]
    return code


def _history() -> List[Dict[str, Any]]:
    """Resting buys far below the seeded market: they never trade."""
    return [
        {"side": "buy", "price": 1.0 + index / 100, "volume": 1.0, "date": "2030-01-15",
         "start_time": "10:00", "end_time": "10:15", "duration": "15m"}
        for index in range(HISTORY)
    ]  # fmt: skip


def test_the_readme_bot_on_an_account_with_history_leaves_nothing_of_its_own_resting() -> None:
    exchange = sandbox()
    printed = io.StringIO()
    outcome: Dict[str, Any] = {}
    with _printed_ports():
        _wait_free(SANDBOX_PORT)
        with ServerThread(exchange, port=SANDBOX_PORT) as running:
            with GameAPI(SANDBOX_TOKEN, running.base_url) as api:
                api.create_order({"orders": _history()})
                before = {order["order_id"] for order in api.get_orders()}
            assert len(before) == HISTORY

            def run() -> None:
                try:
                    with contextlib.redirect_stdout(printed):
                        exec(compile(_bot(), "README.md (the bot)", "exec"), {"__name__": "__bot__"})
                except BaseException as error:  # SystemExit included: the bot found nothing on offer
                    outcome["error"] = error

            bot = threading.Thread(target=run, daemon=True)
            bot.start()
            bot.join(PATIENCE)
            assert not bot.is_alive(), f"the bot did not end; it printed {printed.getvalue()!r}"
            with GameAPI(SANDBOX_TOKEN, running.base_url) as api:
                after = api.get_orders()
                trades = api.get_trades()
    assert "error" not in outcome, (outcome, printed.getvalue())
    lines = printed.getvalue().splitlines()
    assert re.fullmatch(r"the exchange's clock is [+-]\d+\.\d s from ours", lines[0]), lines
    assert "-0.0 s" not in lines[0]
    placed = re.fullmatch(r"placed (ord_\d+) buy ([\d.]+) @ [\d.]+ \S+", lines[1])
    filled = re.fullmatch(r"filled ([\d.]+) of ([\d.]+)", lines[2])
    gone = re.fullmatch(r"gone; executed ([\d.]+) of ([\d.]+)", lines[3])
    assert placed and filled and gone and len(lines) == 4, lines
    bought, ordered = float(filled.group(1)), float(placed.group(2))
    assert 0 < bought == ordered - 1 and float(gone.group(1)) == bought
    # The exchange agrees: the order traded that much, the rest is not resting, and the history is untouched.
    number = int(placed.group(1)[len("ord_") :])
    assert {order["order_id"] for order in after} == before and number not in before
    assert sum(float(trade["volume"]) for trade in trades if trade["buyer"] == "trader-1") == bought


def test_the_readme_bot_judges_five_minutes_away_by_the_exchanges_clock() -> None:
    """An exchange whose clock is ahead of the host's (``game serve --clock-offset``): the bot keeps 5 minutes.

    The exchange's clock is set 3 minutes before a quarter-hour it quotes, some
    10 to 25 minutes ahead of the host's: by the host's clock that quarter-hour
    is well over 5 minutes away, by the exchange's only 3, so a bot that
    judged by the host's clock would pick it.
    """
    host = time.time()
    quarter = math.ceil((host + 600) / 900) * 900
    exchange = Exchange(tokens={SANDBOX_TOKEN: "trader-1"}, seed=7, clock_offset=(quarter - 180) - host)
    exchange.seed_market()
    printed = io.StringIO()
    with _printed_ports():
        _wait_free(SANDBOX_PORT)
        with ServerThread(exchange, port=SANDBOX_PORT):
            started = exchange.now()
            assert f"{dt.datetime.fromtimestamp(quarter, dt.timezone.utc):%Y-%m-%dT%H:%M}:00Z/PT15M" in {
                row["contract"] for row in exchange.market.market_rows(started)
            }  # the quarter-hour a host-clock bot would take is on offer
            with contextlib.redirect_stdout(printed):
                exec(compile(_bot(), "README.md (the bot)", "exec"), {"__name__": "__bot__"})
    lines = printed.getvalue().splitlines()
    offset = float(re.fullmatch(r"the exchange's clock is ([+-]\d+\.\d) s from ours", lines[0]).group(1))  # type: ignore[union-attr]
    assert 600 - 180 <= offset <= 1500  # it learnt the exchange's clock
    placed = re.fullmatch(r"placed ord_\d+ buy [\d.]+ @ [\d.]+ (\S+)", lines[1])
    assert placed, lines
    start = dt.datetime.strptime(placed.group(1)[:16], "%Y-%m-%dT%H:%M").replace(tzinfo=dt.timezone.utc)
    assert start.timestamp() >= started + 300, (placed.group(1), lines)
