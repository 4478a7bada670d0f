"""The sandbox against real components: a server killed with SIGKILL, a real headless Chromium.

Marked ``component`` (``tox -e components``, ``pytest -m component``). The
browser tests drive Debian's ``/usr/bin/chromium`` with Playwright (``.ci/run``
installs chromium when it is missing); they skip, saying why, without it.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

from gameproto_sync import GameAPI
from tests.support.harness import GameServe
from tests.support.sandbox import ADMIN, admin_call

pytestmark = pytest.mark.component

ALICE, BOB = "alice-personal-token-0123", "bob-personal-token-0123"
CHROMIUM = os.environ.get("GAME_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DAY = dt.date(2030, 1, 15)


def _order(side: str, price: float, volume: float, start: str = "14:00", end: str = "14:15") -> Dict[str, Any]:
    return {
        "side": side,
        "price": price,
        "volume": volume,
        "date": DAY.isoformat(),
        "start_time": start,
        "end_time": end,
        "duration": "15m",
        "tz_offset_hours": 0,
    }


# -- state that survives kill -9 ----------------------------------------------------------------------------


def _listed(url: str) -> Dict[str, Any]:
    with GameAPI(token=ALICE, base_url=url) as alice, GameAPI(token=BOB, base_url=url) as bob:
        return {
            "alice": alice.get_orders(),
            "bob": bob.get_orders(),
            "trades": alice.get_trades(),
            "clock": admin_call(url, "GET", "/_sandbox/clock"),
        }


def test_after_kill_9_and_a_restart_a_client_lists_the_same_orders_and_trades(tmp_path: Path) -> None:
    state = str(tmp_path / "sandbox.db")
    flags = ["--token", ALICE, "--token", BOB, "--clock", "manual", "--admin-token", ADMIN, "--state", state]
    server = GameServe(*flags).start()
    try:
        url = server.base_url
        admin_call(url, "POST", "/_sandbox/clock/set", {"to": "2030-01-15T12:00Z"})
        with GameAPI(token=ALICE, base_url=url) as alice, GameAPI(token=BOB, base_url=url) as bob:
            alice.create_order(_order("sell", 80.0, 2.0))
            alice.create_order(_order("sell", 81.0, 1.0, "14:15", "14:30"))
            hidden = alice.create_order(dict(_order("buy", 60.0, 4.0), state="hidden"))
            bob.create_order(_order("buy", 85.0, 1.5))  # a trade: alice's first order 1.5 of 2 executed
            gone = bob.create_order(_order("buy", 70.0, 3.0, "14:15", "14:30"))
            bob.delete_order(gone["order_id"])
        admin_call(url, "POST", "/_sandbox/clock/advance", {"by": "7m"})
        before = _listed(url)
        assert [order["executed_volume"] for order in before["alice"]] == [1.5, 0, 0]
        assert len(before["trades"]) == 1 and len(before["bob"]) == 1
        assert any(order["order_id"] == int(hidden["order_id"][4:]) for order in before["alice"])

        server.kill()  # SIGKILL: nothing is flushed on the way out
        server = GameServe(*flags).start()
        assert "restored" in "".join(server.banner)
        after = _listed(server.base_url)
    finally:
        server.stop()
    assert after == before
    assert before["trades"][0]["buyer"] != before["trades"][0]["seller"]


def test_game_sandbox_reset_empties_the_state(tmp_path: Path) -> None:
    import subprocess
    import sys

    state = str(tmp_path / "sandbox.db")
    flags = ["--token", ALICE, "--clock", "manual", "--admin-token", ADMIN, "--state", state]
    with GameServe(*flags) as server:
        with GameAPI(token=ALICE, base_url=server.base_url) as alice:
            alice.create_order(_order("sell", 80.0, 2.0))
            assert alice.get_orders()
        command = [sys.executable, "-m", "gameproto_cli", "sandbox", "reset", "--url", server.base_url]
        done = subprocess.run(command, env=dict(os.environ, GAME_ADMIN_TOKEN=ADMIN), capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert "reset" in done.stdout
    with GameServe(*flags) as server, GameAPI(token=ALICE, base_url=server.base_url) as alice:
        assert alice.get_orders() == []


# -- the web view in a real browser --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        pytest.skip(f"no chromium at {CHROMIUM} (.ci/run installs Debian's chromium)")
    playwright_api = pytest.importorskip("playwright.sync_api", reason="pip install gameproto[components]")
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class Page:
    """A browser page on the sandbox, recording what its console says."""

    def __init__(self, browser: Any, url: str) -> None:
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.console: List[str] = []
        self.page.on("console", lambda message: self.console.append(f"{message.type}: {message.text}"))
        self.page.on("pageerror", lambda error: self.console.append(f"pageerror: {error}"))
        self.page.goto(url)

    def errors(self) -> List[str]:
        return [line for line in self.console if line.startswith(("error", "pageerror"))]


@pytest.fixture()
def sandbox() -> Iterator[GameServe]:
    flags = ["--token", ALICE, "--token", BOB, "--clock", "manual", "--admin-token", ADMIN, "--seed-market"]
    with GameServe(*flags) as served:
        admin_call(served.base_url, "POST", "/_sandbox/clock/set", {"to": "2030-01-15T13:05Z"})
        yield served


def test_a_trade_made_by_a_client_appears_on_the_page(browser: Any, sandbox: GameServe) -> None:
    page = Page(browser, sandbox.base_url + "/")
    page.page.wait_for_selector("#books .ladder")
    assert page.page.inner_text("#mode") == "public view"
    with GameAPI(token=ALICE, base_url=sandbox.base_url) as alice, GameAPI(token=BOB, base_url=sandbox.base_url) as bob:
        alice.create_order(_order("sell", 123.45, 2.5, "20:00", "20:15"))
        bob.create_order(_order("buy", 123.45, 2.5, "20:00", "20:15"))
        trade = next(t for t in bob.get_trades() if t["price"] == 123.45)
    row = page.page.wait_for_selector(f"#trades [data-trade='{trade['trade_id']}']", timeout=5000)
    assert "123.45" in row.inner_text() and "2.5" in row.inner_text()
    assert "alice" not in page.page.inner_text("#trades")  # the public view names no trader
    page.page.screenshot(path=str(Path(os.environ.get("GAME_SCREENSHOT_DIR", "/tmp")) / "sandbox-public.png"))
    assert page.errors() == []


def test_the_admin_view_shows_a_traders_order_and_its_cancel(browser: Any, sandbox: GameServe) -> None:
    page = Page(browser, sandbox.base_url + "/#admin=" + ADMIN)
    page.page.wait_for_selector("#traders .trader")
    assert page.page.inner_text("#mode") == "admin view"
    with GameAPI(token=ALICE, base_url=sandbox.base_url) as alice:
        created = alice.create_order(dict(_order("buy", 12.5, 4.0, "15:00", "15:15"), state="hidden"))
        number = created["order_id"]  # ord_N, as the page shows it
        assert number.startswith("ord_")
        row = page.page.wait_for_selector(f"#traders [data-order='{number}']", timeout=5000)
        assert row.inner_text().startswith(number)
        assert "12.5" in row.inner_text() and "Hidden" in row.inner_text()
        public = page.page.inner_text("#books")
        assert "12.5" not in public  # a hidden order is not in the ladders, even for the admin
        alice.delete_order(number)
    cancelled = page.page.wait_for_selector(f"#cancels [data-cancelled='{number}']", timeout=5000)
    assert number in cancelled.inner_text()
    page.page.wait_for_selector(f"#traders [data-order='{number}']", state="detached", timeout=5000)
    screenshots = os.environ.get("GAME_SCREENSHOT_DIR")
    if screenshots:
        page.page.screenshot(path=str(Path(screenshots) / "sandbox.png"), full_page=True)
    assert page.errors() == []


def test_the_page_follows_the_clock_and_logs_no_console_error(browser: Any, sandbox: GameServe) -> None:
    page = Page(browser, sandbox.base_url + "/")
    page.page.wait_for_selector("#now:has-text('2030-01-15 13:05')")
    admin_call(sandbox.base_url, "POST", "/_sandbox/clock/advance", {"by": "1h"})
    page.page.wait_for_selector("#now:has-text('2030-01-15 14:05')", timeout=5000)
    ladder = page.page.query_selector("#books .ladder")
    assert ladder is not None
    # 14:00Z closed; the makers quote the next quarters. Zurich is an hour ahead in January.
    assert ladder.get_attribute("data-contract") == "2030-01-15T14:15:00Z/PT15M"
    assert ladder.inner_text().startswith("Tue 15 Jan 2030 15:15-15:30, QH 62")
    assert "2030-01-15T14:15:00Z/PT15M" in ladder.inner_text()
    assert page.errors() == []


def test_the_page_says_which_contracts_it_shows_and_lets_the_viewer_choose(browser: Any, sandbox: GameServe) -> None:
    page = Page(browser, sandbox.base_url + "/")
    page.page.wait_for_selector("#books .ladder")
    shown = page.page.inner_text("#window")
    total = int(shown.rsplit(" ", 1)[1])
    assert shown == f"contracts 1\u20138 of {total}" and total > 8
    names = [one.get_attribute("data-contract") for one in page.page.query_selector_all("#books .ladder")]
    page.page.click("#next")
    page.page.wait_for_selector("#window:has-text('contracts 9\u2013')", timeout=5000)
    later = [one.get_attribute("data-contract") for one in page.page.query_selector_all("#books .ladder")]
    assert later and not set(later) & set(names) and min(later) > max(names)
    page.page.select_option("#jump", str(total - 1))  # the last contract there is
    page.page.wait_for_selector(f"#window:has-text('contracts {total}\u2013{total} of {total}')", timeout=5000)
    page.page.click("#prev")
    page.page.wait_for_selector(f"#window:has-text('contracts {total - 8}\u2013{total - 1} of {total}')", timeout=5000)
    assert page.errors() == []


def test_each_ladder_draws_its_recent_trade_prices(browser: Any, sandbox: GameServe) -> None:
    with GameAPI(token=ALICE, base_url=sandbox.base_url) as alice, GameAPI(token=BOB, base_url=sandbox.base_url) as bob:
        for price in (90.0, 95.0, 92.5):
            alice.create_order(_order("sell", price, 1.0, "13:45", "14:00"))
            bob.create_order(_order("buy", price, 1.0, "13:45", "14:00"))
    page = Page(browser, sandbox.base_url + "/")
    ladder = page.page.wait_for_selector("#books .ladder[data-contract='2030-01-15T13:45:00Z/PT15M']")
    line = ladder.wait_for_selector("svg.chart polyline")
    points = (line.get_attribute("points") or "").split()
    assert len(points) >= 3
    heights = [float(point.split(",")[1]) for point in points[-3:]]
    assert heights[1] < heights[2] < heights[0]  # 95 highest (smallest y), 90 lowest
    assert page.errors() == []


def test_a_contract_whose_only_order_is_hidden_is_not_on_the_public_page(browser: Any, sandbox: GameServe) -> None:
    with GameAPI(token=ALICE, base_url=sandbox.base_url) as alice:
        alice.create_order(dict(_order("buy", 33.0, 1.0, "23:45", "00:00"), state="hidden"))
    page = Page(browser, sandbox.base_url + "/")
    page.page.wait_for_selector("#books .ladder")
    page.page.wait_for_selector("#jump option", state="attached")
    text = page.page.inner_text("body") + " ".join(
        one.get_attribute("value") or "" for one in page.page.query_selector_all("#jump option")
    )
    assert "23:45:00Z" not in text and "00:45-01:00" not in text
    assert page.errors() == []
