"""The one matcher: an order as it was sent against a listing, exact decimals, one rule, a bounded creation time."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Dict

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gameproto import find_matching_orders
from gameproto._reconcile import matches
from gameproto.risk import SEND_SKEW, request_window

SENT = {
    "side": "buy",
    "price": 50,
    "volume": 2,
    "date": "2030-01-02",
    "start_time": "10:00",
    "end_time": "10:15",
    "duration": "15m",
    "tz_offset_hours": 1,
    "state": "displayed",
}
# 2030-01-01T12:00:00Z
T0 = 1893499200.0


def listed(**fields: Any) -> Dict[str, Any]:
    order = {
        "order_id": 7,
        "direction": "buy",
        "price": 50.0,
        "volume": 2.0,
        "date": "2030-01-02",
        "start_time": "10:00",
        "end_time": "10:15",
        "duration": "15m",
        "tz_offset_hours": 1,
        "state": "Displayed",
        "created_at": "2030-01-01T12:00:03Z",
    }
    order.update(fields)
    return order


@pytest.mark.parametrize("price", [50, 50.0, "50.00", Decimal("50.000")])
def test_the_same_number_written_otherwise_matches(price: Any) -> None:
    assert matches(listed(price=price), SENT)


@pytest.mark.parametrize("price", [50.0000000001, "50.0000000001", 49.99999999999])
def test_a_number_a_hair_away_is_another_order(price: Any) -> None:
    assert not matches(listed(price=price), SENT)
    assert not matches(listed(volume=price), {**SENT, "volume": 50})


@given(st.decimals(min_value=-1000, max_value=1000, places=6, allow_nan=False))
def test_prices_match_exactly_as_decimals(price: Decimal) -> None:
    assert matches(listed(price=str(price)), {**SENT, "price": price}) is True
    assert matches(listed(price=str(price + Decimal("0.000001"))), {**SENT, "price": price}) is False


def test_one_rule_for_the_zone_and_the_visibility() -> None:
    assert not matches(listed(tz_offset_hours=2), SENT)
    assert matches(listed(tz_offset_hours=None), SENT)  # not shown: cannot tell them apart
    assert matches(listed(), {**SENT, "tz_offset_hours": None})  # left to its default
    assert not matches(listed(state="HIDDEN"), SENT)
    assert matches(listed(state="hidden"), {**SENT, "state": "hidden"})
    assert matches(listed(state="Expired"), SENT)  # a word of its life: the same order, later
    assert not matches(listed(direction="sell"), SENT)
    assert not matches(listed(date="2030-01-03"), SENT)


def test_the_creation_time_is_bounded_on_both_sides() -> None:
    window = request_window(T0, T0 + 10)  # sent at 12:00:00, gave up at 12:00:10, grace 5 s
    assert matches(listed(created_at="2030-01-01T12:00:14.900Z"), SENT, window)
    assert not matches(listed(created_at="2030-01-01T12:00:22Z"), SENT, window)  # 12 s after the deadline
    assert not matches(listed(created_at="2030-01-01T11:59:57Z"), SENT, window)  # before it was sent
    assert matches(listed(created_at=f"2030-01-01T11:59:{60 - SEND_SKEW / 2:06.3f}Z"), SENT, window)
    assert matches(listed(created_at=None), SENT, window)  # nothing to bound it by


def test_the_window_is_on_the_exchange_clock() -> None:
    window = request_window(T0 - 30, T0 - 20, offset=30.0)  # our clock is 30 s behind the exchange's
    assert matches(listed(), SENT, window)


def test_find_matching_orders_keeps_the_listing_order() -> None:
    listing = [listed(order_id=1), listed(order_id=2, price=51), listed(order_id=3)]
    assert [order["order_id"] for order in find_matching_orders(listing, SENT)] == [1, 3]
    window = request_window(T0, T0 + 1)
    assert find_matching_orders([listed(created_at="2030-01-01T13:00:00Z")], SENT, window) == []
    with pytest.raises(ValueError, match="side"):
        find_matching_orders(listing, {**SENT, "side": "long"})
