"""The one life of an order: its tables hang together, the exchange's words in any case, the late-request window."""

from __future__ import annotations

import datetime as dt
from typing import Any, Dict

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gameproto import ClientSettings
from gameproto._order_life import (
    CANCELLED,
    DELETE_REQUESTED,
    ENDING_WORDS,
    EXCHANGE_WORDS,
    EXPIRED,
    FILLED,
    GONE,
    INTENT,
    NOT_PLACED,
    PARTLY_FILLED,
    REJECTED,
    RESTING,
    SENT,
    UNKNOWN,
    check_move,
)
from gameproto.risk import (
    ENDED_STATES,
    LATE_REQUEST_GRACE,
    LIVE_STATES,
    MOVES,
    ORDER_STATES,
    SEND_SKEW,
    can_move,
    is_over,
    is_resting,
    order_state,
    request_window,
)

# -- the tables -------------------------------------------------------------------------------


def test_every_state_is_live_or_ended_never_both() -> None:
    assert set(ORDER_STATES) == set(MOVES)
    assert LIVE_STATES | ENDED_STATES == set(ORDER_STATES)
    assert LIVE_STATES & ENDED_STATES == frozenset()


def test_an_ended_state_goes_nowhere_but_gone_may_learn_why() -> None:
    for state in ENDED_STATES - {GONE}:
        assert MOVES[state] == frozenset()
    assert MOVES[GONE] <= ENDED_STATES


def test_every_state_is_reached_from_an_intent() -> None:
    reached, todo = {INTENT}, [INTENT]
    while todo:
        for after in MOVES[todo.pop()]:
            if after not in reached:
                reached.add(after)
                todo.append(after)
    assert reached == set(ORDER_STATES)


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (INTENT, SENT),
        (SENT, UNKNOWN),
        (UNKNOWN, RESTING),
        (UNKNOWN, NOT_PLACED),
        (RESTING, PARTLY_FILLED),
        (PARTLY_FILLED, FILLED),
        (RESTING, DELETE_REQUESTED),
        (DELETE_REQUESTED, CANCELLED),
        (DELETE_REQUESTED, PARTLY_FILLED),
        (RESTING, EXPIRED),
        (SENT, REJECTED),
        (GONE, FILLED),
    ],
)
def test_the_moves_of_an_order_life(before: str, after: str) -> None:
    assert can_move(before, after)
    assert check_move(before, after) == after


@pytest.mark.parametrize(
    ("before", "after"),
    [(FILLED, RESTING), (CANCELLED, PARTLY_FILLED), (NOT_PLACED, RESTING), (RESTING, NOT_PLACED), (RESTING, SENT)],
)
def test_moves_that_cannot_happen_are_refused_naming_both(before: str, after: str) -> None:
    assert not can_move(before, after)
    with pytest.raises(ValueError, match=f"from '{before}' to '{after}'"):
        check_move(before, after)


def test_a_word_that_is_no_state_is_refused() -> None:
    assert not can_move("created", RESTING)
    with pytest.raises(ValueError, match="not a state of an order: 'created'"):
        check_move("created", RESTING)


# -- the exchange's words, in any case ---------------------------------------------------------------


def listed(**fields: Any) -> Dict[str, Any]:
    order = {"order_id": 1, "direction": "buy", "price": 50, "volume": 2, "remaining_volume": 2}
    order.update(fields)
    return order


def cases(word: str) -> st.SearchStrategy[str]:
    return st.tuples(*[st.sampled_from([ch.lower(), ch.upper()]) for ch in word]).map("".join)


@given(st.sampled_from(sorted(ENDING_WORDS)).flatmap(cases), st.sampled_from(["state", "status"]))
def test_an_ending_word_in_any_case_ends_the_order(word: str, field: str) -> None:
    order = listed(**{field: word})
    assert is_over(order) and not is_resting(order)
    assert order_state(order) == EXCHANGE_WORDS[word.lower()]


@given(st.sampled_from(["Displayed", "Hidden", "active", "brand-new-word", ""]).flatmap(cases))
def test_a_live_or_unknown_word_with_something_left_rests(word: str) -> None:
    order = listed(state=word)
    assert is_resting(order)
    assert order_state(order) == RESTING


@given(
    st.sampled_from(["Displayed", "DISPLAYED", "hidden", "Active", "FILLED", "filled", "weird"]),
    st.sampled_from([0, "0", 0.0, "0.000"]),
)
def test_a_fully_filled_order_is_never_resting_whatever_the_word(word: str, remaining: Any) -> None:
    order = listed(state=word, remaining_volume=remaining, executed_volume=2)
    assert order_state(order) == FILLED
    assert not is_resting(order)


def test_a_create_answer_without_remaining_is_judged_by_its_executed_volume() -> None:
    answer = {"order_id": "ord_7", "volume": 2, "executed_volume": 2, "state": "Displayed"}
    assert order_state(answer) == FILLED
    assert order_state({**answer, "executed_volume": "0.5"}) == PARTLY_FILLED
    assert order_state({**answer, "executed_volume": 0}) == RESTING


def test_a_cancelled_order_is_cancelled_whatever_it_executed() -> None:
    assert order_state(listed(status="Cancelled", executed_volume=1, remaining_volume=1)) == CANCELLED
    assert order_state(listed(state="EXPIRED", remaining_volume=0)) == EXPIRED


def test_an_unreadable_remaining_volume_is_live() -> None:
    # A word we cannot read is passed on as live: the limits count it, the kill switch tries it.
    assert is_resting(listed(remaining_volume="lots"))
    assert is_resting(listed(remaining_volume=None))


# -- the late-request window -----------------------------------------------------------------------


def test_the_grace_and_the_skew_are_small_documented_constants() -> None:
    assert LATE_REQUEST_GRACE == 5.0
    assert 0 < SEND_SKEW <= 2


@given(
    st.floats(1e9, 2e9),
    st.floats(0, 60),
    st.floats(-3600, 3600),
    st.floats(0, 30),
)
def test_the_window_runs_from_sent_less_skew_to_deadline_plus_grace_on_the_exchange_clock(
    sent: float, timeout: float, offset: float, grace: float
) -> None:
    window = request_window(sent, sent + timeout, offset, grace=grace)
    assert window.opens == pytest.approx(sent - SEND_SKEW + offset)
    assert window.closes == pytest.approx(sent + timeout + grace + offset)
    assert window.holds(sent + offset) and window.holds(sent + timeout + grace + offset - 1e-3)
    assert not window.holds(sent - SEND_SKEW + offset - 1)
    assert not window.holds(sent + timeout + grace + offset + 1)
    assert window.is_open(sent + timeout + offset) and not window.is_open(window.closes + 0.001)


def test_the_window_without_a_measured_offset_is_on_our_clock() -> None:
    window = request_window(1000.0, 1010.0)
    assert (window.opens, window.closes) == (1000.0 - SEND_SKEW, 1015.0)
    stamp = dt.datetime.fromtimestamp(1014.0, dt.timezone.utc)
    assert window.holds_time(stamp)
    assert not window.holds_time(stamp + dt.timedelta(seconds=2))


def test_a_deadline_before_the_send_is_refused() -> None:
    with pytest.raises(ValueError, match="deadline"):
        request_window(1000.0, 999.0)


def test_the_grace_is_a_client_setting() -> None:
    assert ClientSettings.from_arguments("t", trust_env=False).late_request_grace == LATE_REQUEST_GRACE
    assert ClientSettings.from_arguments("t", trust_env=False, late_request_grace=12).late_request_grace == 12.0
    for bad in (-1, "5", True, float("inf")):
        with pytest.raises(ValueError, match="late_request_grace"):
            ClientSettings.from_arguments("t", trust_env=False, late_request_grace=bad)
