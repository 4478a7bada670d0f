"""Bulk planning and merging, and the helpers' views over market answers."""

from __future__ import annotations

import datetime as dt
from typing import Any, Dict, List

import pytest

from gameproto._bulk import finish_bulk, plan_orders
from gameproto._errors import OrderValidationError, OutcomeUnknownError, ServerError
from gameproto._market import best_offers, latest_ltp
from gameproto._reconcile import find_matching_orders, find_order
from gameproto._types import BulkResult, LTPEntry, MarketRow, Order
from tests.support.common import future_order

NOW = dt.datetime(2030, 1, 1, 12, 0, tzinfo=dt.timezone.utc)


def order(**fields: Any) -> Dict[str, Any]:
    """A valid order at 10.0 for the day after ``NOW``."""
    return future_order(**{"price": 10.0, "now": NOW, **fields})


def answer(count: int) -> BulkResult:
    return {
        "requested": count,
        "created": [{"index": i, "result": {"order_id": f"ord_{i}"}} for i in range(count)],
        "failed": [],
    }


def test_a_bulk_is_planned_in_parts_of_100() -> None:
    plan = plan_orders({"orders": [order() for _ in range(250)]}, now=NOW)
    assert [offset for offset, _ in plan.parts] == [0, 100, 200]
    assert plan.single is None and plan.requested == 250


def test_a_bulk_with_unknown_keys_is_refused() -> None:
    with pytest.raises(OrderValidationError):
        plan_orders({"orders": [order()], "dry_run": True}, now=NOW)


def test_parts_merge_with_indices_over_the_whole_list() -> None:
    plan = plan_orders({"orders": [order() for _ in range(150)]}, now=NOW)
    result = finish_bulk(plan, {0: answer(100), 100: answer(50)})
    assert sorted(e["index"] for e in result["created"]) == list(range(150))
    assert result["requested"] == 150


def test_a_failed_part_carries_what_the_others_did() -> None:
    plan = plan_orders({"orders": [order() for _ in range(250)]}, now=NOW)
    lost = OutcomeUnknownError("lost")
    with pytest.raises(OutcomeUnknownError) as caught:
        finish_bulk(plan, {0: answer(100), 100: lost, 200: None})
    partial = caught.value.partial_result
    assert [e["index"] for e in partial["created"]] == list(range(100))
    assert partial["unknown"] == list(range(100, 200))
    assert partial["unsent"] == list(range(200, 250))


def test_a_refused_part_is_unsent() -> None:
    plan = plan_orders({"orders": [order() for _ in range(150)]}, now=NOW)
    with pytest.raises(ServerError) as caught:
        finish_bulk(plan, {0: ServerError("down"), 100: answer(50)})
    assert caught.value.partial_result["unsent"] == list(range(100))
    assert [e["index"] for e in caught.value.partial_result["created"]] == list(range(100, 150))


def test_best_offers_group_and_sort() -> None:
    rows: List[MarketRow] = [
        {"contract": "A", "direction": "buy", "price": 10},
        {"contract": "A", "direction": "buy", "price": 12},
        {"contract": "A", "direction": "sell", "price": 15},
        {"contract": "A", "direction": "sell", "price": 14},
        {"contract": "B", "bid": 1.0, "ask": 2.0},
    ]
    best = best_offers(rows, top_n=1)
    assert [r["price"] for r in best["A"]["buy"]] == [12]
    assert [r["price"] for r in best["A"]["sell"]] == [14]
    assert best["B"]["buy"][0]["price"] == 1.0 and best["B"]["sell"][0]["price"] == 2.0


def test_latest_ltp_per_contract_with_zones() -> None:
    entries: List[LTPEntry] = [
        {"contract": "A", "price": 1, "timestamp": "2030-01-01T10:00:00Z", "market_zone": "Z1"},
        {"contract": "A", "price": 2, "timestamp": "2030-01-01T11:00:00Z", "market_zone": "Z2"},
    ]
    assert latest_ltp(entries) == {
        "A": {
            "price": 2,
            "volume": None,
            "timestamp": "2030-01-01T11:00:00Z",
            "market_zones": ["Z1", "Z2"],
            "latest_zone": "Z2",
        }
    }


def test_find_order_and_matching_orders() -> None:
    listing: List[Order] = [
        {
            "order_id": 7,
            "direction": "buy",
            "price": 10.0,
            "volume": 1.0,
            "date": "2030-01-02",
            "start_time": "10:00",
            "end_time": "10:15",
            "duration": "15m",
            "tz_offset_hours": 0,
            "state": "Displayed",
        },
        {"order_id": 8, "direction": "sell", "price": 10.0, "volume": 1.0},
    ]
    assert find_order(listing, 7) is listing[0]
    assert find_order(listing, 9) is None
    assert find_matching_orders(listing, order()) == [listing[0]]
    assert find_matching_orders(listing, order(price=11.0)) == []
