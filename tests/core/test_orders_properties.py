"""Properties of the order rules (GAME-API.md), checked by Hypothesis."""

from __future__ import annotations

import copy
import datetime as dt
from decimal import Decimal
from typing import Any, Dict, List, Optional

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gameproto import OrderValidationError, validate_order, validate_orders
from gameproto._bulk import plan_orders
from tests.support.common import future_order
from tests.support.strategies import NOW, mutations, valid_orders

settings.register_profile("orders", max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
settings.load_profile("orders")


def fields_named(error: OrderValidationError) -> set:  # type: ignore[type-arg]
    return {problem.field for problem in error.errors}


@given(valid_orders())
def test_a_valid_order_passes_and_comes_back_unchanged_but_for_defaults(order: Dict[str, Any]) -> None:
    clean = validate_order(order, now=NOW)
    expected = {name: value for name, value in order.items() if value is not None}
    expected.setdefault("state", "displayed")
    assert clean == expected
    assert all(type(clean[name]) is type(expected[name]) for name in expected if name != "options")


@given(valid_orders(), st.data())
def test_every_single_rule_mutation_fails_naming_the_mutated_field(order: Dict[str, Any], data: st.DataObject) -> None:
    field, mutate = data.draw(st.sampled_from(mutations(order)))
    broken = copy.deepcopy(order)
    mutate(broken)
    with pytest.raises(OrderValidationError) as caught:
        validate_order(broken, now=NOW)
    assert fields_named(caught.value) == {field}
    assert all(problem.index is None and problem.reason for problem in caught.value.errors)


@given(valid_orders(), st.data())
def test_the_callers_dict_is_never_modified(order: Dict[str, Any], data: st.DataObject) -> None:
    order.pop("state", None)
    order.pop("tz_offset_hours", None) if data.draw(st.booleans()) else None
    if data.draw(st.booleans()):
        _, mutate = data.draw(st.sampled_from(mutations(order)))
        mutate(order)
    before = copy.deepcopy(order)
    try:
        clean = validate_order(order, now=NOW)
    except OrderValidationError:
        pass
    else:
        if "options" in clean:
            clean["options"]["trader_suffixe"] = "changed"
    assert order == before


json_like = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.decimals()
    | st.text(max_size=12)
    | st.binary(max_size=4)
    | st.sampled_from(["buy", "sell", "15m", "24:00", "00:00", "2025-03-30", "displayed"]),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "side",
                    "price",
                    "volume",
                    "date",
                    "start_time",
                    "end_time",
                    "duration",
                    "tz_offset_hours",
                    "state",
                    "options",
                    "trader_suffixe",
                    "x",
                ]
            )
            | st.text(max_size=5),
            children,
            max_size=11,
        )
    ),
    max_leaves=25,
)


@given(json_like)
def test_anything_at_all_raises_only_order_validation_error(value: Any) -> None:
    for check in (validate_order, validate_orders):
        try:
            result = check(value, now=NOW)
        except OrderValidationError as error:
            assert error.errors and all(problem.field for problem in error.errors)
            str(error)
        else:
            assert isinstance(result, (dict, list))


@given(valid_orders(), json_like)
def test_a_valid_order_with_one_field_of_junk_raises_only_order_validation_error(
    order: Dict[str, Any], junk: Any
) -> None:
    for field in list(order):
        broken = dict(order, **{field: junk})
        try:
            validate_order(broken, now=NOW)
        except OrderValidationError:
            pass


@given(
    offset_minutes=st.integers(min_value=-3 * 60 - 30, max_value=3 * 60 + 30),
    tz=st.sampled_from([0, 1, 2]),
    second=st.integers(min_value=0, max_value=59),
)
def test_accepted_exactly_when_the_delivery_start_in_utc_is_after_now(
    offset_minutes: int, tz: int, second: int
) -> None:
    now = NOW.replace(second=second, microsecond=123456 if second % 2 else 0)
    start_utc = now.replace(second=0, microsecond=0) + dt.timedelta(minutes=offset_minutes)
    local = start_utc.astimezone(dt.timezone(dt.timedelta(hours=tz)))
    start = local.hour * 60 + local.minute
    end_minute: Optional[int]
    if start == 0:
        end_minute = 15
    elif start >= 1440 - 15:
        end_minute = 0 if start == 1440 - 15 else None
    else:
        end_minute = start + 15
    if end_minute is None:
        return  # a quarter hour from this start would cross midnight
    order = future_order(
        "sell",
        50,
        2,
        day=local.strftime("%Y-%m-%d"),
        start_time=local.strftime("%H:%M"),
        end_time=f"{end_minute // 60:02d}:{end_minute % 60:02d}",
        tz_offset_hours=tz,
    )
    if start_utc > now:
        assert validate_order(order, now=now)["tz_offset_hours"] == tz
    else:
        with pytest.raises(OrderValidationError) as caught:
            validate_order(order, now=now)
        now_local_date = now.astimezone(dt.timezone(dt.timedelta(hours=tz))).date()
        expected = "date" if local.date() < now_local_date else "start_time"
        assert fields_named(caught.value) == {expected}


@given(st.dates(min_value=dt.date(2025, 3, 31), max_value=dt.date(2030, 1, 1)), st.sampled_from([0, 1, 2]))
def test_the_last_quarter_hour_of_a_day_ends_at_midnight(day: dt.date, tz: int) -> None:
    order = future_order("buy", 1, 1, day=day, start_time="23:45", end_time="00:00", tz_offset_hours=tz)
    assert validate_order(order, now=NOW)["end_time"] == "00:00"
    for start, duration in (("23:00", "15m"), ("22:30", "1h"), ("00:00", "15m"), ("23:50", "15m")):
        with pytest.raises(OrderValidationError) as caught:
            validate_order(dict(order, start_time=start, duration=duration), now=NOW)
        assert fields_named(caught.value) <= {"duration", "end_time"}
    assert validate_order(dict(order, start_time="23:00", duration="1h"), now=NOW)["duration"] == "1h"
    assert validate_order(dict(order, start_time="22:30", duration="90m"), now=NOW)["duration"] == "90m"


@given(st.lists(valid_orders(), min_size=1, max_size=30), st.data())
def test_a_bulk_names_every_bad_index_and_builds_no_request(orders: List[Dict[str, Any]], data: st.DataObject) -> None:
    bad = sorted(data.draw(st.sets(st.integers(min_value=0, max_value=len(orders) - 1), min_size=1)))
    for index in bad:
        _field, mutate = data.draw(st.sampled_from(mutations(orders[index])))
        mutate(orders[index])
    with pytest.raises(OrderValidationError) as caught:
        validate_orders(orders, now=NOW)
    assert sorted({problem.index for problem in caught.value.errors if problem.index is not None}) == bad
    with pytest.raises(OrderValidationError):
        plan_orders({"orders": orders}, now=NOW)


@given(st.lists(valid_orders(), min_size=1, max_size=250))
def test_a_valid_bulk_comes_back_whole_and_in_order(orders: List[Dict[str, Any]]) -> None:
    clean = validate_orders(orders, now=NOW)
    assert [order["price"] for order in clean] == [order["price"] for order in orders]
    plan = plan_orders({"orders": orders}, now=NOW)
    assert [offset for offset, _ in plan.parts] == list(range(0, len(orders), 100))


@given(valid_orders())
def test_the_default_offset_is_clamped_to_what_the_platform_knows(order: Dict[str, Any]) -> None:
    del order["tz_offset_hours"]
    try:
        clean = validate_order(order, now=NOW)
    except OrderValidationError as error:
        # Without the offset the start may fall before now; only rule 3 can then object.
        assert fields_named(error) <= {"date", "start_time"}
    else:
        assert clean["tz_offset_hours"] in (0, 1, 2)


def test_non_positive_prices_are_an_option() -> None:
    order = future_order("sell", -5, 1, day="2026-01-01", tz_offset_hours=1)
    with pytest.raises(OrderValidationError):
        validate_order(order, now=NOW)
    assert validate_order(order, now=NOW, allow_non_positive_price=True)["price"] == -5
    assert validate_order(dict(order, price=Decimal("0")), now=NOW, allow_non_positive_price=True)["price"] == 0
    with pytest.raises(OrderValidationError):
        validate_order(dict(order, volume=0), now=NOW, allow_non_positive_price=True)


@given(valid_orders(), st.data())
def test_the_shortcut_for_plain_orders_accepts_only_what_the_full_check_accepts_and_as_it_does(
    order: Dict[str, Any], data: st.DataObject
) -> None:
    from gameproto import _orders

    if data.draw(st.booleans()):
        _, mutate = data.draw(st.sampled_from(mutations(order)))
        mutate(order)
    if data.draw(st.booleans()):
        order.pop("tz_offset_hours", None)
    now_us = _orders._now_microseconds(NOW)
    full, problems, _ = _orders._check(order, now_us, False)  # also fills the lookup tables the shortcut reads
    quick = _orders._plainly_valid(order, now_us)
    if quick is not None:
        assert not problems
        assert quick == full
        assert [type(value) for value in quick.values()] == [type(value) for value in full.values()]
        assert list(quick) == list(full)
