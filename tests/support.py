"""Test helpers: drive the core's flows in memory, with a fake clock."""

from __future__ import annotations

import json
from typing import Any, Callable, List, Optional, Union

from gameproto._boundary import Request, Response, RunLocked, Send, Sleep, TransportFailure
from gameproto._flow import Session

Reply = Union[Response, TransportFailure]


class FakeClock:
    """Monotonic and wall clocks that move only when told (or when the flow sleeps)."""

    def __init__(self, start: float = 1000.0, wall: float = 1_700_000_000.0) -> None:
        self.now = start
        self.wall_offset = wall - start

    def __call__(self) -> float:
        return self.now

    def wall(self) -> float:
        return self.now + self.wall_offset

    def advance(self, seconds: float) -> None:
        self.now += seconds


def json_response(status: int, value: Any, **headers: str) -> Response:
    merged = {"content-type": "application/json"}
    merged.update({name.replace("_", "-"): v for name, v in headers.items()})
    return Response(status, merged, json.dumps(value).encode())


TOKEN_OK = json_response(200, {"access_token": "access-secret-1", "expires_in": 3600})


class Script:
    """A transport that answers from a list, token exchanges from their own list."""

    def __init__(self, replies: List[Reply], token_replies: Optional[List[Reply]] = None) -> None:
        self.replies = list(replies)
        self.token_replies = list(token_replies) if token_replies is not None else None
        self.sent: List[Request] = []
        self.exchanges = 0

    def __call__(self, request: Request) -> Reply:
        self.sent.append(request)
        if request.path == "/auth/token":
            self.exchanges += 1
            if self.token_replies is None:
                return json_response(200, {"access_token": f"access-secret-{self.exchanges}", "expires_in": 3600})
            return self.token_replies.pop(0)
        return self.replies.pop(0)

    @property
    def calls(self) -> List[Request]:
        return [request for request in self.sent if request.path != "/auth/token"]


def drive(
    session: Session,
    flow: Any,
    transport: Callable[[Request], Reply],
    clock: Optional[FakeClock] = None,
    sleeps: Optional[List[float]] = None,
    request_time: float = 0.0,
) -> Any:
    """Run a flow to its end with ``transport``; sleeps move ``clock`` instead of waiting."""
    reply: Any = None
    try:
        while True:
            action = flow.send(reply)
            if isinstance(action, Send):
                if clock is not None:
                    clock.advance(request_time)
                reply = transport(action.request)
            elif isinstance(action, Sleep):
                if sleeps is not None:
                    sleeps.append(action.seconds)
                if clock is not None:
                    clock.advance(action.seconds)
                reply = None
            elif isinstance(action, RunLocked):
                reply = drive(session, action.flow, transport, clock, sleeps, request_time)
            else:
                raise AssertionError(f"unexpected action {action!r}")
    except StopIteration as done:
        return done.value
    finally:
        flow.close()


def make_session(clock: FakeClock, **options: Any) -> Session:
    options.setdefault("random", lambda: 0.5)
    return Session("personal-secret", clock=clock, wall_clock=clock.wall, **options)
