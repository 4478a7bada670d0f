"""The order rules on the examples GAME-API.md gives, and on what traders get wrong."""

from __future__ import annotations

import datetime as dt
import os
import time
from decimal import Decimal
from typing import Any, Dict, Iterator, List

import pytest

from gameproto import OrderValidationError, validate_order, validate_orders
from gameproto.simulator.contracts import contract_name, delivery_window
from tests.support.common import future_order

NOW = dt.datetime(2024, 12, 14, 9, 30, tzinfo=dt.timezone.utc)


def published_example(**changes: Any) -> Dict[str, Any]:
    """The order of the published API documentation's example, with ``changes``."""
    example: Dict[str, Any] = {
        "side": "buy",
        "price": 100.0,
        "volume": 1.0,
        "day": "2024-12-15",
        "start_time": "14:00",
        "end_time": "14:15",
        "tz_offset_hours": 1,
        "state": "displayed",
        "options": {"trader_suffixe": "my_bot"},
    }
    example.update(changes)
    return future_order(**example)


def problems(order: Any, **options: Any) -> Dict[str, str]:
    with pytest.raises(OrderValidationError) as caught:
        validate_order(order, now=NOW, **options)
    return {problem.field: problem.reason for problem in caught.value.errors}


def test_the_published_example_is_valid_and_copied() -> None:
    order = published_example()
    clean = validate_order(order, now=NOW)
    assert clean == order and clean is not order and clean["options"] is not order["options"]


def test_the_error_text_names_order_field_and_value() -> None:
    orders = [published_example() for _ in range(5)]
    orders[3]["price"] = -10
    orders[1]["volumne"] = orders[1].pop("volume")
    with pytest.raises(OrderValidationError) as caught:
        validate_orders(orders, now=NOW)
    text = str(caught.value)
    assert "orders[3].price: must be > 0, got -10" in text
    assert "orders[1].volumne: unknown field; did you mean 'volume'?" in text
    assert "orders[1].volume: is required" in text
    assert caught.value.indices == [1, 3]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"end_time": "24:00"}, "end_time"),
        ({"start_time": "14:15"}, "end_time"),  # an empty window
        ({"end_time": "14:30"}, "duration"),
        ({"duration": "015m"}, "duration"),
        ({"duration": "0h"}, "duration"),
        ({"date": "2024-02-30"}, "date"),
        ({"date": "2024-12-14", "start_time": "10:00", "end_time": "10:15"}, "start_time"),  # 09:00 UTC: past
        ({"date": "2024-12-13"}, "date"),
        ({"tz_offset_hours": 3}, "tz_offset_hours"),
        ({"tz_offset_hours": 1.0}, "tz_offset_hours"),
        ({"tz_offset_hours": True}, "tz_offset_hours"),
        ({"price": "100"}, "price"),
        ({"price": True}, "price"),
        ({"volume": float("nan")}, "volume"),
        ({"state": "Hidden"}, "state"),
        ({"options": {"trader_suffixe": "x" * 51}}, "options.trader_suffixe"),
        ({"side": "BUY"}, "side"),
    ],
)
def test_each_rule(changes: Dict[str, Any], field: str) -> None:
    assert set(problems(published_example(**changes))) == {field}


def test_a_window_that_has_started_is_refused_even_on_a_future_date_string() -> None:
    # 2024-12-14 10:30 at UTC+2 is 08:30 UTC: an hour before now.
    order = published_example(date="2024-12-14", start_time="10:30", end_time="10:45", tz_offset_hours=2)
    assert set(problems(order)) == {"start_time"}
    assert validate_order(dict(order, tz_offset_hours=0), now=NOW)


def test_the_last_window_of_the_day() -> None:
    clean = validate_order(published_example(start_time="23:45", end_time="00:00"), now=NOW)
    assert clean["end_time"] == "00:00"
    start, minutes = delivery_window(clean)
    assert (start, minutes) == (dt.datetime(2024, 12, 15, 22, 45, tzinfo=dt.timezone.utc), 15)
    assert contract_name(start, minutes) == "2024-12-15T22:45:00Z/PT15M"
    assert contract_name(start, 90) == "2024-12-15T22:45:00Z/PT1H30M"
    assert contract_name(start, 60) == "2024-12-15T22:45:00Z/PT1H"


def test_null_optional_fields_are_absent_and_defaults_fill_in() -> None:
    clean = validate_order(published_example(state=None, options=None, tz_offset_hours=1), now=NOW)
    assert clean["state"] == "displayed" and "options" not in clean


def test_money_stays_exact_and_huge_integers_are_numbers() -> None:
    clean = validate_order(published_example(price=Decimal("101.123456789"), volume=10**30), now=NOW)
    assert clean["price"] == Decimal("101.123456789") and clean["volume"] == 10**30


def test_non_positive_prices_only_when_allowed() -> None:
    assert set(problems(published_example(price=0))) == {"price"}
    assert validate_order(published_example(price=-12.5), now=NOW, allow_non_positive_price=True)["price"] == -12.5


def test_bulks_must_be_non_empty_lists() -> None:
    junks: List[Any] = [[], {}, "orders", None, 3, {"orders": []}]
    for junk in junks:
        with pytest.raises(OrderValidationError) as caught:
            validate_orders(junk, now=NOW)
        assert caught.value.errors[0].field == "orders"


class HostileMapping(dict):  # type: ignore[type-arg]
    def get(self, key: Any, default: Any = None) -> Any:
        raise RuntimeError("boom")


def test_hostile_input_still_only_raises_order_validation_error() -> None:
    assert "order" in problems(HostileMapping(published_example()))
    nested: Any = []
    for _ in range(5000):
        nested = [nested]
    assert "options" in problems(published_example(options={"deep": nested}))


@pytest.fixture
def zurich() -> Iterator[None]:
    if not hasattr(time, "tzset"):
        pytest.skip("time.tzset is POSIX only")
    saved = os.environ.get("TZ")
    os.environ["TZ"] = "Europe/Zurich"
    time.tzset()
    try:
        yield
    finally:
        if saved is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = saved
        time.tzset()


def test_the_default_offset_is_the_local_one_at_the_delivery_start(zurich: None) -> None:
    march = dt.datetime(2025, 3, 20, 12, 0, tzinfo=dt.timezone.utc)
    winter = published_example(date="2025-03-29", tz_offset_hours=None)
    summer = published_example(date="2025-03-31", tz_offset_hours=None)
    assert validate_order(winter, now=march)["tz_offset_hours"] == 1
    assert validate_order(summer, now=march)["tz_offset_hours"] == 2
