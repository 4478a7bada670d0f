"""The sandbox's market makers keep their promises: prices at or below zero, trades that do not
depend on how the clock was moved, bounded scenarios, the resting cap, and a fault that is only a fault.
"""

from __future__ import annotations

import datetime as dt
import http.client
from decimal import Decimal
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest

from gameproto.simulator.exchange import Exchange
from gameproto.simulator.faults import Fault
from gameproto.simulator.makers import MAX_LEVELS, MAX_MAKERS, MAX_QUOTES, Maker, PricePath, Scenario, mid_price
from gameproto_exchange import ManualClock, Sandbox, ScenarioError, ServerThread, Store, load_scenario
from tests.support.harness import GameServe
from tests.support.sandbox import ADMIN, admin_call, plain_call

UTC = dt.timezone.utc
START = dt.datetime(2030, 3, 1, 6, 7, tzinfo=UTC).timestamp()
TRADERS = {"alice-token": "alice"}


def _access(url: str, personal: str = "alice-token") -> str:
    status, _, data = plain_call(url, "POST", "/api/v1/auth/token", {"token": personal})
    assert status == 200, data
    return str(data["access_token"])


def _order(slot: float, side: str, price: float) -> Dict[str, Any]:
    start = dt.datetime.fromtimestamp(slot, UTC)
    return {
        "side": side,
        "price": price,
        "volume": 1.0,
        "date": start.strftime("%Y-%m-%d"),
        "start_time": start.strftime("%H:%M"),
        "end_time": (start + dt.timedelta(minutes=15)).strftime("%H:%M"),
        "duration": "15m",
        "tz_offset_hours": 0,
    }


# -- 15. prices at or below zero ---------------------------------------------------------------------------

NEGATIVE_HOURS = [-12, -3, 0, 4] * 6  # a sunny day's hours, repeated


def test_a_scenario_below_zero_is_quoted_and_traded_and_lets_every_trader_use_such_prices() -> None:
    scenario = Scenario(path=PricePath(hourly=tuple(Decimal(price) for price in NEGATIVE_HOURS)))
    assert scenario.lowest_price() < 0
    clock = ManualClock(START)  # started inside an hour whose prices are below zero
    exchange = Exchange(tokens=TRADERS, clock=clock, seed=3)
    sandbox = Sandbox(exchange, clock=clock, admin_token=ADMIN, scenario=scenario)
    sandbox.quote()
    assert sandbox.non_positive_prices and exchange.desk.allow_non_positive_price
    with ServerThread(sandbox) as running:
        url = running.base_url
        for _ in range(4):
            admin_call(url, "POST", "/_sandbox/clock/advance", {"by": "1h"})
        access = _access(url)
        status, _, rows = plain_call(url, "GET", "/api/v1/market", token=access)
        assert status == 200 and rows
        assert any(Decimal(str(row["price"])) <= 0 for row in rows if "price" in row)
        slot = (clock() // 900 + 2) * 900
        status, _, created = plain_call(url, "POST", "/api/v1/orders", _order(slot, "buy", -25.5), access)
        assert status == 200, created
    traded = [fill.price for fill in exchange.ledger.book.fills]
    assert len(traded) >= 4 and min(traded) <= 0


def test_game_serve_says_at_start_that_prices_below_zero_are_allowed(tmp_path: Path) -> None:
    scenario = tmp_path / "negative.toml"
    scenario.write_text("[price]\nhourly = [" + ", ".join(map(str, NEGATIVE_HOURS)) + "]\n")
    with GameServe("--scenario", str(scenario), "--clock", "manual", "--admin-token", ADMIN) as served:
        assert any("prices at or below zero: allowed for every trader" in line for line in served.banner)
        moved = admin_call(served.base_url, "POST", "/_sandbox/clock/advance", {"by": "2h"})
        assert moved["clock"] == "manual"
    with GameServe("--seed-market") as served:  # the seed's curve never goes there: nothing said
        assert not any("below zero" in line for line in served.banner)


# -- 16. the makers' trades do not depend on the step ------------------------------------------------------


def _maker_trades(steps: List[str]) -> List[Tuple[str, Decimal, Decimal, str, str]]:
    clock = ManualClock(START)
    exchange = Exchange(tokens=TRADERS, clock=clock, seed=5)
    sandbox = Sandbox(exchange, clock=clock, admin_token=ADMIN, scenario=Scenario())
    sandbox.quote()
    with ServerThread(sandbox) as running:
        for step in steps:
            admin_call(running.base_url, "POST", "/_sandbox/clock/advance", {"by": step})
    return [(f.contract, f.price, f.volume, f.buyer, f.seller) for f in exchange.ledger.book.fills]


def test_eight_steps_of_15_minutes_trade_as_one_step_of_two_hours() -> None:
    small, large = _maker_trades(["15m"] * 8), _maker_trades(["2h"])
    assert len(small) == 9 and small == large


# -- 17. a price series searched by bisection, bounded levels, the resting cap -----------------------------


def test_a_replayed_series_gives_the_last_price_at_or_before_each_slot() -> None:
    rows = tuple((float(at), Decimal(at // 900)) for at in range(0, 900 * 500_000, 900))
    scenario = Scenario(path=PricePath(replay=tuple(reversed(rows))))  # given in any order
    assert mid_price(scenario, 0, -1.0) == Decimal(0)  # before the series: its first price
    assert mid_price(scenario, 0, 900.0 * 1234) == Decimal(1234)
    assert mid_price(scenario, 0, 900.0 * 1234 + 899) == Decimal(1234)
    assert mid_price(scenario, 0, 900.0 * 10**7) == Decimal(499_999)  # after it: its last


def test_levels_are_bounded_with_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=f"levels must be from 1 to {MAX_LEVELS}, not 20000"):
        Scenario(makers=(Maker("a", levels=20000),))
    path = tmp_path / "deep.toml"
    path.write_text('[[makers]]\nname = "deep"\nlevels = 20000\n')
    with pytest.raises(ScenarioError, match=r"deep\.toml.*levels must be from 1 to 20, not 20000"):
        load_scenario(str(path))


def test_the_quotes_of_a_whole_scenario_are_bounded_with_a_clear_error(tmp_path: Path) -> None:
    deep = tuple(Maker(f"m{number}", levels=MAX_LEVELS) for number in range(MAX_MAKERS))
    with pytest.raises(ValueError, match=f"would rest 386000 quotes .*, at most {MAX_QUOTES}"):
        Scenario(makers=deep, horizon_hours=48)
    widest = Scenario(makers=deep[:2], horizon_hours=48)  # as deep as a maker goes, two of them, two days ahead
    assert widest.quotes() == 2 * MAX_LEVELS * 2 * 193 <= MAX_QUOTES
    path = tmp_path / "wide.toml"
    path.write_text("horizon_hours = 48\n" + "".join(f'[[makers]]\nname = "m{n}"\nlevels = 20\n' for n in range(50)))
    with pytest.raises(ScenarioError, match=r"wide\.toml.*fewer makers or levels, or a shorter horizon_hours"):
        load_scenario(str(path))


def test_the_makers_obey_the_resting_cap() -> None:
    clock = ManualClock(START)
    exchange = Exchange(tokens=TRADERS, clock=clock, max_resting_orders=10)
    scenario = Scenario(makers=(Maker("deep-a", levels=MAX_LEVELS), Maker("deep-b", levels=MAX_LEVELS)))
    sandbox = Sandbox(exchange, clock=clock, admin_token=ADMIN, scenario=scenario)
    sandbox.quote()
    with ServerThread(sandbox) as running:
        admin_call(running.base_url, "POST", "/_sandbox/clock/advance", {"by": "3h"})
    assert exchange.ledger.resting == {"deep-a": 10, "deep-b": 10}


# -- 18. an injected fault is only a fault -------------------------------------------------------------------


def test_a_not_json_fault_on_delete_is_carried_out_and_saved(tmp_path: Path) -> None:
    path = str(tmp_path / "sandbox.db")
    clock = ManualClock(START)
    exchange = Exchange(tokens=TRADERS, clock=clock)
    sandbox = Sandbox(exchange, clock=clock, admin_token=ADMIN, store=Store(path))
    with ServerThread(sandbox) as running:
        url = running.base_url
        access = _access(url)
        status, _, created = plain_call(url, "POST", "/api/v1/orders", _order(START + 7200, "buy", 40.0), access)
        assert status == 200, created
        number = int(created["order_id"][4:])
        exchange.faults.add(Fault("not_json"), method="DELETE")
        connection = http.client.HTTPConnection("127.0.0.1", running.port, timeout=30)
        try:
            connection.request("DELETE", f"/api/v1/orders/{number}", headers={"Authorization": f"Bearer {access}"})
            answer = connection.getresponse()
            status, body = answer.status, answer.read()
        finally:
            connection.close()
        assert status == 200 and body.startswith(b"<html>")  # the injected answer: 200, not JSON
        status, _, listed = plain_call(url, "GET", "/api/v1/orders", token=access)
        assert status == 200 and number not in [order["order_id"] for order in listed]
    assert [cancel["order_id"] for cancel in sandbox.cancels] == [number]
    assert sandbox.store is not None
    sandbox.store.close()
    again = Exchange(tokens=TRADERS, clock=ManualClock(START))
    Sandbox(again, clock=ManualClock(START), store=Store(path))
    assert again.ledger.book.orders[number].deleted  # the cancel was saved
