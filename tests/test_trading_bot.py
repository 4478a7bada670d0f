"""The README's trading bot runs against the embedded exchange, sees its order fill, cancels the rest, and ends.

``tests/test_docs_examples.py`` runs it as one example among all; this test
reads what it printed: a fill of the volume the best offer held, and the
rest of the order gone.
"""

from __future__ import annotations

import contextlib
import io
import re
import threading
from pathlib import Path
from typing import Any, Dict

from gameproto.simulator.exchange import Exchange
from gameproto_exchange import ServerThread

from .support import TOKEN
from .test_docs_examples import blocks_of

README = Path(__file__).resolve().parent.parent / "README.md"
#: A bound on the bot's run (it takes well under a second); never a measurement.
PATIENCE = 60.0


def _bot() -> str:
    (code,) = [block.code for block in blocks_of(README) if block.language == "python" and "watch_orders" in block.code]
    return code


def test_the_readme_bot_sees_its_fill_and_cancels_the_rest() -> None:
    exchange = Exchange(tokens={TOKEN: "alice"}, seed=7)
    exchange.seed_market()
    printed = io.StringIO()
    outcome: Dict[str, Any] = {}
    with ServerThread(exchange) as running:
        code = _bot().replace("http://127.0.0.1:8765", running.base_url).replace("your-personal-token", TOKEN)

        def run() -> None:
            try:
                with contextlib.redirect_stdout(printed):
                    exec(compile(code, "README.md (the bot)", "exec"), {"__name__": "__bot__"})
            except BaseException as error:  # SystemExit included: the bot found nothing on offer
                outcome["error"] = error

        bot = threading.Thread(target=run, daemon=True)
        bot.start()
        bot.join(PATIENCE)
        assert not bot.is_alive(), f"the bot did not end; it printed {printed.getvalue()!r}"
    assert "error" not in outcome, (outcome, printed.getvalue())
    lines = printed.getvalue().splitlines()
    placed = re.fullmatch(r"placed (ord_\d+) buy ([\d.]+) @ [\d.]+ \S+", lines[1])
    filled = re.fullmatch(r"filled ([\d.]+) of ([\d.]+)", lines[2])
    gone = re.fullmatch(r"gone; executed ([\d.]+) of ([\d.]+)", lines[3])
    assert placed and filled and gone, lines
    bought, ordered = float(filled.group(1)), float(placed.group(2))
    assert 0 < bought == ordered - 1 and float(gone.group(1)) == bought
    # The exchange agrees: the order traded that much, and the rest is no longer in the book.
    number = int(placed.group(1)[len("ord_") :])
    assert all(order["order_id"] != number for order in exchange.orders_of("alice"))  # deleted: not listed
    assert sum(float(trade["volume"]) for trade in exchange.trades if trade["buyer"] == "alice") == bought
