"""The call flow, driven in memory: token, retries, 401, POST rules, deadline."""

from __future__ import annotations

import logging
from typing import List, Optional, TypeVar

import pytest

from gameproto import _calls
from gameproto._boundary import Response, Send, TransportFailure
from gameproto._budget import RequestBudget
from gameproto._calls import Call
from gameproto._errors import (
    AuthenticationError,
    NetworkError,
    OrderOutcomeUnknownProtocolError,
    OrderOutcomeUnknownServerError,
    OutcomeUnknownError,
    ProtocolError,
    RateLimitError,
    ServerError,
)
from gameproto._flow import Attempt, Session
from tests.support.common import FakeClock, Script, drive, future_order, json_response, make_session

T = TypeVar("T")

STATUS = json_response(200, {"status": "healthy"})
ORDER = future_order(price=10, volume=1, day="2030-01-01", state="displayed")


def run(session: Session, call: Call[T], script: Script, clock: FakeClock, sleeps: Optional[List[float]] = None) -> T:
    return drive(session.run(call), script, clock, sleeps)


def test_one_exchange_serves_many_calls_and_the_token_is_sent() -> None:
    clock = FakeClock()
    session = make_session(clock)
    script = Script([STATUS] * 30)
    for _ in range(30):
        assert run(session, _calls.get_status(), script, clock) == {"status": "healthy"}
        clock.advance(60)
    assert script.exchanges == 1
    assert all(r.header("Authorization") == "Bearer access-secret-1" for r in script.calls)


def test_token_is_refreshed_sixty_seconds_before_expiry() -> None:
    clock = FakeClock()
    session = make_session(clock)
    script = Script([STATUS] * 3)
    run(session, _calls.get_status(), script, clock)
    clock.advance(3600 - 61)
    run(session, _calls.get_status(), script, clock)
    assert script.exchanges == 1
    clock.advance(1)
    run(session, _calls.get_status(), script, clock)
    assert script.exchanges == 2


def test_a_short_lived_token_is_refreshed_halfway_not_on_every_call() -> None:
    clock = FakeClock()
    session = make_session(clock)
    short = json_response(200, {"access_token": "a", "expires_in": 30})
    script = Script([STATUS] * 3, token_replies=[short, short])
    run(session, _calls.get_status(), script, clock)
    run(session, _calls.get_status(), script, clock)
    assert script.exchanges == 1
    clock.advance(15)
    run(session, _calls.get_status(), script, clock)
    assert script.exchanges == 2


def test_expires_in_defaults_to_an_hour() -> None:
    clock = FakeClock()
    session = make_session(clock)
    script = Script([STATUS] * 2, token_replies=[json_response(200, {"access_token": "x"})])
    run(session, _calls.get_status(), script, clock)
    clock.advance(3600 - 61)
    run(session, _calls.get_status(), script, clock)
    assert script.exchanges == 1


def test_a_401_leads_to_one_new_exchange_and_one_repeat() -> None:
    clock = FakeClock()
    session = make_session(clock)
    script = Script([json_response(401, {"detail": "Token expired"}), STATUS])
    assert run(session, _calls.get_status(), script, clock) == {"status": "healthy"}
    assert script.exchanges == 2
    assert [r.header("Authorization") for r in script.calls] == ["Bearer access-secret-1", "Bearer access-secret-2"]


def test_a_second_401_is_an_authentication_error() -> None:
    clock = FakeClock()
    session = make_session(clock)
    script = Script([json_response(401, {"detail": "no"})] * 2)
    with pytest.raises(AuthenticationError) as caught:
        run(session, _calls.get_status(), script, clock)
    assert caught.value.status_code == 401
    assert script.exchanges == 2 and len(script.calls) == 2


def test_a_401_on_an_order_is_repeated_once_too() -> None:
    clock = FakeClock()
    session = make_session(clock)
    created = json_response(200, {"order_id": "ord_1"})
    script = Script([json_response(401, {"detail": "expired"}), created])
    assert run(session, _calls.create_order(ORDER), script, clock) == {"order_id": "ord_1"}
    assert len(script.calls) == 2


@pytest.mark.parametrize("status", [401, 403, 400])
def test_refused_token_exchange_is_an_authentication_error(status: int) -> None:
    clock = FakeClock()
    session = make_session(clock)
    script = Script([], token_replies=[json_response(status, {"detail": "Invalid token"})])
    with pytest.raises(AuthenticationError) as caught:
        run(session, _calls.get_status(), script, clock)
    assert "personal-secret" not in str(caught.value)
    assert caught.value.path == "/auth/token"


def test_token_exchange_answer_without_token_is_a_protocol_error() -> None:
    clock = FakeClock()
    session = make_session(clock)
    script = Script([], token_replies=[json_response(200, {"nope": 1})])
    with pytest.raises(ProtocolError):
        run(session, _calls.get_status(), script, clock)


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408])
def test_get_is_retried_on_server_errors_then_succeeds(status: int) -> None:
    clock = FakeClock()
    session = make_session(clock)
    sleeps: List[float] = []
    script = Script([json_response(status, {"detail": "busy"}), json_response(status, {}), STATUS])
    assert run(session, _calls.get_status(), script, clock, sleeps) == {"status": "healthy"}
    assert len(script.calls) == 3
    assert sleeps == [0.375, 0.75]  # equal jitter at random()=0.5: 0.5 s then 1 s, three quarters each


def test_get_gives_up_after_max_retries_with_server_error() -> None:
    clock = FakeClock()
    session = make_session(clock)
    script = Script([json_response(503, {"detail": "down"})] * 3)
    with pytest.raises(ServerError) as caught:
        run(session, _calls.get_status(), script, clock)
    assert caught.value.status_code == 503 and caught.value.method == "GET" and caught.value.path == "/status"
    assert len(script.calls) == 3


@pytest.mark.parametrize("kind", ["connect", "read", "read_timeout", "closed", "tls"])
def test_get_is_retried_on_transport_failures(kind: str) -> None:
    clock = FakeClock()
    session = make_session(clock)
    script = Script([TransportFailure(kind, "boom"), STATUS])
    assert run(session, _calls.get_status(), script, clock) == {"status": "healthy"}


def test_get_transport_failure_after_retries_is_a_network_error() -> None:
    clock = FakeClock()
    session = make_session(clock)
    script = Script([TransportFailure("read", "reset")] * 3)
    with pytest.raises(NetworkError) as caught:
        run(session, _calls.get_status(), script, clock)
    assert not isinstance(caught.value, OutcomeUnknownError)
    assert len(script.calls) == 3


def test_retry_after_seconds_and_http_date_are_honoured() -> None:
    clock = FakeClock()
    session = make_session(clock)
    sleeps: List[float] = []
    when = "Tue, 14 Nov 2023 22:13:27 GMT"  # 7 s after the fake wall clock's start
    script = Script([json_response(429, {}, Retry_After="3"), json_response(503, {}, Retry_After=when), STATUS])
    assert run(session, _calls.get_status(), script, clock, sleeps) == {"status": "healthy"}
    assert sleeps[0] == 3.0
    assert sleeps[1] == pytest.approx(4.0)


def test_retry_after_beyond_the_cap_raises_at_once() -> None:
    clock = FakeClock()
    session = make_session(clock)
    script = Script([json_response(429, {"detail": "slow down"}, Retry_After="120")])
    with pytest.raises(RateLimitError) as caught:
        run(session, _calls.get_status(), script, clock)
    assert caught.value.retry_after == 120
    assert len(script.calls) == 1


def test_rate_limit_error_after_retries_carries_the_wait() -> None:
    clock = FakeClock()
    session = make_session(clock)
    script = Script([json_response(429, {}, Retry_After="1")] * 3)
    with pytest.raises(RateLimitError) as caught:
        run(session, _calls.get_status(), script, clock)
    assert caught.value.retry_after == 1.0


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_post_is_not_retried_on_5xx_and_its_outcome_is_unknown(status: int) -> None:
    clock = FakeClock()
    session = make_session(clock)
    script = Script([json_response(status, {"detail": "oops"})])
    with pytest.raises(OrderOutcomeUnknownServerError) as caught:
        run(session, _calls.create_order(ORDER), script, clock)
    assert caught.value.status_code == status and not isinstance(caught.value, ServerError)
    assert len(script.calls) == 1


def test_an_unreadable_success_answer_to_an_order_is_an_unknown_outcome() -> None:
    clock = FakeClock()
    session = make_session(clock)
    script = Script([Response(200, {}, b"<html>proxy</html>")])
    with pytest.raises(OrderOutcomeUnknownProtocolError) as caught:
        run(session, _calls.create_order(ORDER), script, clock)
    assert isinstance(caught.value, OutcomeUnknownError) and caught.value.status_code == 200
    assert "proxy" in caught.value.excerpt


def test_a_refused_order_is_not_an_unknown_outcome() -> None:
    clock = FakeClock()
    session = make_session(clock)
    script = Script([json_response(422, {"detail": [{"loc": ["body", "price"], "msg": "bad"}]})])
    with pytest.raises(Exception) as caught:
        run(session, _calls.create_order(ORDER), script, clock)
    assert not isinstance(caught.value, OutcomeUnknownError)


def test_post_is_retried_on_429() -> None:
    clock = FakeClock()
    session = make_session(clock)
    script = Script([json_response(429, {}, Retry_After="1"), json_response(200, {"order_id": "ord_7"})])
    assert run(session, _calls.create_order(ORDER), script, clock) == {"order_id": "ord_7"}
    assert len(script.calls) == 2


@pytest.mark.parametrize("kind", ["read", "read_timeout", "closed", "write", "deadline", "protocol"])
def test_post_whose_outcome_is_unknown_is_never_repeated(kind: str) -> None:
    clock = FakeClock()
    session = make_session(clock)
    script = Script([TransportFailure(kind, "lost")])
    with pytest.raises(OutcomeUnknownError) as caught:
        run(session, _calls.create_order(ORDER), script, clock)
    assert len(script.calls) == 1
    assert caught.value.method == "POST" and caught.value.path == "/orders"


@pytest.mark.parametrize("kind", ["connect", "connect_timeout", "tls", "pool_timeout"])
def test_post_that_was_never_sent_is_retried(kind: str) -> None:
    clock = FakeClock()
    session = make_session(clock)
    script = Script([TransportFailure(kind, "refused"), json_response(200, {"order_id": "ord_1"})])
    assert run(session, _calls.create_order(ORDER), script, clock) == {"order_id": "ord_1"}


def test_overall_deadline_bounds_the_retries() -> None:
    clock = FakeClock()
    session = make_session(clock, timeout=2.0, max_retries=10)
    script = Script([TransportFailure("read", "reset")] * 20)
    with pytest.raises(NetworkError):
        drive(session.run(_calls.get_status()), script, clock, request_time=0.4)
    assert clock.now - 1000.0 <= 2.0 + 0.4 + 1e-9


def test_send_carries_the_time_left() -> None:
    clock = FakeClock()
    session = make_session(clock, timeout=10.0, read_timeout=15.0, connect_timeout=3.0)
    session.tokens.accept(json_response(200, {"access_token": "t"}), clock())
    flow = session.run(_calls.get_status())
    send = next(flow)
    assert isinstance(send, Send)
    assert send.time_left == 10.0 and send.read_timeout == 10.0 and send.connect_timeout == 3.0


def test_on_attempt_sees_every_attempt() -> None:
    clock = FakeClock()
    seen: List[Attempt] = []
    session = make_session(clock, on_attempt=seen.append)
    script = Script([json_response(503, {}), STATUS])
    run(session, _calls.get_status(), script, clock)
    calls = [a for a in seen if a.path == "/status"]
    assert [(a.attempt, a.status) for a in calls] == [(1, 503), (2, 200)]
    assert calls[0].retry_in is not None and calls[1].retry_in is None


def test_a_failing_hook_never_breaks_a_call() -> None:
    clock = FakeClock()

    def broken(_: Attempt) -> None:
        raise RuntimeError("metrics down")

    session = make_session(clock, on_attempt=broken)
    assert run(session, _calls.get_status(), Script([STATUS]), clock) == {"status": "healthy"}


def test_tokens_never_reach_error_text() -> None:
    clock = FakeClock()
    session = make_session(clock)
    echo = Response(500, {}, b"internal error for Bearer access-secret-1 from personal-secret")
    script = Script([echo] * 3)
    with pytest.raises(ServerError) as caught:
        run(session, _calls.get_status(), script, clock)
    text = str(caught.value) + repr(caught.value)
    assert "access-secret-1" not in text and "personal-secret" not in text
    assert "personal-secret" not in repr(session) and "access-secret" not in repr(session.tokens)


def test_answers_that_are_not_json_are_protocol_errors() -> None:
    clock = FakeClock()
    session = make_session(clock)
    script = Script([Response(200, {}, b"<html>gateway</html>")])
    with pytest.raises(ProtocolError) as caught:
        run(session, _calls.get_orders(), script, clock)
    assert caught.value.status_code == 200 and "gateway" in caught.value.excerpt


def test_answers_of_the_wrong_shape_are_protocol_errors() -> None:
    clock = FakeClock()
    session = make_session(clock)
    script = Script([json_response(200, {"orders": []})])
    with pytest.raises(ProtocolError):
        run(session, _calls.get_orders(), script, clock)


def test_calls_take_budget_slots_and_the_token_exchange_waits_out_a_pause() -> None:
    clock = FakeClock()
    session = make_session(clock, budget=RequestBudget(2))
    script = Script([STATUS, STATUS])
    run(session, _calls.get_status(), script, clock)
    run(session, _calls.get_status(), script, clock)
    assert script.exchanges == 1  # the exchange took no slot: both calls went
    with pytest.raises(RateLimitError, match="nothing was sent"):
        run(session, _calls.get_status(), script, clock)  # the third waits past the 30 s deadline
    # A 429's pause holds the token exchange too.
    paused = make_session(clock, budget=RequestBudget(5))
    paused.budget.pause(4.0, clock())
    sleeps: List[float] = []
    run(paused, _calls.get_status(), Script([STATUS]), clock, sleeps)
    assert sleeps[:1] == [4.0]


# -- a shared budget's answers are not trusted; an answer's pause is capped ----------------


class AnsweringStore:
    """A shared budget (a ``BudgetStore``) that answers every ``reserve`` with ``answer``, or raises it."""

    def __init__(self, answer: object) -> None:
        self.answer = answer
        self.time_left: List[Optional[float]] = []
        self.paused: List[float] = []

    def reserve(self, time_left: Optional[float] = None) -> float:
        self.time_left.append(time_left)
        if isinstance(self.answer, BaseException):
            raise self.answer
        return self.answer  # type: ignore[return-value]

    def learn_limit(self, n: int, time_left: Optional[float] = None) -> None:
        pass

    def pause(self, seconds: float, time_left: Optional[float] = None) -> None:
        self.paused.append(seconds)

    def close(self) -> None:
        pass


@pytest.mark.parametrize(
    "answer",
    [-9.2e12, -1.0, float("nan"), float("-inf"), float("inf"), 1e30, "0", None, True, AttributeError("'bytes'")],
)
def test_a_shared_budget_answer_that_is_not_a_wait_is_never_a_grant(
    answer: object, caplog: pytest.LogCaptureFixture
) -> None:
    # With three a minute, ten calls send three requests: the client paces alone, with one warning.
    clock = FakeClock()
    store = AnsweringStore(answer)
    session = make_session(clock, budget=RequestBudget(3), shared_budget=store)
    script = Script([STATUS] * 10)
    caplog.set_level(logging.WARNING, logger="gameproto")
    answered = refused = 0
    for _ in range(10):
        try:
            run(session, _calls.get_status(), script, clock)
            answered += 1
        except RateLimitError as error:
            assert "nothing was sent" in str(error)
            refused += 1
    assert (answered, refused, len(script.calls)) == (3, 7, 3)
    assert len(store.time_left) == 10
    warnings = [record.getMessage() for record in caplog.records if "shared request budget" in record.getMessage()]
    assert len(warnings) == 1, warnings


def test_a_shared_budget_is_asked_with_the_time_left_of_the_call() -> None:
    clock = FakeClock()
    store = AnsweringStore(0.0)
    session = make_session(clock, timeout=7.0, budget=RequestBudget(3), shared_budget=store)
    run(session, _calls.get_status(), Script([STATUS]), clock)
    assert store.time_left == [7.0]


def test_an_absurd_retry_after_pauses_five_minutes_everywhere_and_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    store = AnsweringStore(0.0)
    budget = RequestBudget("auto")
    session = make_session(clock, budget=budget, shared_budget=store)
    caplog.set_level(logging.WARNING, logger="gameproto")
    refusal = json_response(429, {"detail": "go away"}, Retry_After="999999999")
    for _ in range(2):
        with pytest.raises(RateLimitError) as caught:
            run(session, _calls.get_status(), Script([refusal]), clock)
        assert caught.value.retry_after == 300.0
    assert store.paused == [300.0, 300.0]
    assert budget.paused_for(clock()) == 300.0
    told = [record.getMessage() for record in caplog.records if "Retry-After" in record.getMessage()]
    assert len(told) == 1 and "1e+09" in told[0] and "300" in told[0], told
