"""The exchange-clock estimator: simulated exchanges with a known offset and random delays."""

from __future__ import annotations

import datetime as dt
import math
from typing import List, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gameproto._boundary import Response
from gameproto._clock import PLAUSIBLE_OFFSET, ClockEstimator, offset_interval, parse_exchange_timestamp

PROPERTY = settings(max_examples=300, derandomize=True, deadline=None)
START = 1_780_000_000.0  # a local wall time in 2026


def _http_date(moment: float) -> str:
    # Whole seconds, truncated, as servers write it.
    return dt.datetime.fromtimestamp(math.floor(moment), dt.timezone.utc).strftime("%a, %d %b %Y %H:%M:%S GMT")


def _iso(moment: float) -> str:
    stamp = dt.datetime.fromtimestamp(math.floor(moment * 1000) / 1000, dt.timezone.utc)
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


offsets = st.floats(min_value=-4000, max_value=4000, allow_nan=False)
delays = st.floats(min_value=0.0, max_value=0.5, allow_nan=False)
gaps = st.floats(min_value=0.0, max_value=30.0, allow_nan=False)
# One exchange: (delay out, delay back, pause before the next request).
trips = st.lists(st.tuples(delays, delays, gaps), min_size=1, max_size=12)


def _run(estimator: ClockEstimator, truth: float, calls: List[Tuple[float, float, float]], status: bool) -> None:
    local = START
    for out, back, pause in calls:
        sent, served = local, local + out
        received = served + back
        exchange_now = served + truth
        estimator.observe(
            sent, received, date=_http_date(exchange_now), timestamp=_iso(exchange_now) if status else None
        )
        local = received + pause


@PROPERTY
@given(offsets, trips, st.booleans())
def test_the_truth_is_always_within_the_interval_and_within_a_second(
    truth: float, calls: List[Tuple[float, float, float]], status: bool
) -> None:
    estimator = ClockEstimator()
    _run(estimator, truth, calls, status)
    low, high = estimator.interval  # type: ignore[misc]
    # Rounding of the epoch floats is far below a microsecond at this magnitude.
    assert low - 1e-6 <= truth <= high + 1e-6
    assert abs(estimator.offset - truth) <= (high - low) / 2 + 1e-6  # type: ignore[operator]
    assert abs(estimator.offset - truth) <= 1.0  # type: ignore[operator]


@PROPERTY
@given(offsets, st.lists(st.tuples(delays, delays, gaps), min_size=3, max_size=8), st.floats(-1e5, 1e5), st.data())
def test_one_bad_answer_is_outvoted(
    truth: float, calls: List[Tuple[float, float, float]], lie: float, data: st.DataObject
) -> None:
    estimator = ClockEstimator()
    bad_at = data.draw(st.integers(min_value=0, max_value=len(calls) - 2))  # not the newest
    local = START
    for index, (out, back, pause) in enumerate(calls):
        received = local + out + back
        shown = local + out + truth + (lie if index == bad_at and abs(lie) > 3 else 0)
        estimator.observe(local, received, date=_http_date(shown))
        local = received + pause
    assert abs(estimator.offset - truth) <= 1.0  # type: ignore[operator]


def test_unknown_until_an_answer_says() -> None:
    estimator = ClockEstimator()
    assert estimator.offset is None and estimator.interval is None and estimator.uncertainty is None
    assert estimator.exchange_time(START) == START
    assert not estimator.observe(START, START + 0.1)
    assert not estimator.observe(START, START + 0.1, date="yesterday", timestamp="2026-01-01T00:00:00")
    assert estimator.offset is None


def test_one_date_on_loopback_is_within_a_second() -> None:
    estimator = ClockEstimator()
    # The exchange is 300 s ahead; it read its clock 300.4 s after our START.
    assert estimator.observe(START, START + 0.002, date=_http_date(START + 300.4))
    assert estimator.interval == pytest.approx((300.0 - 0.002, 301.0))
    assert abs(estimator.offset - 300.0) < 1  # type: ignore[operator]
    assert estimator.exchange_time(START + 10) == START + 10 + estimator.offset  # type: ignore[operator]


def test_a_status_timestamp_narrows_a_date() -> None:
    estimator = ClockEstimator()
    estimator.observe(START, START + 0.004, date=_http_date(START - 299.5), timestamp=_iso(START - 299.5))
    low, high = estimator.interval  # type: ignore[misc]
    assert high - low == pytest.approx(0.005, abs=1e-6)
    assert estimator.offset == pytest.approx(-299.5, abs=0.01)


def test_a_clock_step_is_followed_once_old_answers_leave() -> None:
    estimator = ClockEstimator(keep=3)
    for second in range(3):
        estimator.observe(START + second, START + second + 0.01, date=_http_date(START + second + 10))
    for second in range(3, 6):
        estimator.observe(START + second, START + second + 0.01, date=_http_date(START + second - 50))
    assert estimator.offset == pytest.approx(-50, abs=1)


def test_answers_that_make_no_sense_are_ignored() -> None:
    estimator = ClockEstimator()
    assert not estimator.observe(START + 1, START, date=_http_date(START))  # received before sent
    assert not estimator.observe(float("nan"), START, date=_http_date(START))
    assert estimator.offset is None


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2026-11-27T10:00:00Z", (1795773600.0, 1.0)),
        ("2026-11-27T10:00:00.250Z", (1795773600.25, 0.001)),
        ("2026-11-27T11:00:00+01:00", (1795773600.0, 1.0)),
        ("2026-11-27T05:30:00.5-0430", (1795773600.5, 0.1)),
        ("2026-11-27 10:00:00+00", (1795773600.0, 1.0)),
    ],
)
def test_iso_timestamps_with_a_zone(text: str, expected: Tuple[float, float]) -> None:
    stamp, resolution = parse_exchange_timestamp(text)  # type: ignore[misc]
    assert stamp == pytest.approx(expected[0]) and resolution == pytest.approx(expected[1])


@pytest.mark.parametrize("text", ["2026-11-27T10:00:00", "2026-13-01T00:00:00Z", "now", "", "2026-11-27"])
def test_timestamps_without_a_zone_or_a_time_say_nothing(text: str) -> None:
    assert parse_exchange_timestamp(text) is None


def test_the_interval_of_one_answer() -> None:
    assert offset_interval(10.0, 12.0, 100.0, 1.0) == (88.0, 91.0)
    assert offset_interval(10.0, 9.0, 100.0, 1.0) is None


def test_a_response_is_read_for_its_date() -> None:
    estimator = ClockEstimator()
    answer = Response(200, {"date": _http_date(START + 60)}, b"{}")
    assert estimator.observe_response(START, START + 0.01, answer)
    assert abs(estimator.offset - 60) < 1  # type: ignore[operator]
    assert not ClockEstimator().observe_response(START, START + 0.01, Response(200, {}, b"{}"))


def test_keep_must_be_positive() -> None:
    with pytest.raises(ValueError, match="keep"):
        ClockEstimator(keep=0)


@PROPERTY
@given(offsets, trips, st.floats(-3e10, 2.5e11, allow_nan=False), st.integers(min_value=0, max_value=11))
def test_no_answer_moves_the_estimate_beyond_the_plausible_bound(
    truth: float, calls: List[Tuple[float, float, float]], lie: float, at: int
) -> None:
    # ``lie``: any stamp of a four-digit year, up to 9999.
    estimator = ClockEstimator()
    local = START
    for index, (out, back, pause) in enumerate(calls):
        received = local + out + back
        shown = local + out + (lie if index == at % len(calls) else truth)
        estimator.observe(local, received, date=_http_date(shown))
        local = received + pause
        if estimator.offset is not None:
            assert abs(estimator.offset) <= PLAUSIBLE_OFFSET + 1.0
    if abs(lie) > PLAUSIBLE_OFFSET + 1.0:
        assert estimator.set_aside == 1
        if len(calls) > 1:
            assert abs(estimator.offset - truth) <= 1.0  # type: ignore[operator]


@PROPERTY
@given(offsets, st.floats(-PLAUSIBLE_OFFSET, PLAUSIBLE_OFFSET), st.integers(min_value=1, max_value=6))
def test_one_disagreeing_answer_does_not_move_an_estimate(truth: float, lie: float, honest: int) -> None:
    estimator = ClockEstimator()
    for second in range(honest):
        estimator.observe(START + second, START + second + 0.01, date=_http_date(START + second + truth))
    estimator.observe(START + 10, START + 10.01, date=_http_date(START + 10 + truth + lie))
    assert abs(estimator.offset - truth) <= 1.0 + (abs(lie) if abs(lie) <= 2 else 0)  # type: ignore[operator]
    assert estimator.samples >= honest


def test_the_estimate_says_how_sure_it_is() -> None:
    estimator = ClockEstimator()
    assert (estimator.samples, estimator.disagreeing, estimator.set_aside) == (0, 0, 0)
    estimator.observe(START, START + 0.01, date=_http_date(START + 5))
    estimator.observe(START + 2, START + 2.01, date=_http_date(START + 2 + 5))
    estimator.observe(START + 3, START + 3.01, date=_http_date(START + 3 - 600))
    assert not estimator.observe(START + 4, START + 4.01, date="Fri, 31 Dec 9999 23:59:59 GMT")
    assert (estimator.samples, estimator.disagreeing, estimator.set_aside) == (2, 1, 1)
    assert abs(estimator.offset - 5) <= 1 and estimator.uncertainty is not None  # type: ignore[operator]
    assert "set_aside=1" in repr(estimator)


@pytest.mark.parametrize(
    "text", ["2026-11-27T10:00:00+99:59", "2026-11-27T10:00:00-24:00", "2026-11-27T10:00:00+05:60"]
)
def test_a_zone_no_place_has_says_nothing(text: str) -> None:
    assert parse_exchange_timestamp(text) is None
