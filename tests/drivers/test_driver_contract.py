"""The driver contract, in memory: what the core decides, and what every driver owes it.

A driver sends (``Send``), sleeps (``Sleep``), runs a flow under its one token
lock (``RunLocked``) and closes the flow when it ends or is abandoned. Sharing
a token exchange's outcome, its failure included, with the calls that waited
for it is the core's; so are the derived calls and the bulk's stopping rule.
"""

from __future__ import annotations

import datetime as dt
import inspect
from typing import Any, Dict, List

import anyio
import pytest

from gameproto import _calls
from gameproto._boundary import Flow, Request, Response, RunAll, RunLocked, Send, Sleep, TransportFailure
from gameproto._bulk import BulkSending, plan_orders
from gameproto._errors import (
    AuthenticationError,
    GameAPIError,
    NetworkTimeoutError,
    OrderOutcomeUnknownServerError,
    OutcomeUnknownError,
    ServerError,
)
from gameproto.simulator.exchange import Exchange
from gameproto.simulator.faults import Fault
from gameproto_async import GameAPI as AsyncGameAPI
from gameproto_exchange import RunningServer
from gameproto_sync import GameAPI as SyncGameAPI
from tests.support.common import (
    TOKEN,
    Boom,
    Concurrent,
    FakeClock,
    Reply,
    Script,
    drive,
    future_order,
    json_response,
    make_session,
    nested_failure,
    recording,
)
from tests.support.harness import Harness, every_driver

STATUS = json_response(200, {"status": "healthy"})
REFUSED = json_response(401, {"detail": "Invalid token"})
NOW = dt.datetime(2030, 1, 1, 12, 0, tzinfo=dt.timezone.utc)


# -- the token exchange: one for every call that waits, its failure shared ---------------------


@pytest.mark.parametrize("calls", [2, 8])
def test_a_refused_exchange_is_shared_by_every_call_that_waited(calls: int) -> None:
    clock = FakeClock()
    session = make_session(clock)
    script = Script([STATUS] * calls, token_replies=[REFUSED])
    outcomes = Concurrent(script, clock, request_time=0.1).run([session.run(_calls.get_status()) for _ in range(calls)])
    assert script.exchanges == 1 and script.calls == []
    assert all(type(outcome) is AuthenticationError for outcome in outcomes), outcomes
    assert len({str(outcome) for outcome in outcomes}) == 1


def test_a_failed_exchange_is_shared_whatever_failed() -> None:
    # The exchange's own retries run out (three 503s): the waiters take that ServerError, not a second try.
    clock = FakeClock()
    session = make_session(clock)
    busy = json_response(503, {"detail": "busy"})
    script = Script([STATUS] * 4, token_replies=[busy, busy, busy])
    outcomes = Concurrent(script, clock).run([session.run(_calls.get_status()) for _ in range(4)])
    assert script.exchanges == 3  # the first call's attempts, nobody else's
    assert all(type(outcome) is ServerError for outcome in outcomes), outcomes


def test_a_call_after_a_shared_failure_exchanges_again() -> None:
    clock = FakeClock()
    session = make_session(clock)
    script = Script([STATUS] * 4, token_replies=[REFUSED, json_response(200, {"access_token": "second"})])
    outcomes = Concurrent(script, clock).run([session.run(_calls.get_status()) for _ in range(3)])
    assert all(isinstance(outcome, AuthenticationError) for outcome in outcomes)
    assert drive(session.run(_calls.get_status()), script, clock) == {"status": "healthy"}
    assert script.exchanges == 2
    assert [request.header("Authorization") for request in script.calls] == ["Bearer second"]


def test_calls_that_find_no_token_share_one_good_exchange() -> None:
    clock = FakeClock()
    session = make_session(clock)
    script = Script([STATUS] * 8)
    outcomes = Concurrent(script, clock, request_time=0.05).run([session.run(_calls.get_status()) for _ in range(8)])
    assert outcomes == [{"status": "healthy"}] * 8
    assert script.exchanges == 1


def test_a_lock_wait_that_times_out_is_a_deadline_error() -> None:
    # The driver could not have the lock within ``wait``: it resumes the flow with None, nothing sent.
    clock = FakeClock()
    session = make_session(clock, timeout=5.0)
    flow = session.run(_calls.get_status())
    action = next(flow)
    assert isinstance(action, RunLocked)
    action.flow.close()
    clock.advance(action.wait)
    with pytest.raises(NetworkTimeoutError) as caught:
        flow.send(None)
    assert "deadline" in str(caught.value) and caught.value.path == "/status"


def test_a_lock_held_past_a_waiters_deadline_ends_the_waiter_in_a_deadline_error() -> None:
    # The first call's exchange hangs 10 s per attempt; the second call's wait for the lock ends at its deadline.
    clock = FakeClock()
    session = make_session(clock, timeout=5.0, max_retries=0)
    script = Script([STATUS], token_replies=[TransportFailure("read_timeout", "no answer")])
    outcomes = Concurrent(script, clock, request_time=10.0).run([session.run(_calls.get_status()) for _ in range(2)])
    assert all(isinstance(outcome, NetworkTimeoutError) for outcome in outcomes), outcomes
    assert script.exchanges == 1 and script.calls == []


def test_a_late_401_re_exchanges_within_the_calls_deadline() -> None:
    # The 401 comes 4 s into a 5 s call: the new exchange is given the second that is left, not a new 5 s.
    clock = FakeClock()
    session = make_session(clock, timeout=5.0, read_timeout=15.0)
    session.tokens.accept(json_response(200, {"access_token": "old"}), clock())
    flow = session.run(_calls.get_status())
    send = next(flow)
    assert isinstance(send, Send) and send.time_left == 5.0
    clock.advance(4.0)
    locked = flow.send(json_response(401, {"detail": "expired"}))
    assert isinstance(locked, RunLocked) and locked.wait == pytest.approx(1.0)
    exchange = next(locked.flow)
    assert isinstance(exchange, Send) and exchange.request.path == "/auth/token"
    assert exchange.time_left == pytest.approx(1.0) and exchange.read_timeout == pytest.approx(1.0)
    locked.flow.close()
    flow.close()


# -- drivers close the flow -------------------------------------------------------------------------


def test_the_in_memory_driver_closes_an_abandoned_flow() -> None:
    log: List[str] = []

    def broken(request: Request) -> Response:
        raise Boom("the transport failed")

    with pytest.raises(Boom):
        drive(recording(log, "call", [Send(Request("GET", "/status"), 1.0, 1.0, 1.0)]), broken)
    assert log == ["call closed"]
    with pytest.raises(Boom):
        drive(nested_failure(log), broken)
    assert log == ["call closed", "call closed"]


def test_the_blocking_driver_closes_an_abandoned_flow(server: RunningServer[Exchange]) -> None:
    log: List[str] = []
    with SyncGameAPI(TOKEN, server.base_url) as api:
        with pytest.raises(Boom):
            api._drive(nested_failure(log))
        assert log == ["call closed"]
        # The lock was let go: the next flow under it runs.
        assert api._drive(recording(log, "call", [RunLocked(recording(log, "again", []), 5.0)])) == "call"


@pytest.mark.anyio
async def test_the_async_driver_closes_a_flow_abandoned_by_an_exception_or_a_cancellation(
    aserver: RunningServer[Exchange],
) -> None:
    log: List[str] = []
    async with AsyncGameAPI(TOKEN, aserver.base_url) as api:
        with pytest.raises(Boom):
            await api._drive(nested_failure(log))
        assert log == ["call closed"]
        log.clear()
        # Cancelled while the locked flow sleeps: both flows closed, and the lock let go.
        sleeping = recording(log, "locked", [Sleep(60.0)])

        async def cancel_once_asleep(scope: anyio.CancelScope) -> None:
            # Once the locked flow has asked for its sleep (waited on, not assumed after a fixed time).
            with anyio.fail_after(10):
                while inspect.getgeneratorstate(sleeping) != inspect.GEN_SUSPENDED:
                    await anyio.sleep(0.001)
            scope.cancel()

        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as group:
                group.start_soon(cancel_once_asleep, scope)
                await api._drive(recording(log, "call", [RunLocked(sleeping, 120.0)]))
        assert scope.cancelled_caught
        assert log == ["locked closed", "call closed"]
        with anyio.fail_after(10):
            assert await api._drive(recording(log, "call", [RunLocked(recording(log, "again", []), 5.0)])) == "call"


def _run_all(log: List[str], seen: List[Any]) -> Flow[str]:
    """A flow that asks for two flows at once and keeps what came back."""
    seen.append((yield RunAll((recording(log, "a", [Sleep(0.01)]), recording(log, "b", [])), 2)))
    return "done"


def test_the_blocking_and_in_memory_drivers_run_a_run_alls_flows_in_turn(server: RunningServer[Exchange]) -> None:
    """``RunAll``: each flow run as any flow, and the answers in the order given."""
    log: List[str] = []
    seen: List[Any] = []
    with SyncGameAPI(TOKEN, server.base_url) as api:
        assert api._drive(_run_all(log, seen)) == "done"
    assert drive(_run_all(log, seen), lambda request: json_response(200, {})) == "done"
    assert seen == [["a", "b"], ["a", "b"]] and log == []


@pytest.mark.anyio
async def test_the_async_driver_runs_a_run_alls_flows_at_once(aserver: RunningServer[Exchange]) -> None:
    log: List[str] = []
    seen: List[Any] = []
    async with AsyncGameAPI(TOKEN, aserver.base_url) as api:
        with anyio.fail_after(10):
            assert await api._drive(_run_all(log, seen)) == "done"
    assert seen == [["a", "b"]] and log == []


# -- derived calls ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reply",
    [
        json_response(503, {"detail": "down"}),
        json_response(500, {"detail": "bug"}),
        json_response(404, {"detail": "no such path"}),
        json_response(429, {"detail": "slow down"}, Retry_After="600"),
        json_response(401, {"detail": "expired"}),
        Response(200, {}, b"<html>proxy</html>"),
        json_response(200, ["not", "an", "object"]),
        TransportFailure("connect", "refused"),
        TransportFailure("read_timeout", "slow"),
    ],
)
def test_test_connection_is_false_on_any_game_api_error(reply: Reply) -> None:
    clock = FakeClock()
    session = make_session(clock)
    assert drive(session.run(_calls.test_connection()), Script([reply] * 5), clock) is False


def test_test_connection_is_false_when_the_exchange_refuses_the_token() -> None:
    clock = FakeClock()
    session = make_session(clock)
    assert drive(session.run(_calls.test_connection()), Script([], token_replies=[REFUSED]), clock) is False


def test_test_connection_is_true_when_the_exchange_answers() -> None:
    clock = FakeClock()
    session = make_session(clock)
    assert drive(session.run(_calls.test_connection()), Script([STATUS]), clock) is True


def test_find_order_by_id_is_none_on_404_and_raises_other_errors() -> None:
    clock = FakeClock()
    session = make_session(clock)
    script = Script([json_response(404, {"detail": "Not Found"})])
    assert drive(session.run(_calls.find_order_by_id("ord_7")), script, clock) is None
    script = Script([json_response(500, {"detail": "bug"})] * 3)
    with pytest.raises(ServerError):
        drive(session.run(_calls.find_order_by_id(7)), script, clock)
    listing = json_response(200, [{"order_id": 7, "price": 1.0}, {"order_id": 8, "price": 2.0}])
    assert drive(session.run(_calls.find_order_by_id("ord_8")), Script([listing]), clock) == {
        "order_id": 8,
        "price": 2.0,
    }


@pytest.mark.parametrize("impossible", ["some_id", "ord_../1", "", -1, True, None, 1.5])
def test_find_order_by_id_of_an_impossible_id_is_none_without_a_request(impossible: Any) -> None:
    clock = FakeClock()
    session = make_session(clock)
    script = Script([])
    assert drive(session.run(_calls.find_order_by_id(impossible)), script, clock) is None
    assert script.sent == []


# -- a bulk stops after its first failed part ----------------------------------------------------------


def _answer(count: int) -> Dict[str, Any]:
    return {"created": [{"index": i, "result": {"order_id": f"ord_{i}"}} for i in range(count)], "failed": []}


@pytest.mark.parametrize("error", [ServerError("busy", status_code=503), OrderOutcomeUnknownServerError("lost")])
def test_bulk_sending_stops_after_the_first_failed_part(error: GameAPIError) -> None:
    plan = plan_orders({"orders": [future_order(now=NOW) for _ in range(450)]}, now=NOW)
    sending = BulkSending(plan)
    sent = []
    for offset, _ in plan.parts:  # a driver sending one part after another
        if sending.stopped:
            continue
        sent.append(offset)
        sending.record(offset, error if offset == 100 else _answer(100))  # type: ignore[arg-type]
    assert sent == [0, 100]
    with pytest.raises(type(error)) as caught:
        sending.result()
    partial = caught.value.partial_result
    assert partial is not None
    assert sorted(entry["index"] for entry in partial["created"]) == list(range(100))
    assert partial["unsent"] == list(range(200 if isinstance(error, OutcomeUnknownError) else 100, 450))
    assert partial["unknown"] == (list(range(100, 200)) if isinstance(error, OutcomeUnknownError) else [])


@every_driver()
async def test_a_client_sends_no_part_of_a_bulk_after_one_failed(h: Harness) -> None:
    # The second request to arrive is answered 503 (the exchange did not carry it out).
    h.faults.add(Fault("delay", delay=0.0), method="POST", path="/orders/create-bulk")
    h.faults.add(Fault("status", status=503), method="POST", path="/orders/create-bulk")
    api = h.client()
    orders = [future_order("buy", 10.0 + i / 100, 1.0) for i in range(1000)]
    with pytest.raises(OrderOutcomeUnknownServerError) as caught:
        await api.create_order({"orders": orders})
    sent = h.attempts("POST", "/orders/create-bulk")
    if h.blocking:
        assert sent == 2  # one part after another: the third is never sent
    else:
        assert 2 <= sent < 10  # four parts at a time: none is started after the failure is known
    partial = caught.value.partial_result
    assert partial is not None and partial["failed"] == []
    assert len(partial["unknown"]) == 100
    assert len(partial["unsent"]) == (10 - sent) * 100
    created = [entry["index"] for entry in partial["created"]]
    assert sorted(created + partial["unknown"] + partial["unsent"]) == list(range(1000))
    assert len(h.orders()) == len(created)
