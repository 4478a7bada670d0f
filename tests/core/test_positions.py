"""Positions: per contract and per local delivery day, equal to a brute-force sum of the trades."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, Dict, List

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gameproto import Contract, positions
from tests.support.strategies import trades

MINE = ["alice", "alice-2"]


@given(st.lists(trades(), max_size=40))
def test_positions_equal_a_brute_force_sum(listed: List[Dict[str, Any]]) -> None:
    held = positions(listed, MINE)
    for contract, position in held.contracts.items():
        mine = [t for t in listed if Contract.parse(t["contract"]) == contract]
        bought = sum((Decimal(str(t["volume"])) for t in mine if t["buyer"] in MINE), Decimal(0))
        sold = sum((Decimal(str(t["volume"])) for t in mine if t["seller"] in MINE), Decimal(0))
        paid = sum(
            (Decimal(str(t["volume"])) * Decimal(str(t["price"])) for t in mine if t["buyer"] in MINE), Decimal(0)
        )
        got = sum(
            (Decimal(str(t["volume"])) * Decimal(str(t["price"])) for t in mine if t["seller"] in MINE), Decimal(0)
        )
        assert (position.bought, position.sold, position.net) == (bought, sold, bought - sold)
        assert position.cash == got - paid
        assert position.buy_vwap == (paid / bought if bought else None)
        assert position.trades == sum(1 for t in mine if t["buyer"] in MINE or t["seller"] in MINE)
    assert sum(p.trades for p in held.contracts.values()) == sum(
        1 for t in listed if t["buyer"] in MINE or t["seller"] in MINE
    )
    assert list(held.contracts) == sorted(held.contracts)
    for day, summed in held.days.items():
        assert all(p.contract.delivery_day == day for p in summed.periods)
        assert summed.net == sum((p.net for p in held.contracts.values() if p.contract.delivery_day == day), Decimal(0))
        assert summed.cash == sum((p.cash for p in summed.periods), Decimal(0))


def test_a_day_of_positions() -> None:
    listed = [
        {"contract": "2030-01-14T23:00:00Z/PT15M", "volume": 2, "price": 50, "buyer": "alice", "seller": "bob"},
        {"contract": "2030-01-14T23:00:00Z/PT15M", "volume": 1, "price": 60, "buyer": "bob", "seller": "alice"},
        {"contract": "2030-01-15T10:00:00Z/PT1H", "volume": 3, "price": 40.5, "buyer": "carol", "seller": "alice"},
        {"contract": "2030-01-15T10:00:00Z/PT1H", "volume": 9, "price": 1, "buyer": "carol", "seller": "bob"},
    ]
    held = positions(listed, ["alice"])
    first = held.contracts[Contract.parse("2030-01-14T23:00:00Z/PT15M")]
    assert (first.bought, first.sold, first.net, first.buy_vwap, first.cash) == (2, 1, 1, 50, -40)
    assert first.contract.delivery_day == dt.date(2030, 1, 15) and first.contract.quarter_hour == 1
    day = held.day(dt.date(2030, 1, 15))
    assert [p.contract.id for p in day.periods] == ["2030-01-14T23:00:00Z/PT15M", "2030-01-15T10:00:00Z/PT1H"]
    assert day.net == -2 and day.energy == Decimal("0.25") - 3 and day.cash == Decimal("-40") + Decimal("121.5")
    assert held.net("2030-01-15T10:00:00Z/PT1H") == -3 and held.day(dt.date(2030, 1, 16)).periods == ()


def test_an_unreadable_trade_is_named() -> None:
    with pytest.raises(ValueError, match=r"trades\[0\] \(trd_9\).*contract id"):
        positions([{"trade_id": "trd_9", "contract": "tomorrow", "volume": 1, "price": 1, "buyer": "alice"}], ["alice"])
    with pytest.raises(ValueError, match=r"trades\[0\] \(\?\)\.volume"):
        positions([{"contract": "2030-01-15T10:00:00Z/PT1H", "volume": "x", "price": 1, "seller": "alice"}], ["alice"])
