"""The request budget's rule: a sliding window, pauses, a learnt limit; no clock but the one given."""

from __future__ import annotations

import math
import threading
from typing import Any, List, Optional, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gameproto._budget import AUTO, RequestBudget, budget_exhausted, limit_from_status
from gameproto._errors import RateLimitError

# Steps in 1/64 s: exact in binary floating point, so the test's arithmetic is the budget's.
steps = st.lists(st.integers(min_value=0, max_value=64 * 90), min_size=1, max_size=120)
limits = st.integers(min_value=1, max_value=12)
windows = st.sampled_from([1.0, 2.5, 60.0])
PROPERTY = settings(max_examples=300, derandomize=True, deadline=None)


def _drive(budget: RequestBudget, gaps: List[int]) -> List[Tuple[float, float]]:
    """Reserve at the times ``gaps`` walk through; (time, answer) of each call."""
    now, answers = 1000.0, []
    for gap in gaps:
        now += gap / 64
        answers.append((now, budget.reserve(now)))
    return answers


def _most_in_a_window(granted: List[float], window: float) -> int:
    return max((sum(1 for other in granted if start <= other < start + window) for start in granted), default=0)


@PROPERTY
@given(limits, windows, steps)
def test_no_window_holds_more_than_the_limit(limit: int, window: float, gaps: List[int]) -> None:
    budget = RequestBudget(limit, window=window)
    granted = [now for now, wait in _drive(budget, gaps) if wait == 0]
    assert _most_in_a_window(granted, window) <= limit


@PROPERTY
@given(limits, windows, steps)
def test_a_wait_only_when_the_window_is_full_and_exactly_until_a_slot_frees(
    limit: int, window: float, gaps: List[int]
) -> None:
    budget = RequestBudget(limit, window=window)
    granted: List[float] = []
    for now, wait in _drive(budget, gaps):
        recent = [time for time in granted if time > now - window]
        if wait == 0:
            assert len(recent) < limit
            granted.append(now)
        else:
            assert len(recent) == limit  # never idle while a slot is free
            assert wait == recent[0] + window - now  # and not a moment longer
        assert len(budget._granted) <= limit  # memory bounded by the limit


@PROPERTY
@given(limits, windows, steps)
def test_asking_again_after_the_wait_gets_the_slot(limit: int, window: float, gaps: List[int]) -> None:
    budget = RequestBudget(limit, window=window)
    now = 1000.0
    for gap in gaps:
        now += gap / 64
        wait = budget.reserve(now)
        if wait > 0:
            assert budget.reserve(now + wait) == 0
            now += wait


@PROPERTY
@given(limits, steps, st.integers(min_value=1, max_value=64 * 120), st.integers(min_value=0, max_value=119))
def test_a_pause_holds_every_caller_until_it_ends(limit: int, gaps: List[int], pause: int, at: int) -> None:
    budget = RequestBudget(limit)
    now, paused_until = 1000.0, None
    for index, gap in enumerate(gaps):
        now += gap / 64
        if index == at:
            budget.pause(pause / 64, now)
            paused_until = now + pause / 64
        wait = budget.reserve(now)
        if paused_until is not None and now < paused_until:
            assert wait == paused_until - now


@PROPERTY
@given(st.integers(min_value=2, max_value=12), st.integers(min_value=1, max_value=12), steps, st.integers(0, 119))
def test_a_learnt_limit_holds_from_the_moment_it_is_learnt(first: int, learnt: int, gaps: List[int], at: int) -> None:
    budget = RequestBudget(AUTO)
    budget.learn_limit(first)
    now, granted, learnt_at = 1000.0, [], None
    for index, gap in enumerate(gaps):
        now += gap / 64
        if index == at:
            assert budget.learn_limit(learnt)
            learnt_at = now
        if budget.reserve(now) == 0:
            granted.append(now)
        assert len(budget._granted) <= budget.limit  # type: ignore[operator]
    if learnt_at is not None:
        # Every window whose last request was granted after learning holds at most the new limit.
        for last in (time for time in granted if time >= learnt_at):
            assert sum(1 for time in granted if last - 60 < time <= last) <= learnt


def _strict_server(limit: int) -> Any:
    """A server that keeps a strict sliding 60 s window and says nothing but 429 and Retry-After."""
    accepted: List[float] = []

    def answer(now: float) -> Optional[float]:
        recent = [time for time in accepted if time > now - 60]
        if len(recent) < limit:
            accepted.append(now)
            return None
        return float(math.ceil(recent[0] + 60 - now))  # whole seconds, rounded up, as servers write it

    return answer


@PROPERTY
@given(st.integers(1, 40), st.integers(1, 8), st.integers(1, 200), st.integers(0, 64 * 5))
def test_a_fixed_limit_meets_a_silent_strict_server_without_a_refusal(
    limit: int, in_flight: int, calls: int, gap: int
) -> None:
    budget, server = RequestBudget(limit), _strict_server(limit)
    now, sent = 1000.0, 0
    while sent < calls:
        batch = 0
        while batch < in_flight:
            if budget.reserve(now) > 0:
                break
            batch += 1
        for _ in range(batch):
            assert server(now) is None  # never a 429
            sent += 1
        now += max(budget.reserve(now) if batch == 0 else 0.0, gap / 64)


def test_a_refusal_pauses_and_gives_the_slot_back() -> None:
    budget = RequestBudget(AUTO)
    for moment in range(5):
        assert budget.reserve(float(moment)) == 0
    budget.refused(4.0, 10.0)
    assert budget.limit == 1000 and budget.in_window(4.0) == 4  # a 429 pauses; it does not lower the limit
    assert budget.reserve(13.0) == 1.0  # paused until 14
    fixed = RequestBudget(3)
    fixed.reserve(0.0)
    fixed.refused(0.0, None)
    assert fixed.limit == 3 and fixed.reserve(0.0) == 0
    RequestBudget(None).refused(0.0, 5.0)  # no pacing: nothing to learn


def test_none_turns_pacing_off_and_keeps_no_state() -> None:
    budget = RequestBudget(None)
    assert all(budget.reserve(1000.0) == 0 for _ in range(10_000))
    budget.pause(30, 1000.0)
    assert budget.reserve(1000.0) == 0
    assert not budget._granted and budget.limit is None
    assert not budget.learn_limit(5)


def test_auto_starts_at_the_advertised_limit_and_follows_the_status() -> None:
    budget = RequestBudget()
    assert budget.auto and budget.limit == 1000
    status = {"status": "healthy", "rate_limit": {"requests_per_minute": 600, "requests_remaining": 599}}
    assert budget.learn_limit(limit_from_status(status))
    assert budget.limit == 600
    assert repr(budget) == "RequestBudget(limit=600 (auto), window=60)"


def test_a_fixed_limit_ignores_what_the_exchange_says() -> None:
    budget = RequestBudget(100)
    assert not budget.learn_limit(5) and budget.limit == 100


@pytest.mark.parametrize("odd", [None, 0, -5, 2.5, "600", True, [600]])
def test_an_odd_advertised_limit_is_ignored(odd: object) -> None:
    budget = RequestBudget()
    assert limit_from_status({"rate_limit": {"requests_per_minute": odd}}) is None
    assert not budget.learn_limit(odd)
    assert budget.limit == 1000


@pytest.mark.parametrize("odd", [{}, [], "x", {"rate_limit": 5}, {"rate_limit": {}}])
def test_a_status_without_a_limit_says_none(odd: object) -> None:
    assert limit_from_status(odd) is None


@pytest.mark.parametrize("bad", [0, -1, 1.5, "fast", True, "AUTO"])
def test_a_bad_limit_is_refused_by_name(bad: object) -> None:
    with pytest.raises(ValueError, match="requests_per_minute"):
        RequestBudget(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [0, -60, float("nan"), True])
def test_a_bad_window_is_refused_by_name(bad: object) -> None:
    with pytest.raises(ValueError, match="window"):
        RequestBudget(10, window=bad)  # type: ignore[arg-type]


def test_a_three_request_minute() -> None:
    budget = RequestBudget(3)
    assert [budget.reserve(t) for t in (0.0, 10.0, 20.0)] == [0, 0, 0]
    assert budget.reserve(30.0) == 30.0  # the 0 s request leaves the window at 60 s
    assert budget.reserve(60.0) == 0
    assert budget.reserve(60.0) == 10.0
    assert budget.in_window(60.0) == 3


def test_a_pause_is_never_shortened_and_ignores_nonsense() -> None:
    budget = RequestBudget(10)
    budget.pause(30, 0.0)
    budget.pause(5, 1.0)
    budget.pause(float("nan"), 1.0)
    budget.pause(-3, 1.0)
    assert budget.reserve(10.0) == 20.0
    assert budget.reserve(30.0) == 0


def test_callers_that_read_the_clock_before_queueing_keep_the_window_ordered() -> None:
    budget = RequestBudget(2, window=10.0)
    assert budget.reserve(5.0) == 0
    assert budget.reserve(4.0) == 0  # an earlier clock reading, served later: recorded at 5.0
    assert budget.reserve(14.0) == 1.0


def test_many_threads_share_one_window() -> None:
    budget = RequestBudget(50)
    answers: List[float] = []
    lock = threading.Lock()

    def fire() -> None:
        for _ in range(100):
            wait = budget.reserve(1000.0)
            with lock:
                answers.append(wait)

    threads = [threading.Thread(target=fire) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers.count(0.0) == 50
    assert all(wait == 60.0 for wait in answers if wait)


def test_the_deadline_error_says_nothing_was_sent() -> None:
    error = budget_exhausted(12.5, method="GET", path="/status")
    assert isinstance(error, RateLimitError) and error.retry_after == 12.5
    assert "nothing was sent" in str(error) and "GET /status" in str(error)
