"""Take the documentation's screenshot of the sandbox's web view: ``python -m tools.sandbox_screenshot``.

A sandbox with a seeded market on a manual clock (2030-01-15 13:05 UTC), two
traders, a few trades, a hidden order and a cancel, opened in headless Chromium
(Debian's ``/usr/bin/chromium``) in its admin view; written to
``docs/sandbox.png`` unless a path is given.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

from gameproto.simulator.exchange import Exchange
from gameproto.simulator.makers import Scenario
from gameproto_exchange import ManualClock, Sandbox, ServerThread
from gameproto_sync import GameAPI

ADMIN = "screenshot-admin"
OUT = Path(__file__).resolve().parent.parent / "docs" / "sandbox.png"


def _order(side: str, price: float, volume: float, start: str, **extra: Any) -> Dict[str, Any]:
    begin = dt.datetime.strptime(start, "%H:%M")
    end = (begin + dt.timedelta(minutes=15)).strftime("%H:%M")
    order = {"side": side, "price": price, "volume": volume, "date": "2030-01-15", "start_time": start}
    order.update(end_time=end, duration="15m", tz_offset_hours=0, **extra)
    return order


def main(argv: Optional[List[str]] = None) -> int:
    from playwright.sync_api import sync_playwright

    out = Path((argv or sys.argv[1:] or [str(OUT)])[0])
    clock = ManualClock(dt.datetime(2030, 1, 15, 13, 5, tzinfo=dt.timezone.utc).timestamp())
    exchange = Exchange(tokens={"alice-token": "alice", "bob-token": "bob"}, clock=clock, seed=7)
    sandbox = Sandbox(exchange, clock=clock, admin_token=ADMIN, scenario=Scenario(horizon_hours=2))
    exchange.seed_market()
    sandbox.quote()
    with ServerThread(sandbox) as running:
        url = running.base_url
        with GameAPI(token="alice-token", base_url=url) as alice, GameAPI(token="bob-token", base_url=url) as bob:
            for price in (95.0, 97.5, 96.5, 98.0, 96.0):  # a few trades: the ladder's chart
                alice.create_order(_order("sell", price, 2.0, "13:30"))
                bob.create_order(_order("buy", price, 1.5, "13:30"))
            alice.create_order(_order("buy", 88.0, 3.0, "13:45", state="hidden"))
            gone = bob.create_order(_order("sell", 99.0, 1.0, "14:00"))
            bob.delete_order(gone["order_id"])
            bob.create_order(_order("buy", 89.5, 2.0, "14:00"))
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path="/usr/bin/chromium",
                args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"],
            )
            page = browser.new_page(viewport={"width": 1280, "height": 1500})
            page.goto(f"{url}/#admin={ADMIN}")
            page.wait_for_selector("#traders .trader")
            time.sleep(0.6)  # one more poll: the latest view
            page.screenshot(path=str(out))
            browser.close()
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
