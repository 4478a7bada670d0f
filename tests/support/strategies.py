"""Hypothesis strategies for orders: valid ones across the whole space, and
single-rule mutations that must fail on exactly the field they break."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, Callable, Dict, List, Tuple

from hypothesis import strategies as st

#: The clock every property uses; each test moves around it on purpose.
NOW = dt.datetime(2025, 3, 29, 22, 7, 30, tzinfo=dt.timezone.utc)

UTC = dt.timezone.utc

prices = st.one_of(
    st.floats(min_value=0.01, max_value=1e6, allow_nan=False, allow_infinity=False),
    st.integers(min_value=1, max_value=10**30),
    st.decimals(min_value=Decimal("0.001"), max_value=Decimal("100000"), allow_nan=False, allow_infinity=False),
)
volumes = prices
durations_minutes = st.sampled_from([15, 30, 45, 60, 90, 120, 240, 5, 1])


def duration_text(minutes: int, prefer_hours: bool) -> str:
    if prefer_hours and minutes % 60 == 0:
        return f"{minutes // 60}h"
    return f"{minutes}m"


@st.composite
def valid_orders(draw: Callable[..., Any], now: dt.datetime = NOW) -> Dict[str, Any]:
    """An order whose delivery starts between one minute and ~3 years after ``now``."""
    tz = draw(st.sampled_from([0, 1, 2]))
    minutes = draw(durations_minutes)
    # Start on a minute boundary, strictly after now in UTC.
    ahead = draw(st.integers(min_value=1, max_value=3 * 366 * 1440))
    base = now.replace(second=0, microsecond=0) + dt.timedelta(minutes=ahead)
    local = base.astimezone(dt.timezone(dt.timedelta(hours=tz)))
    start_minute = local.hour * 60 + local.minute
    if start_minute + minutes > 1440:  # keep the window inside one day (end may be 00:00)
        local -= dt.timedelta(minutes=start_minute + minutes - 1440)
        if local.astimezone(UTC) <= now:
            local += dt.timedelta(days=1)
        start_minute = local.hour * 60 + local.minute
    end_minute = (start_minute + minutes) % 1440
    order: Dict[str, Any] = {
        "side": draw(st.sampled_from(["buy", "sell"])),
        "price": draw(prices),
        "volume": draw(volumes),
        "date": local.strftime("%Y-%m-%d"),
        "start_time": f"{start_minute // 60:02d}:{start_minute % 60:02d}",
        "end_time": f"{end_minute // 60:02d}:{end_minute % 60:02d}",
        "duration": duration_text(minutes, draw(st.booleans())),
        "tz_offset_hours": tz,
    }
    state = draw(st.sampled_from([None, "displayed", "hidden", "absent"]))
    if state != "absent":
        order["state"] = state
    if draw(st.booleans()):
        order["options"] = {"trader_suffixe": draw(st.text(max_size=50))}
    return order


# A mutation breaks one rule: (field the error must name, how to break it).
Mutation = Tuple[str, Callable[[Dict[str, Any]], None]]


def _set(field: str, value: Any) -> Callable[[Dict[str, Any]], None]:
    def apply(order: Dict[str, Any]) -> None:
        order[field] = value

    return apply


def _drop(field: str) -> Callable[[Dict[str, Any]], None]:
    def apply(order: Dict[str, Any]) -> None:
        order.pop(field, None)

    return apply


NOT_NUMBERS = [
    True,
    False,
    "100",
    None,
    float("nan"),
    float("inf"),
    -float("inf"),
    Decimal("NaN"),
    Decimal("sNaN"),
    Decimal("Infinity"),
    [1],
    {"v": 1},
    b"1",
]
NOT_POSITIVE = [0, -1, 0.0, -0.5, Decimal("-3"), Decimal("0"), -(10**40)]
BAD_TIMES = [
    "24:00",
    "9:00",
    "09:0",
    "09:60",
    "0900",
    "09:00:00",
    " 09:00",
    "09:00\n",
    "\u0660\u0669:\u0660\u0660",
    "",
    900,
    None,
    "25:00",
    "-1:00",
    "09-00",
]
BAD_DATES = [
    "2025-02-30",
    "2025-13-01",
    "2025-00-10",
    "25-01-01",
    "2025/01/01",
    "2025-1-1",
    "",
    "2025-01-01T00:00",
    20250101,
    None,
    "\u0662\u0660\u0662\u0665-\u0660\u0661-\u0660\u0661",
    "2025-01-01\n",
    "0000-01-01",
]
BAD_DURATIONS = ["015m", "0m", "15", "m", "15M", "1H", "1.5h", "15 m", "-15m", "", 15, None, "15min", "1h30m", "15m\n"]


def mutations(order: Dict[str, Any]) -> List[Mutation]:
    """Every single-rule break of a valid ``order`` we know how to make."""
    found: List[Mutation] = []
    found += [("side", _set("side", bad)) for bad in ["BUY", "Buy", "b", "", None, 1, ["buy"], "buy "]]
    found += [("side", _drop("side"))]
    found += [("price", _set("price", bad)) for bad in NOT_NUMBERS + NOT_POSITIVE]
    found += [("volume", _set("volume", bad)) for bad in NOT_NUMBERS + NOT_POSITIVE]
    found += [("date", _set("date", bad)) for bad in BAD_DATES]
    found += [("start_time", _set("start_time", bad)) for bad in BAD_TIMES]
    found += [("end_time", _set("end_time", bad)) for bad in BAD_TIMES]
    found += [("duration", _set("duration", bad)) for bad in BAD_DURATIONS]
    found += [("tz_offset_hours", _set("tz_offset_hours", bad)) for bad in [3, -1, 1.0, "1", True, False, [1], 24]]
    found += [("state", _set("state", bad)) for bad in ["Displayed", "HIDDEN", "visible", "", 0, True]]
    found += [("options", _set("options", bad)) for bad in ["x", 1, ["trader_suffixe"], True]]
    found += [("options.trader_suffixe", _set("options", {"trader_suffixe": bad})) for bad in ["x" * 51, 7, ["a"]]]
    found += [("volumne", _set("volumne", 1.0)), ("Price", _set("Price", 1.0)), ("orders", _set("orders", []))]
    # Rule 2: one more minute of window than the duration says.
    found += [("duration", _set("duration", "16m" if order["duration"] != "16m" else "17m"))]
    return found


# -- delivery periods, positions and risk limits (issue 23) ----------------------


@st.composite
def dst_days(draw: Callable[..., Any]) -> dt.date:
    """The last Sunday of March or of October of a year 1980-2100: a day of 92 or 100 quarter-hours."""
    year = draw(st.integers(min_value=1980, max_value=2100))
    month = draw(st.sampled_from([3, 10]))
    last = dt.date(year, month, 31)
    return last - dt.timedelta(days=(last.weekday() - 6) % 7)


@st.composite
def contracts(draw: Callable[..., Any]) -> Any:
    """A contract of 15, 30, 60 or 90 minutes starting on a quarter-hour of 2000-2080, clock-change days often."""
    from gameproto import Contract

    if draw(st.booleans()):
        day = draw(dst_days())
        start = dt.datetime.combine(day, dt.time(0), UTC) - dt.timedelta(hours=2)
        start += dt.timedelta(minutes=15 * draw(st.integers(min_value=0, max_value=110)))
    else:
        moment = draw(st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2080, 1, 1)))
        start = moment.replace(minute=moment.minute // 15 * 15, second=0, microsecond=0, tzinfo=UTC)
    return Contract(start, draw(st.sampled_from([15, 30, 60, 90])))


#: Names on the two sides of a trade: the caller's own (alice, alice-2) and others'.
trader_names = st.sampled_from(["alice", "alice-2", "bob", "carol"])


@st.composite
def trades(draw: Callable[..., Any]) -> Dict[str, Any]:
    """A trade as ``GET /trades`` lists it, between any two of ``trader_names``."""
    contract = draw(contracts())
    number = st.one_of(
        st.integers(min_value=1, max_value=1000),
        st.decimals(min_value=Decimal("0.1"), max_value=Decimal("500"), places=1),
        st.floats(min_value=0.1, max_value=500).map(lambda value: round(value, 2)),
    )
    return {
        "trade_id": f"trd_{draw(st.integers(min_value=1, max_value=10**6))}",
        "contract": contract.id,
        "volume": draw(number),
        "price": draw(number),
        "buyer": draw(trader_names),
        "seller": draw(trader_names),
        "fees": draw(st.sampled_from([0, 0.5, None])),
    }
