"""Trading's flows driven in memory, on a clock that moves only when told.

The late-request window a reservation is held for is the one the journal
settles and adopts by: from the time the order was sent less ``SEND_SKEW``
to the call's deadline plus ``late_request_grace``, even when the call gave
up before its deadline (a dropped connection).
"""

from __future__ import annotations

from typing import Any, List

import pytest

from gameproto import OutcomeUnknownError, Request, RiskLimitError, RiskLimits, TransportFailure
from gameproto.driver import Trading
from tests.support.common import FakeClock, drive, future_order, json_response, make_session

DAY = "2030-01-15"


class Exchange:
    """Lists nothing and no trades; the first order request is lost on its way back, the others are created."""

    def __init__(self) -> None:
        self.posts: List[Any] = []

    def __call__(self, request: Request) -> Any:
        if request.path == "/auth/token":
            return json_response(200, {"access_token": "access-1", "expires_in": 3600})
        if request.method == "GET":
            return json_response(200, [])
        self.posts.append(request)
        if len(self.posts) == 1:
            return TransportFailure("read", "ConnectionResetError")  # it may have been placed
        created = future_order("buy", 100, 1, day=DAY, order_id=f"ord_{len(self.posts)}", trader="alice")
        return json_response(200, {**created, "remaining_volume": 1, "executed_volume": 0, "state": "Displayed"})


@pytest.mark.parametrize("timeout, grace", [(3.0, 2.0), (10.0, 0.0), (1.0, 12.0)])
def test_a_late_request_is_reserved_until_its_calls_deadline_plus_the_grace(timeout: float, grace: float) -> None:
    clock = FakeClock()
    limits = RiskLimits(max_net_position=2, max_state_age=0)
    session = make_session(clock, timeout=timeout, late_request_grace=grace, risk=limits, max_retries=0)
    trading, exchange = Trading(session), Exchange()
    with pytest.raises(OutcomeUnknownError):
        drive(trading.create_order(future_order("buy", 100, 2, day=DAY)), exchange, clock)
    # The call ended at once, its deadline is ``timeout`` later: the request may land until then plus the grace.
    clock.advance(timeout + grace - 0.01)
    with pytest.raises(RiskLimitError):
        drive(trading.create_order(future_order("buy", 100, 1, day=DAY)), exchange, clock)
    assert len(exchange.posts) == 1
    clock.advance(0.02)  # the window has closed and the listing never showed it: the reservation goes
    answer = drive(trading.create_order(future_order("buy", 100, 1, day=DAY)), exchange, clock)
    assert answer["order_id"] == "ord_2" and len(exchange.posts) == 2
