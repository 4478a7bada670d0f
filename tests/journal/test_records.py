"""The journal's values: numbers kept as exact decimal text, an order's contract read once per contract."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from gameproto._journal_records import canonical, contract_and_times, contract_of, delivery_times
from tests.support.common import future_order


@given(
    st.one_of(
        st.integers(-(10**20), 10**20),
        st.floats(-1e20, 1e20, allow_nan=False, allow_infinity=False),  # beyond 28 digits, no decimal text
    )
)
def test_a_number_is_kept_as_the_same_exact_text_on_its_fast_path(value: float) -> None:
    number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    slow = str(number.quantize(Decimal(1))) if number == number.to_integral_value() else format(number.normalize(), "f")
    assert canonical(value) == slow


def test_an_orders_contract_is_the_same_read_once_or_each_time() -> None:
    summer, winter = (
        future_order(day="2030-07-01", tz_offset_hours=2),
        future_order(day="2030-01-15", tz_offset_hours=1),
    )
    for order in (summer, winter, summer, dict(summer, tz_offset_hours=True), summer, dict(summer, date=["x"])):
        assert contract_and_times(order) == (contract_of(order), *delivery_times(order))
    assert contract_and_times(dict(summer, tz_offset_hours=True)) == ("", "", "")  # 1 and True: two keys
    assert contract_and_times(summer)[0] == "2030-07-01T08:00:00Z/PT15M"
