"""Which error ends a call, chosen by the pure functions of ``gameproto._errors`` alone."""

from __future__ import annotations

from typing import Type

import pytest

from gameproto import (
    AuthenticationError,
    FailureKind,
    GameAPIError,
    NetworkError,
    NetworkTimeoutError,
    OrderOutcomeUnknownNoAnswerError,
    OrderOutcomeUnknownProtocolError,
    OrderOutcomeUnknownServerError,
    ProtocolError,
    RateLimitError,
    Request,
    Response,
    ServerError,
    TransportFailure,
)
from gameproto._errors import (
    error_for_answer,
    error_for_deadline,
    error_for_encoding,
    error_for_failure,
    error_for_token_exchange,
)

ORDER = Request("POST", "/orders")
READ = Request("GET", "/orders")
SECRET = "access-token-1234567890"


@pytest.mark.parametrize(
    ("kind", "creates", "expected"),
    [
        ("connect", True, NetworkError),  # nothing sent: an order may be sent again
        ("connect_timeout", True, NetworkTimeoutError),
        ("read", True, OrderOutcomeUnknownNoAnswerError),
        ("read_timeout", False, NetworkTimeoutError),
        ("closed", False, NetworkError),
        ("deadline", True, OrderOutcomeUnknownNoAnswerError),
        ("too_large", True, OrderOutcomeUnknownProtocolError),
        ("too_large", False, ProtocolError),
    ],
)
def test_a_failure_becomes_one_error(kind: FailureKind, creates: bool, expected: Type[GameAPIError]) -> None:
    failure = TransportFailure(kind, f"broken near {SECRET}")
    error = error_for_failure(ORDER if creates else READ, failure, creates=creates, secrets=(SECRET,), attempts=2)
    assert type(error) is expected
    assert SECRET not in str(error)
    assert (error.method, error.path) == (("POST", "/orders") if creates else ("GET", "/orders"))


@pytest.mark.parametrize(
    ("status", "creates", "expected"),
    [
        (503, True, OrderOutcomeUnknownServerError),
        (503, False, ServerError),
        (302, True, OrderOutcomeUnknownProtocolError),
        (302, False, ProtocolError),
        (429, True, RateLimitError),
        (401, False, AuthenticationError),
    ],
)
def test_an_answer_becomes_one_error(status: int, creates: bool, expected: Type[GameAPIError]) -> None:
    answer = Response(status, {"Location": f"https://elsewhere/?t={SECRET}"}, f'{{"detail": "{SECRET}"}}'.encode())
    error = error_for_answer(ORDER, answer, creates=creates, secrets=(SECRET,), wall_now=0.0)
    assert type(error) is expected and error.status_code == status
    assert SECRET not in str(error) and SECRET not in repr(vars(error))


def test_a_compressed_answer_is_unreadable_and_an_identity_one_is_not() -> None:
    assert error_for_encoding(READ, Response(200, {"content-encoding": "identity"}), creates=False, secrets=()) is None
    error = error_for_encoding(ORDER, Response(201, {"Content-Encoding": "gzip"}), creates=True, secrets=())
    assert isinstance(error, OrderOutcomeUnknownProtocolError)


def test_the_deadline_counts_the_attempts_sent() -> None:
    assert "after 1 attempt (" in str(error_for_deadline(READ, 5.0, 1))
    assert "after 0 attempts" in str(error_for_deadline(READ, 5.0, 0))


def test_a_refused_token_exchange_is_an_authentication_error_but_a_busy_one_is_not() -> None:
    refused = error_for_token_exchange(ServerError("x", status_code=400), "/auth/token")
    assert isinstance(refused, AuthenticationError) and refused.message.startswith("token exchange refused")
    busy = RateLimitError("slow down", status_code=429)
    assert error_for_token_exchange(busy, "/auth/token") is busy
