"""The retry policy: property tests of its bounds and its rules."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gameproto._boundary import FAILURE_KINDS, NOT_SENT_KINDS, TransportFailure
from gameproto._constants import RETRY_AFTER_MAX
from gameproto._retry import (
    RETRYABLE_STATUSES,
    RetryPolicy,
    backoff_delay,
    parse_http_date,
    parse_retry_after,
    read_retry_after,
)

randoms = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


@given(st.integers(min_value=1, max_value=10_000), randoms)
def test_backoff_waits_stay_within_bounds(retry_number: int, r: float) -> None:
    wait = backoff_delay(retry_number, initial=0.5, maximum=8.0, random=lambda: r)
    full = min(0.5 * 2 ** min(retry_number - 1, 62), 8.0)
    assert full / 2 <= wait <= full <= 8.0


@given(st.integers(min_value=1, max_value=30))
def test_backoff_grows_until_the_cap(retry_number: int) -> None:
    low = backoff_delay(retry_number, random=lambda: 0.0)
    higher = backoff_delay(retry_number + 1, random=lambda: 0.0)
    assert higher >= low


@given(
    st.sampled_from(sorted(RETRYABLE_STATUSES)),
    st.floats(min_value=0, max_value=60, allow_nan=False),
    st.integers(min_value=0, max_value=1),
    randoms,
)
def test_retry_after_wins_over_backoff(status: int, retry_after: float, done: int, r: float) -> None:
    decision = RetryPolicy(max_retries=2).after_status(
        status, creates=False, retries_done=done, retry_after=retry_after, random=lambda: r
    )
    assert decision.retry and decision.wait == retry_after


@given(st.floats(min_value=60.001, max_value=1e9, allow_nan=False), st.booleans())
def test_retry_after_beyond_the_cap_is_not_slept(retry_after: float, creates: bool) -> None:
    decision = RetryPolicy().after_status(
        429, creates=creates, retries_done=0, retry_after=retry_after, random=lambda: 0
    )
    assert not decision.retry


@given(st.sampled_from(sorted(FAILURE_KINDS - NOT_SENT_KINDS)), st.integers(min_value=0, max_value=5))
def test_post_after_send_is_never_retried(kind: str, done: int) -> None:
    decision = RetryPolicy(max_retries=10).after_transport_failure(
        TransportFailure(kind), creates=True, retries_done=done, random=lambda: 0.5
    )
    assert not decision.retry


@given(st.integers(min_value=100, max_value=599), st.integers(min_value=0, max_value=5))
def test_post_is_retried_on_no_status_but_429(status: int, done: int) -> None:
    decision = RetryPolicy(max_retries=10).after_status(
        status, creates=True, retries_done=done, retry_after=None, random=lambda: 0.5
    )
    assert decision.retry == (status == 429)


@given(st.integers(min_value=0, max_value=5), st.integers(min_value=0, max_value=5))
def test_retries_are_bounded(max_retries: int, done: int) -> None:
    decision = RetryPolicy(max_retries=max_retries).after_status(
        503, creates=False, retries_done=done, retry_after=None, random=lambda: 0.5
    )
    assert decision.retry == (done < max_retries)


@given(st.text(max_size=60))
@settings(max_examples=300)
def test_retry_after_parser_never_raises(text: str) -> None:
    wait = parse_retry_after(text, now=1_700_000_000.0)
    assert wait is None or wait >= 0


def test_retry_after_forms() -> None:
    now = 784111777.0 - 10  # 10 s before Sun, 06 Nov 1994 08:49:37 GMT
    assert parse_retry_after("5", now=now) == 5.0
    assert parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now=now) == 10.0
    assert parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", now=now) == 10.0
    assert parse_retry_after("Sun Nov  6 08:49:37 1994", now=now) == 10.0
    assert parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now=now + 100) == 0.0
    assert parse_retry_after("-3", now=now) is None  # no sign in delay-seconds (RFC 9110)
    assert parse_retry_after("soon", now=now) is None
    assert parse_http_date("Sun, 31 Feb 1994 08:49:37 GMT") is None


@pytest.mark.parametrize("value", ["1_0", " 1e1", "+5", "0x10", "1.5", "-3", "\uff15", "1 0", "inf", "nan", "1e1"])
def test_retry_after_takes_only_rfc_9110_forms(value: str) -> None:
    assert parse_retry_after(value, now=0.0) is None


@given(st.text(max_size=40))
@settings(max_examples=500, derandomize=True)
def test_retry_after_is_digits_or_a_date_or_nothing(value: str) -> None:
    seconds = parse_retry_after(value, now=1_700_000_000.0)
    text = value.strip(" \t")
    if seconds is None:
        return
    if text.isascii() and text.isdigit():
        assert seconds == min(float(int(text)), RETRY_AFTER_MAX)
    else:
        assert parse_http_date(text) is not None


@given(st.integers(min_value=0, max_value=10**30))
@settings(derandomize=True)
def test_retry_after_digits_are_seconds(seconds: int) -> None:
    assert parse_retry_after(str(seconds), now=0.0) == min(float(seconds), RETRY_AFTER_MAX)
    assert parse_retry_after(f" {seconds}\t", now=0.0) == min(float(seconds), RETRY_AFTER_MAX)


@pytest.mark.parametrize(
    ("value", "said"),
    [("999999999", 999999999.0), ("301", 301.0), ("9" * 40, 1e12), ("Fri, 31 Dec 9999 23:59:59 GMT", None)],
)
def test_a_retry_after_longer_than_five_minutes_is_taken_as_five_minutes(value: str, said: object) -> None:
    assert RETRY_AFTER_MAX == 300.0
    seconds, told = read_retry_after(value, now=1_700_000_000.0)
    assert seconds == RETRY_AFTER_MAX
    assert told is not None and told > RETRY_AFTER_MAX
    if said is not None:
        assert told == said
    assert read_retry_after("300", now=0.0) == (300.0, None)
