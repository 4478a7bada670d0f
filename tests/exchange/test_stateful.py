"""The exchange against a reference model (Hypothesis stateful), and fuzzed requests."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Dict, List, Optional, Tuple

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from gameproto._boundary import Request, Response
from gameproto._calls import encode_json
from gameproto._orders import ORDER_FIELDS
from gameproto.simulator import Exchange

NOW = 1_700_000_000.0  # 2023-11-14T22:13:20Z
TRADERS = ("alice", "bob", "carol")
# Two contracts of different lengths; both deliver on the day after NOW.
WINDOWS = (("10:00", "10:15", "15m"), ("11:00", "12:00", "1h"))
PRICES = (Decimal(48), Decimal("49.5"), Decimal(50), Decimal(51), Decimal("52.25"))
VOLUMES = (Decimal("0.5"), Decimal(1), Decimal("1.5"), Decimal(2), Decimal("3.1"))


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def decode(response: Response) -> Any:
    return json.loads(response.body, parse_float=Decimal)


@dataclass
class ModelOrder:
    """The reference model's idea of one order."""

    number: int
    trader: str
    side: str
    price: Decimal
    volume: Decimal
    window: int
    hidden: bool
    executed: Decimal = Decimal(0)
    deleted: bool = False

    @property
    def remaining(self) -> Decimal:
        return self.volume - self.executed

    def crosses(self, resting: ModelOrder) -> bool:
        return self.price >= resting.price if self.side == "buy" else self.price <= resting.price


# (buy order, sell order, price, volume)
ModelTrade = Tuple[int, int, Decimal, Decimal]


class ExchangeMachine(RuleBasedStateMachine):
    """Random orders and deletions; after each step the exchange must agree with a naive matcher."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = Clock()
        self.exchange = Exchange(
            {f"{name}-token": name for name in TRADERS}, clock=self.clock, rate_limit_per_minute=10**9
        )
        self.access = {name: self._login(name) for name in TRADERS}
        self.model: Dict[int, ModelOrder] = {}
        self.trades: List[ModelTrade] = []
        self.deleted_after: Dict[int, int] = {}  # order -> number of trades when it was deleted

    def _login(self, name: str) -> str:
        response = self.exchange.handle(Request("POST", "/auth/token", body=encode_json({"token": f"{name}-token"})))
        return str(decode(response)["access_token"])

    def _call(self, trader: str, method: str, path: str, body: Any = None, **params: str) -> Tuple[int, Any]:
        headers = (("Authorization", f"Bearer {self.access[trader]}"),)
        data = encode_json(body) if body is not None else None
        response = self.exchange.handle(Request(method, path, tuple(params.items()), headers, data))
        return response.status, decode(response)

    def _reference_match(self, incoming: ModelOrder) -> None:
        """Price-time priority, trades at the resting price, no self-trade, written the slow obvious way."""
        others = [
            order
            for order in self.model.values()
            if order.window == incoming.window
            and order.side != incoming.side
            and not order.deleted
            and order.remaining > 0
        ]
        best_first = -1 if incoming.side == "sell" else 1
        others.sort(key=lambda order: (order.price * best_first, order.number))
        for resting in others:
            if incoming.remaining == 0 or not incoming.crosses(resting):
                break
            volume = min(incoming.remaining, resting.remaining)
            incoming.executed += volume
            resting.executed += volume
            buy, sell = (incoming, resting) if incoming.side == "buy" else (resting, incoming)
            self.trades.append((buy.number, sell.number, resting.price, volume))

    @rule(
        trader=st.sampled_from(TRADERS),
        side=st.sampled_from(("buy", "sell")),
        price=st.sampled_from(PRICES),
        volume=st.sampled_from(VOLUMES),
        window=st.sampled_from(range(len(WINDOWS))),
        hidden=st.booleans(),
    )
    def place(self, trader: str, side: str, price: Decimal, volume: Decimal, window: int, hidden: bool) -> None:
        start, end, duration = WINDOWS[window]
        sent = {
            "side": side,
            "price": price,
            "volume": volume,
            "date": "2023-11-15",
            "start_time": start,
            "end_time": end,
            "duration": duration,
            "tz_offset_hours": 0,
            "state": "hidden" if hidden else "displayed",
        }
        status, created = self._call(trader, "POST", "/orders", sent)
        assert status == 200, created
        number = int(created["order_id"][len("ord_") :])
        assert number == len(self.model) + 1
        incoming = ModelOrder(number, trader, side, price, volume, window, hidden)
        self._reference_match(incoming)
        self.model[number] = incoming
        assert (created["executed_volume"], created["remaining_volume"]) == (incoming.executed, incoming.remaining)

    @precondition(lambda self: any(not order.deleted for order in self.model.values()))
    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        live = sorted(number for number, order in self.model.items() if not order.deleted)
        number = data.draw(st.sampled_from(live), label="order")
        owner = self.model[number].trader
        stranger = data.draw(st.sampled_from([name for name in TRADERS if name != owner]), label="stranger")
        assert self._call(stranger, "DELETE", f"/orders/{number}") == (404, {"detail": "Order not found"})
        if self.model[number].remaining == 0:  # a fully executed order is not cancellable: nothing is left
            gone = {"detail": f"Order {number} is fully executed: nothing is left to cancel"}
            assert self._call(owner, "DELETE", f"/orders/{number}") == (404, gone)
            return
        assert self._call(owner, "DELETE", f"/orders/{number}") == (200, {"status": "deleted", "order_id": number})
        self.model[number].deleted = True
        self.deleted_after[number] = len(self.trades)
        again = {"detail": f"Order {number} was deleted already: nothing is left to cancel"}
        assert self._call(owner, "DELETE", f"/orders/{number}") == (404, again)

    @rule(seconds=st.integers(min_value=0, max_value=120))
    def wait(self, seconds: int) -> None:
        self.clock.now += seconds

    def _listed(self) -> List[Dict[str, Any]]:
        listed: List[Dict[str, Any]] = []
        for trader in TRADERS:
            status, orders = self._call(trader, "GET", "/orders")
            assert status == 200 and all(order["trader"] == trader for order in orders)
            listed.extend(orders)
        return listed

    @invariant()
    def every_order_conserves_volume_and_matches_the_model(self) -> None:
        listed = self._listed()
        assert sorted(order["order_id"] for order in listed) == sorted(
            number for number, order in self.model.items() if not order.deleted
        )
        for order in listed:
            expected = self.model[order["order_id"]]
            assert order["executed_volume"] + order["remaining_volume"] == order["volume"] == expected.volume
            assert order["executed_volume"] == expected.executed
            assert order["status"] == ("filled" if expected.remaining == 0 else "active")

    @invariant()
    def the_resting_book_is_never_crossed(self) -> None:
        resting = [order for order in self._listed() if order["remaining_volume"] > 0]
        for buy in (order for order in resting if order["direction"] == "buy"):
            for sell in (order for order in resting if order["direction"] == "sell"):
                if buy["contract"] == sell["contract"]:
                    assert buy["price"] < sell["price"], (buy, sell)

    @invariant()
    def every_trade_is_backed_by_a_buy_and_a_sell(self) -> None:
        status, trades = self._call("alice", "GET", "/trades")
        assert status == 200
        assert [(t["buy_order_id"], t["sell_order_id"], t["price"], t["volume"]) for t in trades] == self.trades
        executed: Dict[int, Decimal] = {}
        for index, trade in enumerate(trades):
            buy, sell = self.model[trade["buy_order_id"]], self.model[trade["sell_order_id"]]
            assert (buy.side, sell.side) == ("buy", "sell")
            assert (trade["buyer"], trade["seller"]) == (buy.trader, sell.trader)
            assert buy.window == sell.window and buy.price >= trade["price"] >= sell.price
            for number in (buy.number, sell.number):
                assert index < self.deleted_after.get(number, len(trades)), f"order {number} traded after deletion"
                executed[number] = executed.get(number, Decimal(0)) + trade["volume"]
        for number, order in self.model.items():
            assert executed.get(number, Decimal(0)) == order.executed

    @invariant()
    def market_data_shows_exactly_the_displayed_resting_volume(self) -> None:
        status, rows = self._call("bob", "GET", "/market")
        assert status == 200
        shown: Dict[Tuple[str, str, Decimal], Decimal] = {}
        for row in rows:
            if "direction" in row:
                key = (row["contract"], row["direction"], row["price"])
                assert key not in shown
                shown[key] = row["volume"]
        expected: Dict[Tuple[str, str, Decimal], Decimal] = {}
        contracts = {"2023-11-15T10:00:00Z/PT15M", "2023-11-15T11:00:00Z/PT1H"}
        for order in self.model.values():
            if not order.hidden and not order.deleted and order.remaining > 0:
                contract = sorted(contracts)[order.window]
                key = (contract, order.side, order.price)
                expected[key] = expected.get(key, Decimal(0)) + order.remaining
        assert shown == expected

    @invariant()
    def the_cached_market_answer_equals_a_fresh_build(self) -> None:
        status, served = self._call("bob", "GET", "/market")  # through the cache, as a trader polls
        market, now = self.exchange.market, self.exchange.now()
        assert status == 200 and served == decode(Response(200, {}, encode_json(market.market_rows(now))))
        for direction in (None, "buy", "sell"):
            for minutes in (None, 15, 60):
                cached = market.market_body(now, direction, minutes)
                assert cached == encode_json(market.market_rows(now, direction, minutes)), (direction, minutes)

    @invariant()
    def a_saved_state_loads_into_an_exchange_that_answers_the_same(self) -> None:
        saved = json.loads(encode_json(self.exchange.save()), parse_float=Decimal)  # through JSON text
        twin = Exchange({f"{name}-token": name for name in TRADERS}, clock=self.clock)
        twin.load(saved)
        for trader in TRADERS:
            assert twin.orders_of(trader) == self.exchange.orders_of(trader)
        assert twin.trades == self.exchange.trades
        assert twin.public_market() == self.exchange.public_market()
        now = self.exchange.now()
        assert twin.market.market_body(now) == self.exchange.market.market_body(now)
        assert twin.save() == self.exchange.save()

    def teardown(self) -> None:
        assert self.exchange.internal_errors == []


TestExchangeMachine = ExchangeMachine.TestCase
TestExchangeMachine.settings = settings(
    max_examples=50,
    stateful_step_count=30,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


# -- whatever arrives, the answer is a 2xx-4xx JSON body ----------------------------------------

_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.floats()
    | st.decimals(allow_nan=False, allow_infinity=False).map(lambda d: float(d) if abs(d) < 10**300 else str(d))
    | st.text(max_size=20)
)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
_FIELD_VALUES: Dict[str, Any] = {
    "side": st.sampled_from(["buy", "sell", "BUY", ""]),
    "price": st.sampled_from([50, 49.5, -1, 0, 1e308, 10**30, 1e-300, "50"]),
    "volume": st.sampled_from([1, 0.5, 0, 1e-13, 3.1, 10**12]),
    "date": st.sampled_from(["2023-11-15", "2023-11-14", "2024-02-30", "9999-12-31", "0001-01-01"]),
    "start_time": st.sampled_from(["10:00", "23:45", "00:00", "24:00"]),
    "end_time": st.sampled_from(["10:15", "00:00", "11:00"]),
    "duration": st.sampled_from(["15m", "1h", "60m", "0m", "9" * 5000 + "m"]),
    "tz_offset_hours": st.sampled_from([0, 1, 2, 3, True, 1.0]),
    "state": st.sampled_from(["displayed", "hidden", "Hidden"]),
    "options": st.sampled_from([{}, {"trader_suffixe": "bot"}, {"x": [1, 2]}, {"trader_suffixe": 5}]),
}
_ORDERS = st.fixed_dictionaries({}, optional={name: _FIELD_VALUES[name] | _JSON for name in ORDER_FIELDS})


def _dumps(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


_BODIES = st.one_of(
    st.none(),
    st.binary(max_size=64),
    _JSON.map(_dumps),
    _ORDERS.map(_dumps),
    st.lists(_ORDERS, max_size=5).map(lambda orders: _dumps({"orders": orders})),
    st.sampled_from(
        [b'{"price": NaN}', b'{"a": Infinity}', b"1e999999999999", b"[" * 5000, b'{"token": "alice-token"}']
    ),
)
_PATHS = st.sampled_from(
    [
        "/auth/token",
        "/status",
        "/orders",
        "/orders/create-bulk",
        "/orders/1",
        "/orders/2",
        "/orders/x",
        "/orders/" + "9" * 5000,
        "/trades",
        "/market",
        "/market/market-ltp",
        "/market/latest-ltp",
        "/spot",
        "/spot/status",
    ]
) | st.text(max_size=20).map(lambda text: "/" + text)
_PARAMS = st.lists(
    st.tuples(
        st.sampled_from(["direction", "duration", "market_zone", "area_name", "date_from", "date_to", "limit"])
        | st.text(max_size=6),
        st.sampled_from(["buy", "sell", "15m", "1h", "10YCH-SWISSGRIDZ", "CH-SGD", "2024-01-01", "0001-01-01", "5"])
        | st.text(max_size=12),
    ),
    max_size=4,
)


@settings(max_examples=400, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    method=st.sampled_from(["GET", "POST", "DELETE", "PUT", "PATCH", "HEAD"]) | st.text(max_size=8),
    path=_PATHS,
    query=_PARAMS,
    body=_BODIES,
    authorised=st.sampled_from(["yes", "no", "garbage"]),
)
def test_handle_never_raises_and_never_answers_5xx(
    method: str, path: str, query: List[Tuple[str, str]], body: Optional[bytes], authorised: str
) -> None:
    clock = Clock()
    exchange = Exchange({"alice-token": "alice", "bob-token": "bob"}, clock=clock, seed=1)
    exchange.seed_market()
    login = exchange.handle(Request("POST", "/auth/token", body=b'{"token": "alice-token"}'))
    access = {"yes": str(decode(login)["access_token"]), "no": None, "garbage": "x" * 40}[authorised]
    headers = (("Authorization", f"Bearer {access}"),) if access else ()
    response = exchange.handle(Request(method, path, tuple(query), headers, body))
    assert 200 <= response.status < 500
    assert response.header("content-type") == "application/json"
    json.loads(response.body)
    assert exchange.internal_errors == []
