"""The embedded exchange's clock offset and the closing of a contract at its delivery start."""

from __future__ import annotations

import datetime as dt
import http.client
import json
from typing import Any, Dict, List, Optional, Tuple

import pytest

from gameproto._boundary import Request, Response
from gameproto._calls import encode_json
from gameproto._clock import ClockEstimator
from gameproto._events import OrderTracker
from gameproto._retry import parse_http_date
from gameproto.simulator.exchange import EXPIRED_LISTED_FOR, Exchange
from gameproto_exchange import ServerThread

NOW = 1_700_000_000.0  # 2023-11-14T22:13:20Z
DELIVERY = dt.datetime(2023, 11, 14, 23, 0, tzinfo=dt.timezone.utc).timestamp()


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _order(side: str, price: float, volume: float, start: str = "23:00", end: str = "23:15") -> Dict[str, Any]:
    return {
        "side": side,
        "price": price,
        "volume": volume,
        "date": "2023-11-14",
        "start_time": start,
        "end_time": end,
        "duration": "15m",
        "tz_offset_hours": 0,
    }


class Desk:
    """Two traders on one in-memory exchange."""

    def __init__(self, offset: float = 0.0) -> None:
        self.clock = Clock()
        self.exchange = Exchange({"a-token": "alice", "b-token": "bob"}, clock=self.clock, clock_offset=offset)
        self.access = {name: self._login(f"{name[0]}-token") for name in ("alice", "bob")}

    def _login(self, token: str) -> str:
        answer = self.exchange.handle(Request("POST", "/auth/token", body=encode_json({"token": token})))
        return str(json.loads(answer.body)["access_token"])

    def call(self, trader: str, method: str, path: str, body: Any = None) -> Tuple[int, Any]:
        headers = (("Authorization", f"Bearer {self.access[trader]}"),)
        data = encode_json(body) if body is not None else None
        answer: Response = self.exchange.handle(Request(method, path, (), headers, data))
        return answer.status, json.loads(answer.body)

    def listing(self, trader: str = "alice") -> List[Any]:
        status, orders = self.call(trader, "GET", "/orders")
        assert status == 200
        return list(orders)


def test_resting_orders_expire_at_delivery_start_listed_once_then_gone() -> None:
    desk = Desk()
    tracker = OrderTracker()
    tracker.update([])  # the watch starts before the order
    status, created = desk.call("alice", "POST", "/orders", _order("sell", 50, 5))
    assert status == 200
    number = int(created["order_id"][4:])
    assert [e.kind for e in tracker.update(desk.listing())] == ["placed"]
    assert desk.call("bob", "POST", "/orders", _order("buy", 50, 2))[0] == 200
    events = tracker.update(desk.listing())
    assert [(e.kind, e.volume, e.complete) for e in events] == [("filled", 2, False)]

    desk.clock.now = DELIVERY  # the contract closes
    listed = desk.listing()
    assert [(o["order_id"], o["state"], o["status"], o["executed_volume"], o["remaining_volume"]) for o in listed] == [
        (number, "Expired", "expired", 2, 3)
    ]
    assert [(e.kind, e.complete) for e in tracker.update(listed)] == [("gone", False)]
    assert desk.call("alice", "GET", "/market") == (200, [])  # out of the book at once
    gone = {"detail": f"Order {number} expired at its delivery start: nothing is left to cancel"}
    assert desk.call("alice", "DELETE", f"/orders/{number}") == (404, gone)

    desk.clock.now = DELIVERY + EXPIRED_LISTED_FOR
    assert desk.listing() == []
    assert desk.call("alice", "DELETE", f"/orders/{number}") == (404, gone)  # unlisted, still expired
    assert tracker.update([]) == []  # gone was said once


def test_an_expired_order_never_trades() -> None:
    desk = Desk()
    desk.call("alice", "POST", "/orders", _order("sell", 50, 5))
    desk.clock.now = DELIVERY - 1
    desk.exchange.orders_of("alice")
    desk.clock.now = DELIVERY + 1
    # Bob's order for the closed window is refused by the order rules, and the book is empty anyway.
    status, _ = desk.call("bob", "POST", "/orders", _order("buy", 60, 1))
    assert status == 422
    assert desk.exchange.trades == []


def test_orders_of_other_contracts_stay_and_filled_ones_do_not_expire() -> None:
    desk = Desk()
    desk.call("alice", "POST", "/orders", _order("sell", 50, 1))
    desk.call("bob", "POST", "/orders", _order("buy", 50, 1))  # fills alice's completely
    desk.call("alice", "POST", "/orders", _order("sell", 55, 1, "23:15", "23:30"))
    desk.clock.now = DELIVERY + 1
    assert [(o["status"], o["state"]) for o in desk.listing()] == [("filled", "Displayed"), ("active", "Displayed")]


def test_the_clock_offset_shifts_every_now_of_the_exchange() -> None:
    desk = Desk(offset=300)
    status, answer = desk.call("alice", "GET", "/status")
    assert status == 200 and answer["timestamp"] == "2023-11-14T22:18:20.000Z"
    assert desk.exchange.now() == NOW + 300
    # 22:15 is in the future for the host (22:13:20) but not for the exchange (22:18:20).
    status, refused = desk.call("alice", "POST", "/orders", _order("buy", 50, 1, "22:15", "22:30"))
    assert status == 422 and "future" in json.dumps(refused)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "300", True])
def test_a_bad_clock_offset_is_refused_by_name(bad: Any) -> None:
    with pytest.raises(ValueError, match="clock_offset"):
        Exchange(clock_offset=bad)


@pytest.mark.parametrize("offset", [300.0, -300.0])
def test_the_server_dates_its_answers_with_the_exchange_clock(offset: float) -> None:
    estimator = ClockEstimator()
    exchange = Exchange({"a-token": "alice"}, clock_offset=offset)
    with ServerThread(exchange) as running:
        connection = http.client.HTTPConnection("127.0.0.1", running.port, timeout=10)
        try:
            sent = dt.datetime.now(dt.timezone.utc).timestamp()
            connection.request("POST", "/api/v1/auth/token", body=b'{"token": "a-token"}')
            answer = connection.getresponse()
            answer.read()
            received = dt.datetime.now(dt.timezone.utc).timestamp()
        finally:
            connection.close()
    date: Optional[str] = answer.getheader("Date")
    assert date is not None and parse_http_date(date) is not None
    assert estimator.observe(sent, received, date=date)
    low, high = estimator.interval  # type: ignore[misc]
    assert low <= offset <= high
