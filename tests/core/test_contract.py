"""Delivery periods: ``Contract`` and the Europe/Zurich rule, held to zoneinfo on every quarter-hour of 2024-2035."""

from __future__ import annotations

import datetime as dt
import sys
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gameproto.risk import Contract, delivery_day_of, local_day_start, quarter_hours_in_day, zurich_offset_hours
from tests.support.strategies import contracts, dst_days

UTC = dt.timezone.utc

needs_zoneinfo = pytest.mark.skipif(sys.version_info < (3, 9), reason="zoneinfo is Python 3.9+ (the rule is pure)")


def zurich() -> Any:
    import zoneinfo

    return zoneinfo.ZoneInfo("Europe/Zurich")


@needs_zoneinfo
def test_every_quarter_hour_of_2024_to_2035_agrees_with_zoneinfo() -> None:
    zone = zurich()
    quarter = dt.timedelta(minutes=15)
    day = dt.date(2024, 1, 1)
    checked = 0
    while day.year <= 2035:
        midnight = dt.datetime.combine(day, dt.time(0), zone).astimezone(UTC)
        next_midnight = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), zone).astimezone(UTC)
        assert local_day_start(day) == midnight, day
        periods = Contract.day(day)
        assert len(periods) == quarter_hours_in_day(day) == (next_midnight - midnight) // quarter, day
        for number, contract in enumerate(periods, 1):
            # zoneinfo's local time of each quarter-hour: its offset, its day, its number in the day.
            assert contract.start == midnight + (number - 1) * quarter
            local = contract.start.astimezone(zone)
            assert zurich_offset_hours(contract.start) * 3600 == local.utcoffset().total_seconds(), contract  # type: ignore[union-attr]
            assert delivery_day_of(contract.start) == local.date(), contract
            checked += 1
        day += dt.timedelta(days=1)
    assert checked == 4383 * 96  # twelve years, three of them leap; each spring's four hours come back in autumn
    spot = [Contract.day(dt.date(2030, 10, 27))[n] for n in (0, 8, 11, 12, 99)]
    assert [c.quarter_hour for c in spot] == [1, 9, 12, 13, 100]


def test_the_clock_change_days_have_92_and_100_quarter_hours() -> None:
    assert quarter_hours_in_day(dt.date(2030, 3, 31)) == 92
    assert quarter_hours_in_day(dt.date(2030, 10, 27)) == 100
    assert quarter_hours_in_day(dt.date(2030, 3, 30)) == 96
    assert [c.period for c in Contract.day(dt.date(2030, 10, 27), 60)] == list(range(1, 26))
    # 02:00-03:00 local does not exist on the spring day: the third hour starts at 03:00 CEST.
    third = Contract.day(dt.date(2030, 3, 31), 60)[2]
    assert third.order_fields()["start_time"] == "03:00" and third.tz_offset_hours == 2


@given(dst_days())
def test_a_clock_change_day_is_its_quarter_hours_back_to_back(day: dt.date) -> None:
    periods = Contract.day(day)
    assert len(periods) in (92, 100)
    assert periods[0].start == local_day_start(day)
    assert periods[-1].end == local_day_start(day + dt.timedelta(days=1))
    for before, after in zip(periods, periods[1:]):
        assert before.end == after.start and before < after
    assert {p.delivery_day for p in periods} == {day}
    offsets = [p.tz_offset_hours for p in periods]
    assert sorted(set(offsets)) == [1, 2] and offsets.count(offsets[0]) in (8, 12)


@given(contracts())
def test_an_id_and_the_order_fields_give_the_same_contract(contract: Contract) -> None:
    assert Contract.parse(contract.id) == contract
    assert hash(Contract.parse(contract.id)) == hash(contract)
    assert Contract.from_order(contract.order_fields()) == contract
    assert contract.delivery_day == delivery_day_of(contract.start)
    assert 1 <= contract.quarter_hour <= quarter_hours_in_day(contract.delivery_day)


@needs_zoneinfo
@given(st.datetimes(min_value=dt.datetime(1996, 1, 1), max_value=dt.datetime(2090, 1, 1), timezones=st.just(UTC)))
def test_the_offset_agrees_with_zoneinfo_at_any_moment(moment: dt.datetime) -> None:
    offset = moment.astimezone(zurich()).utcoffset()
    assert offset is not None
    assert zurich_offset_hours(moment) * 3600 == offset.total_seconds()


def test_contracts_sort_and_key_dicts() -> None:
    a = Contract.parse("2030-01-15T14:00:00Z/PT15M")
    b = Contract.parse("2030-01-15T14:00:00Z/PT1H")
    c = Contract.parse("2030-01-15T14:15:00Z/PT15M")
    assert sorted([c, b, a]) == [a, b, c]
    assert {a: 1}[Contract(dt.datetime(2030, 1, 15, 15, tzinfo=dt.timezone(dt.timedelta(hours=1))), 15)] == 1
    assert a.end == c.start and str(a) == a.id
    assert Contract.parse("2030-01-15T14:00:00Z/PT1H30M").duration == "90m"
    assert b.duration == "1h" and b.period == 16


def test_an_order_s_offset_is_checked_against_the_zone() -> None:
    summer = {"date": "2030-07-01", "start_time": "10:00", "duration": "15m"}
    assert Contract.from_order({**summer, "tz_offset_hours": 2}).start == dt.datetime(2030, 7, 1, 8, tzinfo=UTC)
    assert Contract.from_order({**summer, "tz_offset_hours": 0}).start == dt.datetime(2030, 7, 1, 10, tzinfo=UTC)
    with pytest.raises(ValueError, match=r"tz_offset_hours 1 is not the Europe/Zurich offset.*UTC\+2"):
        Contract.from_order({**summer, "tz_offset_hours": 1})
    assert Contract.from_order({**summer, "tz_offset_hours": 1}, check_offset=False).start.hour == 9
    listed = {"contract": "2030-07-01T08:00:00Z/PT15M", "order_id": 3}
    assert Contract.from_order(listed) == Contract.from_order({**summer, "tz_offset_hours": 2})


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2030-01-15T14:00:00Z",
        "2030-01-15T14:00:00Z/PT",
        "2030-13-15T14:00:00Z/PT15M",
        "2030-01-15 14:00/PT15M",
        "2030-01-15T14:00:30Z/PT15M",
        "2030-01-15T14:00:00Z/PT0M",
        15,
    ],
)
def test_a_bad_contract_id_is_named(text: Any) -> None:
    with pytest.raises(ValueError, match="contract id"):
        Contract.parse(text)


def test_bad_order_fields_are_named() -> None:
    with pytest.raises(ValueError, match="'start_time'"):
        Contract.from_order({"date": "2030-01-01", "duration": "15m"})
    with pytest.raises(ValueError, match="duration"):
        Contract.from_order({"date": "2030-01-01", "start_time": "10:00", "duration": "quarter"})
    with pytest.raises(ValueError, match="tz_offset_hours must be 0, 1 or 2"):
        Contract.from_order({"date": "2030-01-01", "start_time": "10:00", "duration": "15m", "tz_offset_hours": 5})
    with pytest.raises(ValueError, match="timezone-aware"):
        Contract(dt.datetime(2030, 1, 1), 15)
