"""The sandbox ``game serve`` runs: the test clock, its admin endpoints, a market that keeps moving.

The clock test is a bot's afternoon in a second: the clock is set a minute
before a gate closure, the bot's order rests, the clock moves a minute and
the order has expired, on the blocking client and the async one under
asyncio and trio. Nothing here waits for wall-clock time.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import os
import socket
import sqlite3
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any, Dict, Iterator

import pytest

from gameproto.simulator.exchange import Exchange
from gameproto.simulator.makers import Maker, PricePath, Scenario, quote
from gameproto_async import GameAPIError
from gameproto_exchange import ManualClock, Sandbox, ScenarioError, ServerThread, Store, load_scenario
from tests.support import hostile_clients as hostile
from tests.support.harness import DRIVERS, GameServe, Harness, run_on
from tests.support.sandbox import ADMIN, admin_call, plain_call

DEMO = "demo-token"


@pytest.fixture(scope="module")
def manual_sandbox() -> Iterator[GameServe]:
    """One ``game serve --clock manual`` for the module: each test moves its clock forward, never back."""
    with GameServe("--clock", "manual", "--admin-token", ADMIN) as served:
        yield served


def _order(day: dt.date, side: str = "buy", price: float = 50.0) -> Dict[str, Any]:
    return {
        "side": side,
        "price": price,
        "volume": 1.0,
        "date": day.isoformat(),
        "start_time": "14:00",
        "end_time": "14:15",
        "duration": "15m",
        "tz_offset_hours": 0,
    }


# -- 1. the test clock ------------------------------------------------------------------------------------


@pytest.mark.parametrize("driver", DRIVERS)
def test_an_order_expires_at_gate_closure_when_the_manual_clock_says_so(manual_sandbox: GameServe, driver: str) -> None:
    url = manual_sandbox.base_url
    shown = admin_call(url, "GET", "/_sandbox/clock")["now"]
    day = max(dt.date(2030, 1, 15), dt.date.fromisoformat(shown[:10]) + dt.timedelta(days=1))  # never back

    async def bot(h: Harness) -> None:
        api = h.client(url, token=DEMO)
        admin_call(url, "POST", "/_sandbox/clock/set", {"to": f"{day.isoformat()}T13:59Z"})
        status = await api.get_status()
        assert status["timestamp"].startswith(f"{day.isoformat()}T13:59:00")
        created = await api.create_order(_order(day))
        listed = {order["order_id"]: order for order in await api.get_orders()}
        number = int(str(created["order_id"]).replace("ord_", ""))
        assert listed[number]["status"] == "active"

        admin_call(url, "POST", "/_sandbox/clock/advance", {"by": "1m"})  # 14:00: the gate has closed
        listed = {order["order_id"]: order for order in await api.get_orders()}
        assert listed[number]["status"] == "expired"
        contract = f"{day.isoformat()}T14:00:00Z/PT15M"
        assert all(row["contract"] != contract for row in await api.get_market_data())
        with pytest.raises(GameAPIError):  # too late for 14:00 now, by the exchange's clock
            await api.create_order(_order(day))

        admin_call(url, "POST", "/_sandbox/clock/advance", {"by": "2m"})  # past the minute it stays listed
        assert number not in {order["order_id"] for order in await api.get_orders()}

        admin_call(url, "POST", "/_sandbox/clock/advance", {"by": "2h"})  # the access token has expired meanwhile
        assert (await api.get_status())["timestamp"].startswith(f"{day.isoformat()}T16:02:00")

    run_on(driver, bot)


def test_the_date_header_and_status_follow_the_manual_clock() -> None:
    with GameServe("--clock", "manual", "--admin-token", ADMIN) as served:
        _date_header_follows(served.base_url)


def _date_header_follows(url: str) -> None:
    moved = admin_call(url, "POST", "/_sandbox/clock/set", {"to": "2031-06-01T08:00Z"})
    assert moved == {"now": "2031-06-01T08:00:00.000Z", "clock": "manual"}
    status, headers, _ = plain_call(url, "GET", "/_sandbox/clock", token=ADMIN)
    assert status == 200
    assert email.utils.parsedate_to_datetime(headers["date"]) == dt.datetime(2031, 6, 1, 8, tzinfo=dt.timezone.utc)
    moved = admin_call(url, "POST", "/_sandbox/clock/advance", {"by": 90})
    assert moved["now"] == "2031-06-01T08:01:30.000Z"
    assert admin_call(url, "GET", "/_sandbox/clock")["now"] == "2031-06-01T08:01:30.000Z"


def _access(served: GameServe) -> str:
    status, _, data = plain_call(served.base_url, "POST", "/api/v1/auth/token", {"token": "demo-token"})
    assert status == 200, data
    return str(data["access_token"])


def test_the_clock_endpoints_refuse_hostile_clients(manual_sandbox: GameServe) -> None:
    host, port = "127.0.0.1", int(manual_sandbox.base_url.rsplit(":", 1)[1])
    before = admin_call(manual_sandbox.base_url, "GET", "/_sandbox/clock")
    _, _, status = plain_call(manual_sandbox.base_url, "GET", "/api/v1/status", token=_access(manual_sandbox))
    outcome = hostile.sandbox_without_admin_token(host, port)
    assert set(outcome.statuses) == {401}, outcome
    outcome = hostile.sandbox_wrong_admin_token(host, port, guesses=20)
    assert set(outcome.statuses) == {401}, outcome
    outcome = hostile.sandbox_bad_clock_values(host, port, ADMIN)
    assert set(outcome.statuses) == {422}, outcome
    outcome = hostile.sandbox_bad_bodies(host, port, ADMIN)
    assert set(outcome.statuses) == {422} and outcome.statuses[422] == outcome.requests == 12, outcome
    assert admin_call(manual_sandbox.base_url, "GET", "/_sandbox/clock") == before  # nothing moved
    _, _, after = plain_call(manual_sandbox.base_url, "GET", "/api/v1/status", token=_access(manual_sandbox))
    assert after["instance"] == status["instance"]  # and nothing was reset


def _game(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "gameproto_cli", *args]
    return subprocess.run(command, capture_output=True, text=True, env=dict(os.environ, **env), timeout=60)


def test_game_sandbox_moves_the_clock_from_a_shell(manual_sandbox: GameServe, tmp_path: Path) -> None:
    url = manual_sandbox.base_url
    shown = _game("sandbox", "clock", "--url", url, "--json", GAME_ADMIN_TOKEN=ADMIN)
    assert shown.returncode == 0, shown.stderr
    before = dt.datetime.fromisoformat(json.loads(shown.stdout)["now"].replace("Z", "+00:00"))
    moved = _game("sandbox", "clock", "advance", "1h30m", "--url", url, "--admin-token", ADMIN)
    assert moved.returncode == 0, moved.stderr
    assert (before + dt.timedelta(minutes=90)).strftime("%Y-%m-%dT%H:%M:%S") in moved.stdout
    (tmp_path / "admin.token").write_text(ADMIN + "\n")
    later = (before + dt.timedelta(days=400)).strftime("%Y-%m-%dT%H:%MZ")
    done = _game("sandbox", "clock", "set", later, "--url", url, "--admin-token-file", str(tmp_path / "admin.token"))
    assert done.returncode == 0 and later[:16] in done.stdout, done.stderr
    back = _game("sandbox", "clock", "set", "2020-01-01T00:00Z", "--url", url, "--admin-token", ADMIN)
    assert back.returncode == 2 and "only moves forward" in back.stderr
    wrong = _game("sandbox", "clock", "advance", "15m", "--url", url, "--admin-token", "wrong")
    assert wrong.returncode == 2 and wrong.stderr.strip() == (
        f"game: the sandbox at {url} refused the admin token: it is not the one game serve was started with "
        "(check --admin-token, --admin-token-file or GAME_ADMIN_TOKEN)"
    )
    missing = _game("sandbox", "reset", "--url", url, GAME_ADMIN_TOKEN="")
    assert missing.returncode == 2 and "admin token" in missing.stderr
    assert ADMIN not in shown.stdout + moved.stdout + done.stdout + back.stderr + wrong.stderr


def test_the_sandbox_tells_a_wrong_admin_token_from_none(manual_sandbox: GameServe) -> None:
    url = manual_sandbox.base_url
    status, _, data = plain_call(url, "GET", "/_sandbox/clock", None, "wrong")
    assert (status, data["detail"]) == (401, "Wrong admin token")
    status, _, data = plain_call(url, "GET", "/_sandbox/clock")
    assert (status, data["detail"]) == (401, "The /_sandbox/ endpoints need the admin token")


def test_game_sandbox_against_a_dead_port_says_what_to_try() -> None:
    with socket.socket() as probe:  # a port nothing listens on once the probe is closed
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    done = _game("sandbox", "clock", "--url", url, "--admin-token", ADMIN)
    assert done.returncode == 1 and done.stderr.strip() == (
        f"game: cannot connect to the sandbox at {url}: connection refused (nothing listens there); "
        "is game serve running? check --url (or GAME_API_URL)"
    )


def test_without_an_admin_token_there_are_no_sandbox_endpoints() -> None:
    with GameServe() as served:
        status, _, data = plain_call(served.base_url, "POST", "/_sandbox/clock/advance", {"by": "1m"}, ADMIN)
        assert status == 404 and "--admin-token" in data["detail"]
        status, _, _ = plain_call(served.base_url, "GET", "/")  # the public web view is there
        assert status == 200


def test_a_real_clock_is_not_moved() -> None:
    sandbox = Sandbox(Exchange(), admin_token=ADMIN)
    with ServerThread(sandbox) as running:
        status, _, data = plain_call(running.base_url, "POST", "/_sandbox/clock/advance", {"by": "1m"}, ADMIN)
    assert status == 409 and "--clock manual" in data["detail"]


def test_the_manual_clock_only_moves_forward() -> None:
    clock = ManualClock(1_000_000.0)
    assert clock.advance(60) == 1_000_060.0
    with pytest.raises(ValueError):
        clock.set(1_000_000.0)
    with pytest.raises(ValueError):
        clock.advance(float("nan"))
    assert clock() == 1_000_060.0


# -- 2. state on disk (the kill -9 test is in test_sandbox_components.py) ----------------------------------


def test_a_restart_on_the_same_state_lists_what_was_there(tmp_path: Path) -> None:
    path = str(tmp_path / "sandbox.db")
    tokens = {"alice-token": "alice", "bob-token": "bob"}
    clock = ManualClock(2_000_000_000.0)
    first = Exchange(tokens=tokens, clock=clock)
    sandbox = Sandbox(first, clock=clock, store=Store(path))
    sandbox.exchange.seed_market(now=2_000_000_000.0)
    sandbox.changed()
    assert sandbox.store is not None
    sandbox.store.close()  # one server per state file: the first lets go before the second opens it
    later = ManualClock(1_000_000_000.0)
    again = Exchange(tokens={"carol-token": "alice", "bob-token": "x", "alice-token": "y"}, clock=later)
    restored = Sandbox(again, clock=later, store=Store(path))
    assert restored.restored
    assert again.save() == first.save()
    # The names follow the tokens; a new token does not take a saved trader's name.
    assert again.access.traders["alice-token"] == "alice" and again.access.traders["bob-token"] == "bob"
    assert again.access.traders["carol-token"] not in ("alice", "bob")
    assert again.now() == 2_000_000_000.0  # the clock as it was
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM orders").fetchone()[0] == len(first.ledger.book.orders)


# -- 3. a market that keeps moving --------------------------------------------------------------------------


def test_left_alone_for_a_day_the_seeded_market_still_has_two_sided_books() -> None:
    clock = ManualClock(dt.datetime(2030, 3, 1, 6, 7, tzinfo=dt.timezone.utc).timestamp())
    exchange = Exchange(tokens={"alice-token": "alice"}, clock=clock, seed=11)
    sandbox = Sandbox(exchange, clock=clock, admin_token=ADMIN, scenario=Scenario())
    exchange.seed_market()
    with ServerThread(sandbox) as running:
        for _ in range(24 * 4):  # a day, a quarter hour at a time
            admin_call(running.base_url, "POST", "/_sandbox/clock/advance", {"by": "15m"})
        now = clock()
        assert now == dt.datetime(2030, 3, 2, 6, 7, tzinfo=dt.timezone.utc).timestamp()
        token = plain_call(running.base_url, "POST", "/api/v1/auth/token", {"token": "alice-token"})[2]
        status, _, rows = plain_call(running.base_url, "GET", "/api/v1/market", token=token["access_token"])
    assert status == 200
    summaries = {row["contract"]: row for row in rows if "direction" not in row}
    for quarter in range(1, 4 * 4 + 1):  # every quarter hour of the next four hours
        start = dt.datetime.fromtimestamp((now // 900 + quarter) * 900, dt.timezone.utc)
        contract = start.strftime("%Y-%m-%dT%H:%M:00Z/PT15M")
        assert contract in summaries, contract
        assert summaries[contract]["bid"] is not None and summaries[contract]["ask"] is not None
        assert summaries[contract]["bid"] < summaries[contract]["ask"]
    assert exchange.internal_errors == []
    assert exchange.trades[-1]["timestamp"] >= "2030-03-02T06:00"  # the makers still trade


def test_the_same_seed_and_scenario_give_the_same_market() -> None:
    def run(seed: int) -> Any:
        exchange = Exchange(seed=seed)
        moment = dt.datetime(2030, 3, 1, 6, 7, tzinfo=dt.timezone.utc).timestamp()
        for step in range(8):
            exchange.ledger.expire(moment + step * 900)
            quote(exchange.desk.place, exchange.ledger.book, Scenario(), seed, moment + step * 900)
        return exchange.save()

    assert run(5) == run(5)
    assert run(5) != run(6)


def test_a_scenario_file_sets_makers_and_a_replayed_price_path(tmp_path: Path) -> None:
    (tmp_path / "prices.csv").write_text("time,price\n2030-03-01T00:00Z,40.5\n2030-03-01T08:00Z,90\n")
    (tmp_path / "day.toml").write_text(
        'horizon_hours = 2\ntrades = false\n[[makers]]\nname = "maker-a"\nspread = 2\nvolume = 3\nlevels = 2\n'
        '[price]\nreplay = "prices.csv"\n'
    )
    scenario = load_scenario(str(tmp_path / "day.toml"))
    assert scenario.makers == (Maker("maker-a", Decimal(2), Decimal(3), 2),)
    assert scenario.horizon_hours == 2.0 and not scenario.trades
    assert scenario.path.replay[1][1] == Decimal(90)
    exchange = Exchange(seed=1)
    moment = dt.datetime(2030, 3, 1, 7, 50, tzinfo=dt.timezone.utc).timestamp()
    quote(exchange.desk.place, exchange.ledger.book, scenario, 1, moment)
    rows = {row["contract"]: row for row in exchange.public_market(moment) if "direction" not in row}
    assert rows["2030-03-01T08:00:00Z/PT15M"]["bid"] < Decimal(90)
    assert rows["2030-03-01T08:00:00Z/PT15M"]["ask"] > Decimal(90)
    assert len(rows) == 8  # two hours of quarter hours
    assert PricePath().hourly == ()
    (tmp_path / "bad.toml").write_text("[[makers]]\nname = 'x'\nspread = -1\n")
    with pytest.raises(ScenarioError, match="spread"):
        load_scenario(str(tmp_path / "bad.toml"))
    (tmp_path / "unknown.toml").write_text("makerz = 1\n")
    with pytest.raises(ScenarioError, match="unknown keys"):
        load_scenario(str(tmp_path / "unknown.toml"))


# -- 4. the web view (the browser tests are in test_sandbox_components.py) -------------------------------


def test_the_page_ships_in_the_package_and_calls_no_other_host() -> None:
    sandbox = Sandbox(Exchange(), admin_token=ADMIN)
    with ServerThread(sandbox) as running:
        for path in ("/", "/static/sandbox.js", "/static/sandbox.css", "/static/favicon.svg"):
            status, headers, _ = plain_call(running.base_url, "GET", path)
            assert status == 200, path
            assert "default-src 'none'" in headers["content-security-policy"]
        assert plain_call(running.base_url, "GET", "/static/../_persist.py")[0] == 404
        assert plain_call(running.base_url, "GET", "/elsewhere")[0] == 404
    static = Path(__file__).resolve().parents[2] / "gameproto_exchange" / "static"
    for page in static.iterdir():
        text = page.read_text()
        assert "http://" not in text.replace("http://www.w3.org/2000/svg", "") and "https://" not in text, page


def test_the_view_hides_hidden_orders_and_shows_traders_only_to_the_admin() -> None:
    clock = ManualClock(dt.datetime(2030, 3, 1, 6, 7, tzinfo=dt.timezone.utc).timestamp())
    exchange = Exchange(tokens={"alice-token": "alice"}, clock=clock)
    sandbox = Sandbox(exchange, clock=clock, admin_token=ADMIN)
    with ServerThread(sandbox) as running:
        url = running.base_url
        token = plain_call(url, "POST", "/api/v1/auth/token", {"token": "alice-token"})[2]["access_token"]
        shown = dict(_order(dt.date(2030, 3, 1)), price=41.0)
        hidden = dict(_order(dt.date(2030, 3, 1)), price=42.0, state="hidden")
        for order in (shown, hidden):
            assert plain_call(url, "POST", "/api/v1/orders", order, token)[0] == 200
        status, _, public = plain_call(url, "GET", "/_view")
        assert status == 200 and not public["admin"] and "traders" not in public
        assert public["contracts"][0]["bids"] == [{"price": 41, "volume": 1}]
        assert plain_call(url, "GET", f"/_view?known={public['key']}")[0] == 204  # nothing changed
        status, _, admin = plain_call(url, "GET", "/_view", token=ADMIN)
        assert admin["admin"] and [len(t["orders"]) for t in admin["traders"]] == [2]
        assert plain_call(url, "GET", "/_view", token="not-the-admin-token")[0] == 401
