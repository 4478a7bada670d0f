"""The embedded exchange through ``handle()``, in memory, with a fixed clock."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest

from gameproto._boundary import Request, Response
from gameproto._calls import encode_json
from gameproto._market import best_offers
from gameproto.simulator import MARKET_MAKERS, Exchange, Fault
from tests.support.common import future_order

NOW = 1_700_000_000.0  # 2023-11-14T22:13:20Z
DAY = "2023-11-15"
TOKENS = {"alice-token": "alice", "bob-token": "bob", "carol-token": "carol"}


class Clock:
    """A clock that moves only when told."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def order(side: str = "buy", price: Any = 50, volume: Any = 1, **fields: Any) -> Dict[str, Any]:
    """A valid order for 2023-11-15 10:00-10:15 UTC (the day after the clock)."""
    return future_order(side, price, volume, day=DAY, **fields)


def decode(response: Response) -> Any:
    return json.loads(response.body, parse_float=Decimal)


def send(
    exchange: Exchange,
    method: str,
    path: str,
    body: Any = None,
    *,
    access: Optional[str] = None,
    query: Tuple[Tuple[str, str], ...] = (),
    raw: Optional[bytes] = None,
) -> Response:
    headers = (("Authorization", f"Bearer {access}"),) if access else ()
    data = raw if raw is not None else (encode_json(body) if body is not None else None)
    response = exchange.handle(Request(method, path, query, headers, data))
    assert response.header("content-type") == "application/json"
    return response


def login(exchange: Exchange, personal: str) -> str:
    response = send(exchange, "POST", "/auth/token", {"token": personal})
    assert response.status == 200, response.body
    return str(decode(response)["access_token"])


class Trader:
    """One logged-in trader: ``call`` answers (status, JSON)."""

    def __init__(self, exchange: Exchange, personal: str) -> None:
        self.exchange = exchange
        self.access = login(exchange, personal)

    def call(self, method: str, path: str, body: Any = None, **params: str) -> Tuple[int, Any]:
        response = send(self.exchange, method, path, body, access=self.access, query=tuple(params.items()))
        return response.status, decode(response)

    def place(self, **fields: Any) -> Dict[str, Any]:
        status, created = self.call("POST", "/orders", order(**fields))
        assert status == 200, created
        return dict(created)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def exchange(clock: Clock) -> Exchange:
    return Exchange(TOKENS, clock=clock, seed=3)


@pytest.fixture
def alice(exchange: Exchange) -> Trader:
    return Trader(exchange, "alice-token")


@pytest.fixture
def bob(exchange: Exchange) -> Trader:
    return Trader(exchange, "bob-token")


@pytest.fixture
def carol(exchange: Exchange) -> Trader:
    return Trader(exchange, "carol-token")


@pytest.fixture(autouse=True)
def no_internal_errors(exchange: Exchange) -> Iterator[None]:
    yield
    assert exchange.internal_errors == []


# -- token exchange and auth ---------------------------------------------------


def test_a_token_exchange(exchange: Exchange) -> None:
    response = send(exchange, "POST", "/auth/token", {"token": "alice-token"})
    answer = decode(response)
    assert response.status == 200 and answer["token_type"] == "bearer" and answer["expires_in"] == 3600
    assert isinstance(answer["access_token"], str) and len(answer["access_token"]) >= 32
    assert login(exchange, "alice-token") != answer["access_token"]
    assert exchange.exchanges == 2


def test_an_iterable_of_tokens_names_the_traders_in_order(clock: Clock) -> None:
    exchange = Exchange(["one", "two"], clock=clock)
    second = Trader(exchange, "two")
    assert second.place()["trader"] == "trader-2"


def test_an_unknown_personal_token_is_refused(exchange: Exchange) -> None:
    response = send(exchange, "POST", "/auth/token", {"token": "nope"})
    assert response.status == 401 and decode(response) == {"detail": "Invalid token"}
    assert exchange.exchanges == 0


@pytest.mark.parametrize("raw", [b"", b"not json", b"[]", b'{"token": 5}', b"{}", b'{"token": NaN}', b"\xff\xfe"])
def test_a_malformed_token_exchange_is_a_422(exchange: Exchange, raw: bytes) -> None:
    response = send(exchange, "POST", "/auth/token", raw=raw)
    assert response.status == 422 and isinstance(decode(response)["detail"], list)


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer nope", "Basic abc", "bearer"])
def test_calls_without_a_valid_access_token_are_401(exchange: Exchange, header: Optional[str]) -> None:
    headers = (("Authorization", header),) if header is not None else ()
    response = exchange.handle(Request("GET", "/status", (), headers))
    assert response.status == 401 and decode(response) == {"detail": "Not authenticated"}
    assert response.header("www-authenticate") == "Bearer"


def test_the_bearer_scheme_and_header_name_are_case_insensitive(exchange: Exchange) -> None:
    access = login(exchange, "alice-token")
    response = exchange.handle(Request("GET", "/status", (), (("authorization", f"bearer {access}"),)))
    assert response.status == 200


def test_an_access_token_expires_after_its_lifetime(exchange: Exchange, clock: Clock, alice: Trader) -> None:
    clock.now += 3599
    assert alice.call("GET", "/status")[0] == 200
    clock.now += 1
    assert alice.call("GET", "/status") == (401, {"detail": "Token expired"})


def test_expire_access_tokens(exchange: Exchange, alice: Trader) -> None:
    exchange.expire_access_tokens()
    assert alice.call("GET", "/orders") == (401, {"detail": "Token expired"})
    assert Trader(exchange, "alice-token").call("GET", "/orders") == (200, [])


def test_revoke(exchange: Exchange, alice: Trader, bob: Trader) -> None:
    exchange.revoke("alice-token")
    assert alice.call("GET", "/orders")[0] == 401
    assert send(exchange, "POST", "/auth/token", {"token": "alice-token"}).status == 401
    assert bob.call("GET", "/orders")[0] == 200


# -- rate limit ------------------------------------------------------------------


def test_the_rate_limit_is_per_trader_and_per_minute(clock: Clock) -> None:
    exchange = Exchange(TOKENS, clock=clock, rate_limit_per_minute=3)
    alice, bob = Trader(exchange, "alice-token"), Trader(exchange, "bob-token")
    remaining = [alice.call("GET", "/status")[1]["rate_limit"]["requests_remaining"] for _ in range(3)]
    assert remaining == [2, 1, 0]
    response = send(exchange, "GET", "/orders", access=alice.access)
    assert response.status == 429 and decode(response) == {"detail": "Rate limit exceeded"}
    assert response.header("Retry-After") == "40"  # 22:13:20 -> the window ends at 22:14:00
    assert bob.call("GET", "/orders")[0] == 200
    assert login(exchange, "alice-token")  # the token exchange is not limited
    clock.now += 39.5
    assert send(exchange, "GET", "/orders", access=alice.access).header("Retry-After") == "1"
    clock.now += 0.5
    status, answer = alice.call("GET", "/status")
    assert status == 200 and answer["rate_limit"]["reset_time"] == "2023-11-14T22:15:00.000Z"


# -- status, routing -----------------------------------------------------------------


def test_status(alice: Trader) -> None:
    status, answer = alice.call("GET", "/status")
    assert status == 200 and answer["status"] == "healthy"
    assert set(answer["services"]) == {"orders", "trades", "market_data", "spot"}
    assert answer["rate_limit"]["requests_per_minute"] == 1000
    assert answer["timestamp"] == "2023-11-14T22:13:20.000Z"


def test_unknown_paths_and_wrong_methods(exchange: Exchange, alice: Trader) -> None:
    assert alice.call("GET", "/nope") == (404, {"detail": "Not Found"})
    assert alice.call("GET", "/orders/") == (404, {"detail": "Not Found"})
    assert alice.call("GET", "/orders/1/x") == (404, {"detail": "Not Found"})
    assert alice.call("PUT", "/orders") == (405, {"detail": "Method Not Allowed"})
    assert alice.call("GET", "/orders/1") == (405, {"detail": "Method Not Allowed"})
    assert alice.call("GET", "/auth/token") == (405, {"detail": "Method Not Allowed"})
    # Routing comes before auth, as in FastAPI.
    assert send(exchange, "GET", "/nope").status == 404


def test_react_counts_attempts_and_injects_faults(exchange: Exchange, alice: Trader) -> None:
    exchange.faults.add(Fault("status", status=503), path="/status")
    headers = (("Authorization", f"Bearer {alice.access}"),)
    first = exchange.react(Request("GET", "/status", (), headers))
    second = exchange.react(Request("GET", "/status", (), headers))
    assert first.response is not None and first.response.status == 503
    assert second.response is not None and second.response.status == 200
    assert exchange.attempts[("GET", "/status")] == 2


# -- orders ----------------------------------------------------------------------------


def test_a_created_order(alice: Trader) -> None:
    created = alice.place(side="sell", price=Decimal("50.25"), volume=2, options={"trader_suffixe": "bot"})
    assert created["order_id"] == "ord_1"
    assert created["state"] == "Displayed" and created["status"] == "active"
    assert created["contract"] == "2023-11-15T10:00:00Z/PT15M"
    assert created["price"] == Decimal("50.25") and created["volume"] == 2
    assert created["executed_volume"] == 0 and created["remaining_volume"] == 2
    assert created["average_price"] is None and created["execution_count"] == 0
    assert created["metadata"] == {"options": {"trader_suffixe": "bot"}}
    assert created["created_at"] == created["updated_at"] == "2023-11-14T22:13:20.000Z"
    listed = alice.call("GET", "/orders")[1]
    assert [entry["order_id"] for entry in listed] == [1]


def test_the_contract_is_the_delivery_window_in_utc(alice: Trader) -> None:
    cet = alice.place(start_time="11:00", end_time="12:30", duration="90m", tz_offset_hours=1)
    assert cet["contract"] == "2023-11-15T10:00:00Z/PT1H30M"
    last = alice.place(start_time="23:00", end_time="00:00", duration="1h")
    assert last["contract"] == "2023-11-15T23:00:00Z/PT1H"


def test_a_crossing_pair_trades_at_the_resting_price_with_a_partial_fill(alice: Trader, bob: Trader) -> None:
    resting = alice.place(side="sell", price=40, volume=2)
    incoming = bob.place(side="buy", price=45, volume=3)
    assert incoming["executed_volume"] == 2 and incoming["remaining_volume"] == 1
    assert incoming["average_price"] == 40 and incoming["execution_count"] == 1
    assert incoming["total_value"] == 80 and incoming["fees"] == Decimal("0.1")
    assert incoming["status"] == "active"
    (trade,) = bob.call("GET", "/trades")[1]
    assert (trade["price"], trade["volume"], trade["direction"]) == (40, 2, "buy")
    assert (trade["buyer"], trade["seller"], trade["fees"]) == ("bob", "alice", Decimal("0.1"))
    assert trade["trade_id"] == "trd_1" and trade["contract"] == resting["contract"] and trade["duration"] == "15m"
    (sold,) = alice.call("GET", "/orders")[1]
    assert sold["status"] == "filled" and sold["remaining_volume"] == 0 and sold["executed_volume"] == 2


def test_price_then_time_priority(alice: Trader, bob: Trader, carol: Trader) -> None:
    alice.place(side="sell", price=42, volume=1)
    carol.place(side="sell", price=41, volume=1)
    alice.place(side="sell", price=41, volume=1)
    bob.place(side="buy", price=45, volume=3)
    trades = bob.call("GET", "/trades")[1]
    assert [(t["price"], t["seller"], t["sell_order_id"]) for t in trades] == [
        (41, "carol", 2),
        (41, "alice", 3),
        (42, "alice", 1),
    ]


def test_a_sell_hits_the_highest_bid_first(alice: Trader, bob: Trader) -> None:
    alice.place(side="buy", price=30, volume=1)
    alice.place(side="buy", price=35, volume=1)
    sold = bob.place(side="sell", price=29, volume=Decimal("1.5"))
    assert abs(sold["average_price"] - Decimal(100) / 3) < Decimal("1e-12")  # (35 x 1 + 30 x 0.5) / 1.5
    trades = bob.call("GET", "/trades")[1]
    assert [(t["price"], t["volume"], t["direction"]) for t in trades] == [
        (35, 1, "sell"),
        (30, Decimal("0.5"), "sell"),
    ]


def test_no_trade_across_contracts_or_without_crossing(alice: Trader, bob: Trader) -> None:
    alice.place(side="sell", price=40)
    bob.place(side="buy", price=45, start_time="10:15", end_time="10:30")
    bob.place(side="buy", price=39)
    assert bob.call("GET", "/trades") == (200, [])


def test_a_trader_may_trade_with_itself(alice: Trader, bob: Trader) -> None:
    # A single-token user (the demo, a test harness) must see a crossing pair
    # trade; the exchange keeps price-time priority whoever owns the order.
    alice.place(side="sell", price=40)
    bob.place(side="sell", price=42)
    bought = alice.place(side="buy", price=45, volume=2)
    assert bought["executed_volume"] == 2 and bought["average_price"] == 41
    trades = alice.call("GET", "/trades")[1]
    assert [(trade["seller"], trade["price"]) for trade in trades] == [("alice", 40), ("bob", 42)]


def test_hidden_orders_trade_but_never_show(alice: Trader, bob: Trader) -> None:
    hidden = alice.place(side="sell", price=39, volume=1, state="hidden")
    assert hidden["state"] == "Hidden"
    alice.place(side="sell", price=41, volume=2)
    bob.place(side="buy", price=30, volume=1, state="hidden")
    rows = bob.call("GET", "/market")[1]
    assert all(row.get("price") not in (39, 30) for row in rows)
    (summary,) = [row for row in rows if "direction" not in row]
    assert summary["ask"] == 41 and summary["bid"] is None and summary["volume"] == 2
    bob.place(side="buy", price=45, volume=1)
    (trade,) = bob.call("GET", "/trades")[1]
    assert trade["price"] == 39 and trade["sell_order_id"] == 1


def test_deleted_orders_never_trade(alice: Trader, bob: Trader) -> None:
    created = alice.place(side="sell", price=40)
    assert alice.call("DELETE", "/orders/1") == (200, {"status": "deleted", "order_id": 1})
    assert alice.call("DELETE", "/orders/1") == (
        404,
        {"detail": "Order 1 was deleted already: nothing is left to cancel"},
    )
    assert alice.call("GET", "/orders") == (200, [])
    bob.place(side="buy", price=45)
    assert bob.call("GET", "/trades") == (200, [])
    assert created["order_id"] == "ord_1"


def test_a_fully_executed_order_is_not_cancellable(alice: Trader, bob: Trader) -> None:
    alice.place(side="sell", price=40, volume=2)
    bob.place(side="buy", price=45, volume=2)  # takes all of it
    gone = {"detail": "Order 1 is fully executed: nothing is left to cancel"}
    assert alice.call("DELETE", "/orders/1") == (404, gone)
    assert alice.call("DELETE", "/orders/ord_1") == (404, gone)
    assert bob.call("DELETE", "/orders/2") == (404, {"detail": "Order 2 is fully executed: nothing is left to cancel"})
    assert bob.call("DELETE", "/orders/1") == (404, {"detail": "Order not found"})  # not bob's: nothing said
    # Nothing changed: the order is listed as filled, the trade stands.
    (listed,) = alice.call("GET", "/orders")[1]
    assert listed["status"] == "filled" and listed["remaining_volume"] == 0 and listed["executed_volume"] == 2
    assert len(alice.call("GET", "/trades")[1]) == 1


def test_a_partly_executed_order_cancels_what_is_left(alice: Trader, bob: Trader) -> None:
    alice.place(side="sell", price=40, volume=3)
    bob.place(side="buy", price=45, volume=1)
    assert alice.call("DELETE", "/orders/1") == (200, {"status": "deleted", "order_id": 1})
    assert bob.call("GET", "/market")[1] == []  # the 2 MW left are out of the book
    assert len(bob.call("GET", "/trades")[1]) == 1  # the trade stands


CAPPED = "alice has 3 resting orders, the most this exchange keeps for one trader: delete some (or let them trade or expire) before placing more"  # noqa: E501


def test_a_trader_past_the_resting_cap_is_refused_with_a_422(clock: Clock) -> None:
    exchange = Exchange(TOKENS, clock=clock, max_resting_orders=3)
    alice, bob = Trader(exchange, "alice-token"), Trader(exchange, "bob-token")
    for price in (40, 41, 42):
        alice.place(side="sell", price=price)
    status, answer = alice.call("POST", "/orders", order(side="sell", price=43))
    assert (status, answer) == (
        422,
        {"detail": [{"loc": ["body"], "msg": CAPPED, "type": "value_error.resting_orders"}]},
    )
    status, bulk = alice.call("POST", "/orders/create-bulk", {"orders": [order(side="sell", price=44)] * 2})
    assert status == 200 and bulk["created"] == []
    assert bulk["failed"] == [{"index": 0, "error": CAPPED}, {"index": 1, "error": CAPPED}]
    bob.place(side="buy", price=40)  # fills alice's order at 40: a place is free again
    status, bulk = alice.call("POST", "/orders/create-bulk", {"orders": [order(side="sell", price=45)] * 3})
    assert [entry["index"] for entry in bulk["created"]] == [0]
    assert bulk["failed"] == [{"index": 1, "error": CAPPED}, {"index": 2, "error": CAPPED}]
    assert alice.call("DELETE", "/orders/2")[0] == 200  # so does a deletion
    assert alice.call("POST", "/orders", order(side="sell", price=46))[0] == 200
    assert alice.call("POST", "/orders", order(side="sell", price=47))[0] == 422
    assert bob.call("POST", "/orders", order(side="buy", price=10))[0] == 200  # the cap is per trader
    assert exchange.ledger.resting == {"alice": 3, "bob": 1}


def test_an_expiry_frees_places_under_the_cap(clock: Clock) -> None:
    exchange = Exchange(TOKENS, clock=clock, max_resting_orders=1)
    alice = Trader(exchange, "alice-token")
    alice.place(side="sell", price=40, start_time="00:00", end_time="00:15")  # delivers first, 2023-11-15 00:00
    assert alice.call("POST", "/orders", order(side="sell", price=41))[0] == 422
    clock.now += 2 * 3600  # the first contract closes
    alice = Trader(exchange, "alice-token")  # a fresh access token
    assert alice.call("POST", "/orders", order(side="sell", price=41))[0] == 200


def test_the_market_answer_follows_fills_leaving_the_24_hours(clock: Clock) -> None:
    exchange = Exchange(TOKENS, clock=clock)
    alice, bob = Trader(exchange, "alice-token"), Trader(exchange, "bob-token")
    later = (dt.date(2023, 11, 14) + dt.timedelta(days=3)).isoformat()
    alice.place(side="sell", price=40, volume=2, date=later)
    bob.place(side="buy", price=45, volume=1, date=later)  # a trade; 1 MW rests
    (summary,) = [row for row in bob.call("GET", "/market")[1] if "direction" not in row]
    assert summary["volume_24h"] == 1 and summary["high_24h"] == 40
    clock.now += 86_400 + 1  # the trade leaves the 24 hours; the book itself did not change
    bob = Trader(exchange, "bob-token")  # a day later: a fresh access token
    (summary,) = [row for row in bob.call("GET", "/market")[1] if "direction" not in row]
    assert summary["volume_24h"] == 0 and summary["high_24h"] is None and summary["price"] == 40
    market = exchange.market
    assert market.market_body(clock.now) == encode_json(market.market_rows(clock.now))


def test_delete_refuses_other_traders_unknown_and_malformed_ids(alice: Trader, bob: Trader) -> None:
    alice.place()
    assert bob.call("DELETE", "/orders/1") == (404, {"detail": "Order not found"})
    assert bob.call("DELETE", "/orders/99") == (404, {"detail": "Order not found"})
    assert bob.call("DELETE", "/orders/" + "9" * 40)[0] == 404
    assert bob.call("DELETE", "/orders/ord_1") == (404, {"detail": "Order not found"})  # the creation form
    for bad in ("abc", "ord_", "ord_x", "-1", "1.0", "create-bulk"):
        status, answer = bob.call("DELETE", f"/orders/{bad}")
        assert status == 422 and answer["detail"][0]["loc"] == ["path", "order_id"]
    assert len(alice.call("GET", "/orders")[1]) == 1


def test_listing_by_direction(alice: Trader, bob: Trader) -> None:
    alice.place(side="buy", price=10)
    alice.place(side="sell", price=90)
    bob.place(side="sell", price=95)
    assert [o["direction"] for o in alice.call("GET", "/orders", direction="sell")[1]] == ["sell"]
    assert len(alice.call("GET", "/orders")[1]) == 2
    assert alice.call("GET", "/orders", direction="up")[0] == 422


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"price": -10}, "price"),
        ({"price": 0}, "price"),
        ({"volume": "1"}, "volume"),
        ({"side": "hold"}, "side"),
        ({"volumne": 1}, "volumne"),
        ({"date": "2023-11-14", "start_time": "22:00", "end_time": "22:15"}, "start_time"),
        ({"duration": "30m"}, "duration"),
        ({"price": Decimal("1e12")}, "price"),
        ({"volume": Decimal("1e-21")}, "volume"),
        ({"price": "HUGE"}, "price"),
    ],
)
def test_a_bad_order_is_a_422_naming_the_field(
    exchange: Exchange, alice: Trader, changes: Dict[str, Any], field: str
) -> None:
    raw = encode_json(order(**changes)).replace(b'"HUGE"', b"1e400")  # a number no double holds
    response = send(exchange, "POST", "/orders", access=alice.access, raw=raw)
    status, answer = response.status, decode(response)
    assert status == 422
    assert ["body", field] in [entry["loc"] for entry in answer["detail"]]
    assert all(entry["msg"] and entry["type"] == "value_error" for entry in answer["detail"])
    assert alice.call("GET", "/orders") == (200, [])


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b"[1, 2]", b'"order"', b"null", b'{"price": NaN}', b'{"price": 1e999999999999}', b"[" * 100_000],
)
def test_a_body_that_is_not_an_order_is_a_422(exchange: Exchange, alice: Trader, raw: bytes) -> None:
    response = send(exchange, "POST", "/orders", access=alice.access, raw=raw)
    assert response.status == 422 and isinstance(decode(response)["detail"], list)


def test_non_positive_prices_when_allowed(clock: Clock) -> None:
    exchange = Exchange(TOKENS, clock=clock, allow_non_positive_price=True)
    alice, bob = Trader(exchange, "alice-token"), Trader(exchange, "bob-token")
    alice.place(side="sell", price=-5)
    bob.place(side="buy", price=0)
    (trade,) = bob.call("GET", "/trades")[1]
    assert trade["price"] == -5


def test_a_bulk_with_valid_and_invalid_orders(alice: Trader, bob: Trader) -> None:
    bob.place(side="buy", price=60, volume=1)
    orders = [order("sell", 55, 2), order("sell", -10), {"side": "sell"}, order("sell", 70, 1)]
    status, answer = alice.call("POST", "/orders/create-bulk", {"orders": orders})
    assert status == 200 and answer["requested"] == 4
    assert [(entry["index"], entry["result"]["order_id"]) for entry in answer["created"]] == [
        (0, "ord_2"),
        (3, "ord_3"),
    ]
    assert answer["created"][0]["result"]["executed_volume"] == 1
    assert [entry["index"] for entry in answer["failed"]] == [1, 2]
    assert answer["failed"][0]["error"] == "orders[1].price: must be > 0, got -10"
    assert "orders[2].price: is required" in answer["failed"][1]["error"]


@pytest.mark.parametrize("body", [{"orders": "x"}, {"order": []}, [], {"orders": [order()] * 101}])
def test_a_malformed_bulk_is_a_422(alice: Trader, body: Any) -> None:
    status, answer = alice.call("POST", "/orders/create-bulk", body)
    assert status == 422 and answer["detail"][0]["loc"] == ["body", "orders"]
    assert alice.call("GET", "/orders") == (200, [])


def test_a_bulk_of_100_crossing_a_resting_sell_trades_what_crosses(alice: Trader, bob: Trader) -> None:
    # How fast the exchange matches a bulk is measured by ``python -m benchmarks``, not asserted here.
    bob.place(side="sell", price=50, volume=30)
    orders = [order("buy", 40 + index % 20, Decimal("0.5")) for index in range(100)]
    status, answer = alice.call("POST", "/orders/create-bulk", {"orders": orders})
    assert status == 200 and len(answer["created"]) == 100 and answer["failed"] == []
    # The 50 buys at 50 and above each take 0.5 of bob's 30 at his price; the others rest.
    status, trades = alice.call("GET", "/trades")
    assert status == 200 and len(trades) == 50
    assert sum(Decimal(str(trade["volume"])) for trade in trades) == 25
    assert {Decimal(str(trade["price"])) for trade in trades} == {50}


# -- trades, market data, LTP ----------------------------------------------------------


def test_trade_filters(alice: Trader, bob: Trader) -> None:
    alice.place(side="sell", price=40)
    bob.place(side="buy", price=45)
    alice.place(side="buy", price=50, start_time="11:00", end_time="12:00", duration="1h")
    bob.place(side="sell", price=49, start_time="11:00", end_time="12:00", duration="1h")
    assert [t["direction"] for t in bob.call("GET", "/trades", direction="sell")[1]] == ["sell"]
    assert [t["duration"] for t in bob.call("GET", "/trades", duration="60m")[1]] == ["1h"]
    assert len(bob.call("GET", "/trades", duration="15m")[1]) == 1
    assert bob.call("GET", "/trades", duration="15x")[0] == 422
    assert bob.call("GET", "/trades", direction="both")[0] == 422


def test_market_rows(alice: Trader, bob: Trader) -> None:
    alice.place(side="buy", price=40, volume=1)
    bob.place(side="buy", price=40, volume=2)
    bob.place(side="buy", price=38, volume=1)
    alice.place(side="sell", price=44, volume=3)
    status, rows = bob.call("GET", "/market")
    assert status == 200
    summary, *levels = rows
    assert "direction" not in summary
    assert (summary["bid"], summary["ask"], summary["spread"], summary["price"]) == (40, 44, 4, 42)
    assert summary["volume"] == 7 and summary["duration"] == "15m" and summary["volume_24h"] == 0
    assert [(row["direction"], row["price"], row["volume"]) for row in levels] == [
        ("buy", 40, 3),
        ("buy", 38, 1),
        ("sell", 44, 3),
    ]
    assert [row.get("direction") for row in bob.call("GET", "/market", direction="sell")[1]] == [None, "sell"]
    assert bob.call("GET", "/market", duration="1h") == (200, [])
    offers = best_offers(json.loads(encode_json(rows)), top_n=1)
    assert [row["price"] for row in offers["2023-11-15T10:00:00Z/PT15M"]["buy"]] == [40]


def test_market_summary_after_trades(alice: Trader, bob: Trader, clock: Clock) -> None:
    alice.place(side="sell", price=40, volume=1)
    bob.place(side="buy", price=45, volume=1)
    clock.now += 60
    alice.place(side="sell", price=50, volume=2)
    bob.place(side="buy", price=55, volume=1)
    (summary, level) = bob.call("GET", "/market")[1]
    assert summary["price"] == 50 and summary["high_24h"] == 50 and summary["low_24h"] == 40
    assert summary["change_24h"] == 10 and summary["change_percent_24h"] == 25 and summary["volume_24h"] == 2
    assert level["volume"] == 1


def test_last_traded_prices(alice: Trader, bob: Trader) -> None:
    assert bob.call("GET", "/market/market-ltp", market_zone="10YCH-SWISSGRIDZ") == (200, [])
    alice.place(side="sell", price=40, volume=1)
    bob.place(side="buy", price=45, volume=1)
    alice.place(side="sell", price=41, volume=1)
    bob.place(side="buy", price=45, volume=1)
    (entry,) = bob.call("GET", "/market/market-ltp", market_zone="10YCH-SWISSGRIDZ")[1]
    assert entry == {
        "market_zone": "10YCH-SWISSGRIDZ",
        "contract": "2023-11-15T10:00:00Z/PT15M",
        "price": 41,
        "volume": 1,
        "timestamp": "2023-11-14T22:13:20.000Z",
    }
    assert bob.call("GET", "/market/market-ltp", market_zone="10YDE-EON------1") == (200, [])
    assert bob.call("GET", "/market/market-ltp", market_zone="../x")[0] == 422
    assert bob.call("GET", "/market/latest-ltp")[1] == [entry]
    assert bob.call("GET", "/market/latest-ltp", duration="1h") == (200, [])
    assert bob.call("GET", "/market/latest-ltp", duration="0m")[0] == 422


# -- spot ------------------------------------------------------------------------------------


def test_spot_data(alice: Trader) -> None:
    status, rows = alice.call("GET", "/spot")
    assert status == 200 and len(rows) == 24
    assert rows[-1]["timestamp"] == "2023-11-14T22:00:00Z" and rows[-1]["contract"] == "2023-11-14T22:00:00Z/PT1H"
    row = rows[0]
    assert row["area_name"] == "CH-SGD" and row["bid"] < row["price"] < row["ask"]
    assert row["low_24h"] <= row["price"] <= row["high_24h"]
    assert len(row["order_book"]["bids"]) == 3 and len(row["order_book"]["asks"]) == 3
    assert alice.call("GET", "/spot")[1] == rows  # deterministic
    limited = alice.call("GET", "/spot", area_name="DE-LU", date_from="2024-01-01", date_to="2024-01-02", limit="30")[1]
    assert len(limited) == 30 and limited[0]["timestamp"] == "2024-01-01T00:00:00Z"
    assert len(alice.call("GET", "/spot", date_from="2024-01-01", date_to="2024-01-01", limit="1000")[1]) == 24


def test_spot_depends_on_the_seed(clock: Clock) -> None:
    one = Trader(Exchange(TOKENS, clock=clock, seed=1), "alice-token").call("GET", "/spot")[1]
    two = Trader(Exchange(TOKENS, clock=clock, seed=2), "alice-token").call("GET", "/spot")[1]
    assert [row["price"] for row in one] != [row["price"] for row in two]


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "1001"},
        {"limit": "ten"},
        {"date_from": "2024-02-30"},
        {"date_to": "tomorrow"},
        {"date_from": "2024-01-02", "date_to": "2024-01-01"},
        {"date_from": "0001-01-01"},
        {"date_to": "9999-12-31"},
        {"area_name": "../etc"},
    ],
)
def test_bad_spot_queries_are_422(alice: Trader, params: Dict[str, str]) -> None:
    assert alice.call("GET", "/spot", **params)[0] == 422


def test_spot_status(alice: Trader) -> None:
    status, answer = alice.call("GET", "/spot/status")
    assert status == 200 and answer["status"] == "operational" and answer["market_open"] is True
    assert answer["last_update"] == "2023-11-14T22:00:00Z" and answer["next_update"] == "2023-11-14T23:00:00Z"
    assert len(answer["active_contracts"]) == 24


# -- seeding ---------------------------------------------------------------------------------


def test_a_seeded_market_is_live_and_never_crossed(exchange: Exchange, alice: Trader) -> None:
    exchange.seed_market(orders=24)
    rows = alice.call("GET", "/market")[1]
    summaries = [row for row in rows if "direction" not in row]
    assert len(summaries) == 12
    for row in summaries:
        assert row["bid"] < row["ask"]
    trades = alice.call("GET", "/trades")[1]
    assert len(trades) == 3 and {(t["buyer"], t["seller"]) for t in trades} == {MARKET_MAKERS}
    assert all(t["timestamp"] < "2023-11-14T22:13:20.000Z" for t in trades)
    assert len(alice.call("GET", "/market/latest-ltp")[1]) == 3
    resting = [o for maker in MARKET_MAKERS for o in exchange.orders_of(maker) if o["status"] == "active"]
    assert len(resting) == 24 and all(o["contract"] > "2023-11-14T22:13" for o in resting)
    assert len(exchange.trades) == 3


def test_a_new_order_trades_against_the_seeded_book(exchange: Exchange, alice: Trader) -> None:
    exchange.seed_market()
    rows: List[Dict[str, Any]] = alice.call("GET", "/market")[1]
    ask = next(row for row in rows if row.get("direction") == "sell")
    start = ask["contract"][11:16]
    status, created = alice.call(
        "POST",
        "/orders",
        order("buy", ask["price"], Decimal("0.5"), date=ask["contract"][:10], start_time=start, end_time="22:30"),
    )
    assert status == 200 and created["executed_volume"] == Decimal("0.5") and created["average_price"] == ask["price"]
