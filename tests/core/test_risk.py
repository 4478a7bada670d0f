"""Pre-trade limits as pure rules: each limit, its error, and the property that no accepted
sequence of orders and fills ends past the net position limit."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, Dict, List, Tuple

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gameproto import Contract, RiskLimitError, RiskLimits
from gameproto._bulk import plan_orders
from gameproto._risk import RiskBook, RiskGuard

UTC = dt.timezone.utc
CONTRACTS = [Contract(dt.datetime(2030, 1, 15, 10, tzinfo=UTC) + dt.timedelta(minutes=15 * n), 15) for n in range(3)]
NOW = dt.datetime(2030, 1, 1, tzinfo=UTC)


def order(side: str, price: Any, volume: Any, contract: Contract = CONTRACTS[0]) -> Dict[str, Any]:
    return {"side": side, "price": price, "volume": volume, **contract.order_fields(), "state": "displayed"}


def listed(number: int, side: str, price: Any, remaining: Any, contract: Contract = CONTRACTS[0]) -> Dict[str, Any]:
    return {
        "order_id": number,
        "direction": side,
        "price": price,
        "volume": remaining,
        "remaining_volume": remaining,
        "contract": contract.id,
        "trader": "alice",
        "state": "Displayed",
        "status": "active",
    }


def trade(side: str, price: Any, volume: Any, contract: Contract = CONTRACTS[0]) -> Dict[str, Any]:
    buyer, seller = ("alice", "bob") if side == "buy" else ("bob", "alice")
    return {"contract": contract.id, "price": price, "volume": volume, "buyer": buyer, "seller": seller}


LIMITS = RiskLimits(max_order_volume=5, max_net_position=10, max_open_volume=12, price_band=20, max_open_orders=3)


def book_of(limits: RiskLimits = LIMITS) -> RiskBook:
    """Resting: buy 4 @ 50 and sell 2 @ 60; filled: bought 5; the market 50 / 60."""
    book = RiskBook(limits)
    orders = [listed(1, "buy", 50, 4), listed(2, "sell", 60, 2)]
    market = [{"contract": CONTRACTS[0].id, "bid": 50, "ask": 60}]
    book.refresh(orders, [trade("buy", 50, 5)], market, [{"contract": CONTRACTS[1].id, "price": 70}], now=0.0)
    return book


def breached(book: RiskBook, *orders: Dict[str, Any]) -> List[Tuple[int, str]]:
    _, breaches = book.check(list(enumerate(orders)))
    return [(breach.index, breach.limit) for breach in breaches]


def test_each_limit_is_judged_against_the_book() -> None:
    assert breached(book_of(), order("buy", 55, 6)) == [(0, "max_order_volume"), (0, "max_net_position")]
    assert breached(book_of(), order("buy", 59, 1)) == []  # long 5 + 4 + 1 = 10: at the limit, not past it
    assert breached(book_of(), order("buy", 59, 2)) == [(0, "max_net_position")]
    assert breached(book_of(), order("sell", 61, 5), order("sell", 62, 5)) == [
        (1, "max_open_volume"),
        (1, "max_open_orders"),
    ]
    assert breached(book_of(), order("sell", 61, 1), order("sell", 61, 1)) == [(1, "max_open_orders")]
    assert breached(book_of(), order("sell", 29, 1)) == [(0, "price_band"), (0, "self_trade_prevention")]
    assert breached(book_of(), order("buy", 81, 1)) == [(0, "price_band"), (0, "self_trade_prevention")]
    # No best ask on the second contract: its last traded price is the reference.
    assert breached(book_of(), order("buy", 91, 1, CONTRACTS[1])) == [(0, "price_band")]
    assert breached(book_of(), order("buy", 1000, 1, CONTRACTS[2])) == []  # no reference price: no band
    assert breached(book_of(), order("buy", 60, 1)) == [(0, "self_trade_prevention")]
    assert breached(book_of(), order("buy", 59.99, 1)) == []


def test_self_trade_prevention_can_be_turned_off() -> None:
    limits = RiskLimits(self_trade_prevention=False)
    assert breached(book_of(limits), order("buy", 60, 1), order("sell", 50, 1)) == []
    assert breached(book_of(RiskLimits()), order("buy", 55, 1), order("sell", 55, 1)) == [(1, "self_trade_prevention")]


def test_the_error_names_each_limit_the_value_and_the_index() -> None:
    book = book_of()
    with pytest.raises(RiskLimitError) as caught:
        plan_orders({"orders": [order("buy", 55, 1), order("buy", 55, 6)]}, now=NOW, screen=RiskGuard(book).screen)
    error = caught.value
    assert error.indices == [1]
    assert error.limits == ["max_net_position", "max_open_orders", "max_open_volume", "max_order_volume"]
    assert "orders[1]: max_order_volume: volume 6 is over 5" in str(error)
    assert "orders[1]: max_net_position: net position 16 if every resting order filled" in str(error)
    first = error.breaches[0]
    assert (first.value, first.allowed) == (Decimal(6), Decimal(5))
    # Nothing sent, nothing kept: the accepted first order's reservation is released by the client.
    assert len(book.resting()) == 3


def test_skip_invalid_lists_breaching_orders_as_failed() -> None:
    guard = RiskGuard(book_of())
    bulk = {"orders": [order("buy", 55, 6), {"side": "buy"}, order("sell", 61, 1)]}
    plan = plan_orders(bulk, now=NOW, skip_invalid=True, screen=guard.screen)
    assert plan.positions == (2,)
    assert [entry["index"] for entry in plan.refused] == [0, 1]
    assert plan.refused[0]["error"].startswith("risk limit: max_order_volume: volume 6 is over 5")


def test_a_single_order_past_a_limit_raises() -> None:
    with pytest.raises(RiskLimitError, match=r"orders\[0\]: max_order_volume"):
        plan_orders(order("buy", 55, 6), now=NOW, screen=RiskGuard(book_of()).screen)


def test_a_breach_shows_numbers_without_float_noise() -> None:
    limits = RiskLimits(price_band=0.1, self_trade_prevention=False)
    _, (breach,) = book_of(limits).check([(0, order("sell", 0.1 + 0.2, 1))])
    assert breach.limit == "price_band" and breach.value == Decimal("0.30000000000000004")  # the value stays exact
    assert "price 0.3 is more than 0.1 from 50 " in breach.reason, breach.reason


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"max_order_volume": 0}, "max_order_volume must be > 0"),
        ({"max_net_position": "ten"}, "max_net_position must be a number"),
        ({"price_band": "30"}, "price_band must be a number .* got '30'"),  # as an order's price: no strings
        ({"price_band": -1}, "price_band must be >= 0"),
        ({"max_open_orders": 2.5}, "max_open_orders must be a whole number"),
        ({"self_trade_prevention": "no"}, "self_trade_prevention must be True or False"),
        ({"max_state_age": -1}, "max_state_age must be a number of seconds"),
    ],
)
def test_bad_limits_are_named(arguments: Dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RiskLimits(**arguments)


# -- the property: whatever fills, nothing accepted ends past the limit ----------------

steps = st.lists(
    st.one_of(
        st.tuples(
            st.just("order"),
            st.sampled_from(["buy", "sell"]),
            st.integers(0, 2),
            st.integers(1, 8),
            st.integers(40, 60),
        ),
        st.tuples(st.just("fill"), st.integers(0, 30), st.integers(1, 8)),
        st.tuples(st.just("cancel"), st.integers(0, 30)),
        st.tuples(st.just("refresh")),
        st.tuples(st.just("lost"), st.sampled_from(["buy", "sell"]), st.integers(0, 2), st.integers(1, 8)),
    ),
    max_size=60,
)


@given(steps, st.integers(3, 12), st.booleans())
def test_no_accepted_sequence_ends_past_the_net_position_limit(
    plan: List[Tuple[Any, ...]], limit: int, bulk: bool
) -> None:
    """The account's truth (resting orders, fills) against what the book was told and saw."""
    book = RiskBook(RiskLimits(max_net_position=limit, self_trade_prevention=False, max_state_age=1e9))
    resting: Dict[int, Dict[str, Any]] = {}
    trades: List[Dict[str, Any]] = []
    number = 0

    def truth() -> List[Dict[str, Any]]:
        # A filled order stays listed (remaining 0), as on the exchange: the account's trader name is on it.
        return [listed(n, o["side"], o["price"], o["left"], o["contract"]) for n, o in resting.items()]

    book.refresh([], [], None, None, now=0.0)
    for step in plan:
        if step[0] in ("order", "lost") and book.needs_refresh(0.0):
            book.refresh(truth(), trades, None, None, now=0.0)  # as the client does before an order
        if step[0] in ("order", "lost"):
            side, which, volume = step[1], CONTRACTS[step[2]], step[3]
            price = step[4] if step[0] == "order" else 50
            guard = RiskGuard(book)
            orders = [(0, order(side, price, volume, which))]
            if bulk:
                orders.append((1, order(side, price, 1, which)))
            if guard.screen(orders):
                guard.failed(RiskLimitError([]))
                continue
            for index, placed in orders:
                number += 1
                resting[number] = {"side": side, "price": price, "left": placed["volume"], "contract": which}
                if step[0] == "order":
                    book.created(guard.reservation, index, {"order_id": f"ord_{number}", "trader": "alice"})
            if step[0] == "lost":  # placed, but the answer never came: the outcome is unknown to the client
                guard.failed(TimeoutError())
        elif step[0] == "fill" and resting:
            key = sorted(resting)[step[1] % len(resting)]
            held = resting[key]
            if held["left"] == 0:
                continue
            filled = min(step[2], held["left"])
            held["left"] -= filled
            trades.append(trade(held["side"], held["price"], filled, held["contract"]))
        elif step[0] == "cancel" and any(held["left"] for held in resting.values()):
            # Only what rests can be deleted; a filled order stays listed, as on the exchange.
            live = sorted(key for key, held in resting.items() if held["left"])
            key = live[step[1] % len(live)]
            del resting[key]
            book.cancelled(key)
        elif step[0] == "refresh" or book.needs_refresh(0.0):
            book.refresh(truth(), trades, None, None, now=0.0)
        for contract in CONTRACTS:
            filled_net = sum(
                (
                    Decimal(t["volume"]) * (1 if t["buyer"] == "alice" else -1)
                    for t in trades
                    if t["contract"] == contract.id
                ),
                Decimal(0),
            )
            rest = [o for o in resting.values() if o["contract"] == contract]
            long = filled_net + sum(o["left"] for o in rest if o["side"] == "buy")
            short = filled_net - sum(o["left"] for o in rest if o["side"] == "sell")
            assert -limit <= filled_net <= limit
            assert long <= limit and short >= -limit


def test_a_bulk_that_failed_part_way_settles_each_order() -> None:
    """Created orders rest under their number, unknown ones are counted until the next read, unsent ones freed."""
    from gameproto import ServerError

    book = book_of(RiskLimits(max_net_position=100, max_state_age=1e9))
    guard = RiskGuard(book)
    assert guard.screen([(0, order("buy", 55, 1)), (1, order("buy", 55, 2)), (2, order("buy", 55, 4))]) == []
    assert not book.needs_refresh(0.0)
    error = ServerError("part 2 failed")
    error.partial_result = {"created": [{"index": 0, "result": {"order_id": "ord_7"}}], "unknown": [1], "unsent": [2]}
    guard.failed(error)
    counted = sorted((number or 0, held.remaining) for number, held in book.resting() if held.side == "buy")
    assert counted == [(0, Decimal(2)), (1, Decimal(4)), (7, Decimal(1))]  # 0: the unknown one, no number
    assert book.needs_refresh(0.0)  # the unknown one is settled by the next listing
    book.refresh(
        [listed(1, "buy", 50, 4), listed(7, "buy", 55, 1)], [], None, None, now=0.0, since=book.begin_refresh()
    )
    assert sorted(number or 0 for number, _ in book.resting()) == [1, 7] and not book.needs_refresh(0.0)


def test_an_order_filled_entirely_in_its_answer_rests_no_more() -> None:
    """Self-trade prevention must not refuse a valid sell after a buy that filled on arrival."""
    book = RiskBook(RiskLimits(max_net_position=10, max_state_age=1e9))
    book.refresh([], [], None, None, now=0.0)
    guard = RiskGuard(book)
    assert guard.screen([(0, order("buy", 60, 3))]) == []
    guard.sent_one(
        {"order_id": "ord_9", "volume": 3, "executed_volume": 3, "remaining_volume": 0, "state": "DISPLAYED"}
    )
    assert book.resting() == [] and book.filled(CONTRACTS[0]) == 3
    assert breached(book, order("sell", 55, 3)) == []  # nothing of the account's own rests to cross
    assert (0, "max_net_position") in breached(book, order("buy", 54, 8))  # 3 filled + 8 > 10


def test_an_order_partly_filled_in_its_answer_rests_with_what_is_left() -> None:
    book = RiskBook(RiskLimits(max_net_position=10, max_state_age=1e9))
    book.refresh([], [], None, None, now=0.0)
    guard = RiskGuard(book)
    guard.screen([(0, order("sell", 60, 4))])
    guard.sent_one(
        {"order_id": "ord_9", "volume": 4, "executed_volume": 1, "remaining_volume": 3, "state": "Displayed"}
    )
    assert [(number, held.remaining) for number, held in book.resting()] == [(9, Decimal(3))]
    assert book.filled(CONTRACTS[0]) == -1


@pytest.mark.parametrize("name", ["max_order_volume", "max_net_position", "max_open_volume", "price_band"])
def test_a_limit_given_as_a_string_is_refused_as_an_order_refuses_it(name: str) -> None:
    with pytest.raises(ValueError, match=f"RiskLimits.{name} must be a number \\(int, float or Decimal\\), got '30'"):
        RiskLimits(**{name: "30"})


def test_messages_show_no_float_noise() -> None:
    book = RiskBook(RiskLimits(price_band=30, max_order_volume=1, max_state_age=1e9))
    market = [{"contract": CONTRACTS[0].id, "bid": 50, "ask": 60.1}]
    book.refresh([], [], market, None, now=0.0)
    _, breaches = book.check([(0, order("buy", 20 + 6.930000000000007, 0.1 + 0.2))])
    reasons = " ".join(breach.reason for breach in breaches)
    assert "price 26.93 is more than 30 from 60.1" in reasons, reasons
    assert "26.930000000000007" not in reasons and "0.30000000000000004" not in reasons
    assert breaches[0].value == Decimal("26.930000000000007")  # the breach keeps the exact number
