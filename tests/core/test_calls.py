"""How the core writes JSON: a Decimal's number text, found without a float, is what the encoder writes."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import example, given, settings
from hypothesis import strategies as st

from gameproto._calls import encode_json, json_number, json_number_text


@settings(max_examples=2000, deadline=None)
@given(
    st.one_of(
        st.decimals(allow_nan=False, allow_infinity=False, places=2, min_value=-(10**12), max_value=10**12),
        st.decimals(allow_nan=False, allow_infinity=False, places=6, min_value=-10, max_value=10),
        st.decimals(allow_nan=False, allow_infinity=False),
    )
)
@example(Decimal("0.0001"))
@example(Decimal("0.00001"))
@example(Decimal("-0.00010"))
@example(Decimal("-0.0"))
@example(Decimal("45.000"))
@example(Decimal("123456789012345"))
@example(Decimal("12345678901234.5"))
@example(Decimal("0.100000000000000"))
@example(Decimal("1E+2"))
def test_a_number_text_is_what_the_encoder_writes(value: Decimal) -> None:
    text = json_number_text(value)
    if text is not None:
        assert text == encode_json(value).decode()
        assert text == encode_json(json_number(value)).decode()


def test_the_usual_amounts_have_a_number_text() -> None:
    assert [json_number_text(Decimal(text)) for text in ("43.03", "0.4", "45.0", "-0.5", "1040.10", "7")] == [
        "43.03",
        "0.4",
        "45",
        "-0.5",
        "1040.1",
        "7",
    ]
