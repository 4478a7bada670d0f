"""Test helpers: the one order factory, and the core's flows driven in memory on a fake clock."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, TypeVar, Union

from gameproto._boundary import (
    Action,
    Blocking,
    Flow,
    Request,
    Response,
    RunAll,
    RunLocked,
    Send,
    Sleep,
    TransportFailure,
)
from gameproto._flow import Session
from gameproto._settings import ClientSettings

__all__ = [
    "TOKEN",
    "OTHER_TOKEN",
    "future_order",
    "order_payload",
    "FakeClock",
    "json_response",
    "TOKEN_OK",
    "Script",
    "Reply",
    "drive",
    "make_session",
    "Concurrent",
    "recording",
    "nested_failure",
    "Boom",
]

T = TypeVar("T")

#: The personal tokens the test exchange knows: alice's and bob's.
TOKEN = "personal-token-alice-0123456789"
OTHER_TOKEN = "personal-token-bob-9876543210"

Reply = Union[Response, TransportFailure]


def future_order(
    side: str = "buy",
    price: Any = 100.0,
    volume: Any = 1.0,
    *,
    day: Union[str, dt.date, None] = None,
    now: Optional[dt.datetime] = None,
    **fields: Any,
) -> Dict[str, Any]:
    """A valid order for 10:00-10:15 UTC of ``day`` (the day after ``now``; now by default).

    The one order factory of the suite: ``fields`` change or add any field
    (``state="hidden"``, ``tz_offset_hours=1``, ``start_time=...``).
    """
    if day is None:
        day = ((now or dt.datetime.now(dt.timezone.utc)) + dt.timedelta(days=1)).date()
    order: Dict[str, Any] = {
        "side": side,
        "price": price,
        "volume": volume,
        "date": day if isinstance(day, str) else day.isoformat(),
        "start_time": "10:00",
        "end_time": "10:15",
        "duration": "15m",
        "tz_offset_hours": 0,
    }
    order.update(fields)
    return order


class FakeClock:
    """Monotonic and wall clocks that move only when told (or when the flow sleeps)."""

    def __init__(self, start: float = 1000.0, wall: float = 1_700_000_000.0) -> None:
        self.start = start
        self.now = start
        self.wall_offset = wall - start

    def __call__(self) -> float:
        return self.now

    def wall(self) -> float:
        return self.now + self.wall_offset

    def advance(self, seconds: float) -> None:
        self.now += seconds

    @property
    def elapsed(self) -> float:
        """Seconds since the clock was made: the duration a flow took, on this clock."""
        return self.now - self.start


def json_response(status: int, value: Any, **headers: str) -> Response:
    merged = {"content-type": "application/json"}
    merged.update({name.replace("_", "-"): v for name, v in headers.items()})
    return Response(status, merged, json.dumps(value).encode())


TOKEN_OK = json_response(200, {"access_token": "access-secret-1", "expires_in": 3600})


class Script:
    """A transport that answers from a list, token exchanges from their own list.

    Without ``token_replies`` every exchange succeeds with a new access token
    (``access-secret-1``, ``-2``...). With ``fallback`` an exhausted list
    answers that instead of failing the test.
    """

    def __init__(
        self, replies: List[Reply], token_replies: Optional[List[Reply]] = None, fallback: Optional[Reply] = None
    ) -> None:
        self.replies = list(replies)
        self.token_replies = list(token_replies) if token_replies is not None else None
        self.fallback = fallback
        self.sent: List[Request] = []
        self.answered: List[Reply] = []
        self.exchanges = 0

    def __call__(self, request: Request) -> Reply:
        self.sent.append(request)
        if request.path == "/auth/token":
            self.exchanges += 1
            if self.token_replies is None or (not self.token_replies and self.fallback is not None):
                return json_response(200, {"access_token": f"access-secret-{self.exchanges}", "expires_in": 3600})
            return self.token_replies.pop(0)
        reply = self.replies.pop(0) if self.replies or self.fallback is None else self.fallback
        self.answered.append(reply)
        return reply

    @property
    def calls(self) -> List[Request]:
        """The requests sent, token exchanges left out."""
        return [request for request in self.sent if request.path != "/auth/token"]


def drive(
    flow: Flow[T],
    transport: Callable[[Request], Reply],
    clock: Optional[FakeClock] = None,
    sleeps: Optional[List[float]] = None,
    *,
    request_time: float = 0.0,
    max_steps: Optional[int] = None,
    check_sleep: Optional[Callable[[float], None]] = None,
) -> T:
    """Run a flow to its end as a driver does, with no I/O: sleeps move ``clock`` instead of waiting.

    Each ``Send`` costs ``request_time`` on the clock; ``RunLocked`` runs its
    flow at once (one caller: the lock is always free). ``max_steps`` makes a
    flow that never ends fail instead of hanging; ``check_sleep`` sees every
    wait. The flow is closed at the end, as every driver closes it.
    """
    reply: Any = None
    steps = 0
    try:
        while True:
            steps += 1
            if max_steps is not None:
                assert steps <= max_steps, f"the flow does not end within {max_steps} steps"
            action = flow.send(reply)
            if isinstance(action, Send):
                if clock is not None:
                    clock.advance(request_time)
                reply = transport(action.request)
            elif isinstance(action, Sleep):
                if check_sleep is not None:
                    check_sleep(action.seconds)
                if sleeps is not None:
                    sleeps.append(action.seconds)
                if clock is not None:
                    clock.advance(action.seconds)
                reply = None
            elif isinstance(action, RunLocked):
                reply = drive(
                    action.flow,
                    transport,
                    clock,
                    sleeps,
                    request_time=request_time,
                    max_steps=max_steps,
                    check_sleep=check_sleep,
                )
            elif isinstance(action, Blocking):
                reply = action.function(action.time_left)
            elif isinstance(action, RunAll):  # one after another, as a blocking driver runs them
                options: Dict[str, Any] = {"request_time": request_time, "max_steps": max_steps}
                reply = [
                    drive(each, transport, clock, sleeps, check_sleep=check_sleep, **options) for each in action.flows
                ]
            else:
                raise AssertionError(f"unexpected action {action!r}")
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    finally:
        flow.close()


#: The options of ``Session`` itself; the others are a client's settings.
_SESSION_OPTIONS = ("random", "budget", "shared_budget")


def make_session(clock: FakeClock, **options: Any) -> Session:
    """A session on ``clock`` with jitter pinned to the middle (``random() == 0.5``).

    ``options`` are the settings of a client (``timeout=``, ``on_attempt=``...)
    and the session's own (``random``, ``budget``, ``shared_budget``).
    """
    own = {name: options.pop(name) for name in _SESSION_OPTIONS if name in options}
    own.setdefault("random", lambda: 0.5)
    settings = ClientSettings.from_arguments("personal-secret", trust_env=False, **options)
    return Session(settings, clock=clock, wall_clock=clock.wall, **own)


def order_payload(path: str, price: float = 100.0) -> Tuple[Dict[str, Any], List[Dict[str, Any]]]:
    """What ``create_order`` is given to POST ``path``, and the orders it places (1, or 2 in a bulk)."""
    if path == "/orders":
        order = future_order("buy", price, 1.0)
        return order, [order]
    orders = [future_order("buy", price, 1.0), future_order("buy", price + 0.5, 2.0)]
    return {"orders": orders}, orders


class Concurrent:
    """Several flows driven at once in memory, one action per turn each, sharing one token lock.

    A driver's contract, run by hand: ``Send`` costs ``request_time`` on the
    clock; a ``RunLocked`` whose lock is held waits (the other flows go on)
    until the lock is free, or until its ``wait`` has passed on the clock, and
    is then resumed with None. When every flow waits, time passes to the first
    wait's end. ``run`` gives each flow's value, or the exception it raised.
    """

    def __init__(self, transport: Callable[[Request], Reply], clock: FakeClock, request_time: float = 0.0) -> None:
        self.transport = transport
        self.clock = clock
        self.request_time = request_time
        self.holder: Optional[int] = None
        self.lock_waits: List[float] = []

    def run(self, flows: List[Flow[Any]], max_steps: int = 10_000) -> List[Any]:
        stacks: List[List[Flow[Any]]] = [[flow] for flow in flows]
        replies: List[Any] = [None] * len(flows)
        waiting: Dict[int, Tuple[RunLocked, float]] = {}
        outcomes: Dict[int, Any] = {}
        for _ in range(max_steps):
            if len(outcomes) == len(flows):
                return [outcomes[index] for index in range(len(flows))]
            moved = False
            for index, stack in enumerate(stacks):
                if index in outcomes:
                    continue
                if index in waiting:
                    action, until = waiting[index]
                    if self.holder is None:
                        del waiting[index]
                        self.holder = index
                        stack.append(action.flow)
                    elif self.clock() >= until:
                        del waiting[index]
                        action.flow.close()
                        replies[index] = None
                    else:
                        continue
                moved = True
                self._step(index, stack, replies, waiting, outcomes)
            if not moved:
                self.clock.now = max(self.clock.now, min(until for _, until in waiting.values()))
        raise AssertionError(f"the flows do not end within {max_steps} steps")

    def _step(
        self,
        index: int,
        stack: List[Flow[Any]],
        replies: List[Any],
        waiting: Dict[int, Tuple[RunLocked, float]],
        outcomes: Dict[int, Any],
    ) -> None:
        flow = stack[-1]
        try:
            action = flow.send(replies[index])
        except StopIteration as done:
            stack.pop()
            replies[index] = done.value
            if stack:  # the flow run under the lock has ended: the lock is free again
                self.holder = None
            else:
                outcomes[index] = done.value
            return
        except Exception as error:
            for abandoned in reversed(stack):
                abandoned.close()
            if self.holder == index:
                self.holder = None
            outcomes[index] = error
            return
        replies[index] = None
        if isinstance(action, Send):
            self.clock.advance(self.request_time)
            replies[index] = self.transport(action.request)
        elif isinstance(action, Sleep):
            self.clock.advance(action.seconds)
        elif isinstance(action, RunLocked):
            self.lock_waits.append(action.wait)
            if self.holder is None:
                self.holder = index
                stack.append(action.flow)
            else:
                waiting[index] = (action, self.clock() + action.wait)
        else:
            raise AssertionError(f"unexpected action {action!r}")


# -- flows that record how they end: does a driver close what it abandons? -----------------------


def recording(log: List[str], name: str, actions: Sequence[Action], fail: Optional[BaseException] = None) -> Flow[Any]:
    """A flow that yields ``actions``, then raises ``fail`` or returns; its closing is written in ``log``."""
    try:
        for action in actions:  # noqa: UP028 - a list cannot be sent replies through ``yield from``
            yield action
        if fail is not None:
            raise fail
        return name
    except GeneratorExit:
        log.append(f"{name} closed")
        raise


class Boom(Exception):
    pass


def nested_failure(log: List[str]) -> Flow[Any]:
    """A call flow whose locked flow raises: the driver must close the call flow on the way out."""
    return recording(log, "call", [RunLocked(recording(log, "locked", [], fail=Boom("in the locked flow")), 5.0)])
