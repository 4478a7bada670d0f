"""The sandbox's web view (``/_view``): what it shows, what it never shows, and when it is made again.

Over a real socket: a hidden order leaves no trace in any public answer or
view; contracts are named by their Zurich delivery time and quarter hour;
the viewer chooses which contracts are on screen; a view is rendered again
only when what it shows changed, and costs what it shows (the browser tests
are in test_sandbox_components.py).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Dict, Iterator, List, Tuple

import pytest

from gameproto.simulator.exchange import Exchange
from gameproto_exchange import ManualClock, Sandbox, ServerThread, _sandbox, _web
from gameproto_exchange._web import contract_label
from tests.support.sandbox import ADMIN, plain_call

START = dt.datetime(2030, 3, 1, 6, 7, tzinfo=dt.timezone.utc).timestamp()


def _order(start: str, price: float, side: str = "buy", **extra: Any) -> Dict[str, Any]:
    begin = dt.datetime.strptime(start, "%H:%M")
    order = {"side": side, "price": price, "volume": 1.0, "date": "2030-03-01", "start_time": start}
    order.update(end_time=(begin + dt.timedelta(minutes=15)).strftime("%H:%M"), duration="15m", tz_offset_hours=0)
    order.update(extra)
    return order


@pytest.fixture(autouse=True)
def render_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each poll renders what changed at once: a 204 here means nothing the view shows changed."""
    monkeypatch.setattr(_sandbox, "VIEW_EVERY", 0.0)


@pytest.fixture()
def served() -> Iterator[Tuple[Sandbox, str, Dict[str, str]]]:
    """A sandbox on a manual clock: (sandbox, base url, each trader's access token)."""
    clock = ManualClock(START)
    exchange = Exchange(tokens={"alice-token": "alice", "bob-token": "bob", "carol-token": "carol"}, clock=clock)
    sandbox = Sandbox(exchange, clock=clock, admin_token=ADMIN)
    with ServerThread(sandbox) as running:
        url = running.base_url
        tokens = {}
        for name in ("alice", "bob", "carol"):
            tokens[name] = plain_call(url, "POST", "/api/v1/auth/token", {"token": f"{name}-token"})[2]["access_token"]
        yield sandbox, url, tokens


def _get(url: str, path: str, token: Any = None) -> Any:
    status, _, body = plain_call(url, "GET", path, token=token)
    assert status == 200, (path, status, body)
    return body


# -- item 1: a hidden order is invisible in every public answer and view -----------------------------------------


def test_a_contract_whose_only_order_is_hidden_shows_nowhere_public(
    served: Tuple[Sandbox, str, Dict[str, str]],
) -> None:
    _, url, tokens = served
    for start in ("10:00", "10:15"):  # two open contracts with displayed orders
        assert plain_call(url, "POST", "/api/v1/orders", _order(start, 40.0), tokens["bob"])[0] == 200
    before = _get(url, "/_view")
    secret = "2030-03-01T09:00:00Z/PT15M"  # nearest delivery: it would be first on every list
    placed = plain_call(url, "POST", "/api/v1/orders", _order("09:00", 41.0, state="hidden"), tokens["alice"])
    assert placed[0] == 200
    # The public view did not change at all: not its key, not a byte of it.
    assert plain_call(url, "GET", f"/_view?known={before['key']}")[0] == 204
    answers: List[Any] = [_get(url, "/_view"), _get(url, "/_view?first=1")]
    for path in ("/market", "/market/market-ltp", "/market/latest-ltp", "/trades", "/orders", "/status"):
        answers.append(_get(url, "/api/v1" + path, tokens["carol"]))
    public = answers[0]
    assert public["total"] == 2 and public["choices"] == [c["contract"] for c in public["contracts"]]
    assert [c["contract"] for c in public["closing"]] == public["choices"]
    for answer in answers:
        assert "09:00:00Z" not in repr(answer) and "QH 41" not in repr(answer), answer
    # The admin sees it, in the traders' listing (not in the public ladders).
    admin = _get(url, "/_view", ADMIN)
    alice = next(trader for trader in admin["traders"] if trader["trader"] == "alice")
    assert [order["contract"] for order in alice["orders"]] == [secret]
    assert alice["orders"][0]["state"] == "Hidden" and alice["orders"][0]["order_id"] == placed[2]["order_id"]
    assert secret not in [c["contract"] for c in admin["contracts"]]


def test_a_hidden_order_does_not_move_the_public_market_rows(served: Tuple[Sandbox, str, Dict[str, str]]) -> None:
    sandbox, url, tokens = served
    assert plain_call(url, "POST", "/api/v1/orders", _order("10:00", 40.0), tokens["bob"])[0] == 200
    before = _get(url, "/api/v1/market", tokens["carol"])
    assert sandbox.clock is not None
    sandbox.clock.advance(60)  # a minute later, a hidden order comes to the same contract, and one goes
    for price in (41.0, 39.0):
        placed = plain_call(url, "POST", "/api/v1/orders", _order("10:00", price, state="hidden"), tokens["alice"])
        assert placed[0] == 200
    assert plain_call(url, "DELETE", f"/api/v1/orders/{placed[2]['order_id']}", token=tokens["alice"])[0] == 200
    assert _get(url, "/api/v1/market", tokens["carol"]) == before  # not a row, not a timestamp moved
    assert plain_call(url, "POST", "/api/v1/orders", _order("10:00", 38.0), tokens["bob"])[0] == 200
    assert _get(url, "/api/v1/market", tokens["carol"])[0]["timestamp"] > before[0]["timestamp"]


# -- item 20: named by local delivery time, chosen by the viewer, ids as ord_N ----------------------------------


@pytest.mark.parametrize(
    ("contract", "text"),
    [
        ("2030-01-15T14:15:00Z/PT15M", "Tue 15 Jan 2030 15:15-15:30, QH 62"),  # CET, UTC+1
        ("2030-07-01T22:00:00Z/PT1H", "Tue 2 Jul 2030 00:00-01:00, QH 1-4"),  # CEST, UTC+2: the next local day
        ("2030-03-31T01:00:00Z/PT15M", "Sun 31 Mar 2030 03:00-03:15, QH 9"),  # the spring change: 02:00 never was
        ("2030-10-27T00:45:00Z/PT15M", "Sun 27 Oct 2030 02:45-03:00, QH 12"),  # the autumn change, first 02:45
        ("2030-10-27T01:45:00Z/PT15M", "Sun 27 Oct 2030 02:45-03:00, QH 16"),  # ... and the second
        ("2030-10-27T22:45:00Z/PT15M", "Sun 27 Oct 2030 23:45-00:00, QH 100"),  # that day has 100 quarter hours
    ],
)
def test_a_contract_is_named_by_its_zurich_delivery_time_and_quarter_hour(contract: str, text: str) -> None:
    assert contract_label(contract)["text"] == text


def test_the_view_says_which_contracts_of_how_many_it_shows_and_takes_the_viewers_choice(
    served: Tuple[Sandbox, str, Dict[str, str]],
) -> None:
    _, url, tokens = served
    for quarter in range(12):
        start = (dt.datetime(2030, 3, 1, 10) + dt.timedelta(minutes=15 * quarter)).strftime("%H:%M")
        assert plain_call(url, "POST", "/api/v1/orders", _order(start, 40.0 + quarter), tokens["bob"])[0] == 200
    page = _get(url, "/_view")
    assert (page["first"], page["total"], page["per_page"], len(page["contracts"])) == (0, 12, 8, 8)
    later = _get(url, "/_view?first=8")
    assert later["first"] == 8 and [c["contract"] for c in later["contracts"]] == page["choices"][8:]
    assert _get(url, "/_view?first=500")["first"] == 11  # past the end: the last one
    assert plain_call(url, "GET", "/_view?first=-1")[0] == 422
    assert plain_call(url, "GET", "/_view?first=x")[0] == 422
    for contract in page["choices"]:
        assert page["labels"][contract] == contract_label(contract)
    assert page["labels"][page["choices"][0]]["text"] == "Fri 1 Mar 2030 11:00-11:15, QH 45"
    admin = _get(url, "/_view", ADMIN)
    bob = next(trader for trader in admin["traders"] if trader["trader"] == "bob")
    assert all(order["order_id"].startswith("ord_") for order in bob["orders"])
    assert bob["more_orders"] == 0 and len(bob["orders"]) == 12


def test_each_shown_contract_carries_its_recent_trade_prices(served: Tuple[Sandbox, str, Dict[str, str]]) -> None:
    _, url, tokens = served
    for price in (50.0, 52.0, 51.0):
        assert plain_call(url, "POST", "/api/v1/orders", _order("10:00", price, "sell"), tokens["alice"])[0] == 200
        assert plain_call(url, "POST", "/api/v1/orders", _order("10:00", price), tokens["bob"])[0] == 200
    assert plain_call(url, "POST", "/api/v1/orders", _order("10:00", 45.0), tokens["bob"])[0] == 200
    ladder = _get(url, "/_view")["contracts"][0]
    assert ladder["prices"] == [50, 52, 51] and ladder["last_price"] == 51


# -- item 19: rendered again only when what it shows changed, at the cost of what it shows -----------------------


def test_on_the_real_clock_the_view_is_not_made_again_as_seconds_pass() -> None:
    now = [START]
    exchange = Exchange(tokens={"bob-token": "bob"}, clock=lambda: now[0])
    sandbox = Sandbox(exchange, admin_token=ADMIN)  # no manual clock: the host's (here, a stand-in)
    exchange.desk.place(_order("10:00", 40.0), "bob", START)
    sandbox.changed()
    with ServerThread(sandbox) as running:
        key = _get(running.base_url, "/_view")["key"]
        admin_key = _get(running.base_url, "/_view", ADMIN)["key"]
        now[0] += 5.0  # seconds pass, nothing changes
        assert plain_call(running.base_url, "GET", f"/_view?known={key}")[0] == 204
        assert plain_call(running.base_url, "GET", f"/_view?known={admin_key}", token=ADMIN)[0] == 204
        now[0] = dt.datetime(2030, 3, 1, 10, 0, tzinfo=dt.timezone.utc).timestamp()  # the contract closes
        after = _get(running.base_url, f"/_view?known={key}")
        assert after["total"] == 0 and after["contracts"] == []


def test_a_change_outside_the_shown_contracts_leaves_the_public_view_as_it_was(
    served: Tuple[Sandbox, str, Dict[str, str]],
) -> None:
    _, url, tokens = served
    for quarter in range(10):
        start = (dt.datetime(2030, 3, 1, 10) + dt.timedelta(minutes=15 * quarter)).strftime("%H:%M")
        assert plain_call(url, "POST", "/api/v1/orders", _order(start, 40.0), tokens["bob"])[0] == 200
    key = _get(url, "/_view")["key"]
    assert plain_call(url, "POST", "/api/v1/orders", _order("12:15", 39.0), tokens["bob"])[0] == 200  # the 10th
    assert plain_call(url, "GET", f"/_view?known={key}")[0] == 204
    assert plain_call(url, "POST", "/api/v1/orders", _order("10:15", 39.0), tokens["bob"])[0] == 200  # the 2nd
    assert plain_call(url, "GET", f"/_view?known={key}")[0] == 200


def test_the_admin_view_lists_live_orders_without_looking_at_filled_ones(
    served: Tuple[Sandbox, str, Dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox, url, _ = served
    desk = sandbox.exchange.desk
    for _ in range(500):  # a history: 500 orders of alice filled by bob
        desk.place(_order("10:00", 50.0, "sell"), "alice", START)
        desk.place(_order("10:00", 50.0), "bob", START)
    for number in range(20):
        desk.place(_order("10:30", 40.0 + number / 10), "alice", START)
    sandbox.changed()
    rows: List[int] = []
    made = _web._order_row
    monkeypatch.setattr(_web, "_order_row", lambda order, expired: rows.append(order.number) or made(order, expired))
    admin = _get(url, "/_view", ADMIN)
    alice = next(trader for trader in admin["traders"] if trader["trader"] == "alice")
    assert len(alice["orders"]) == 12 and alice["more_orders"] == 8
    assert all(order["status"] == "active" for order in alice["orders"])
    assert len(rows) == 12  # twelve rows made for alice, none for her 500 filled orders, none for bob
    assert alice["positions"] == {"2030-03-01T10:00:00Z/PT15M": -500}
