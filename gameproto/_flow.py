"""The call flow: token, retries and errors, written once for every driver.

A call is a generator. It yields what it needs done (``Send`` a request,
``Sleep`` a while, ``RefreshToken``) and receives the outcome of a ``Send``
(a ``Response`` or a ``TransportFailure``). It returns the parsed answer or
raises a ``GameAPIError``. A driver runs it with ``next()``/``.send()`` and
does nothing else; tests run it with no I/O and no real waiting.
"""

from __future__ import annotations

import logging
import random as _random
import time
from dataclasses import dataclass
from typing import Callable, Generator, Optional, TypeVar, Union

from . import _constants
from ._auth import TokenState
from ._boundary import Request, Response, TransportFailure
from ._calls import Call
from ._errors import (
    UNKNOWN_OUTCOME_HINT,
    AuthenticationError,
    GameAPIError,
    NetworkError,
    OrderOutcomeUnknownProtocolError,
    OrderOutcomeUnknownServerError,
    OutcomeUnknownError,
    ProtocolError,
    ServerError,
    error_from_response,
    excerpt,
    redact,
)
from ._retry import RetryPolicy, parse_retry_after

__all__ = [
    "Send",
    "Sleep",
    "RefreshToken",
    "Action",
    "Reply",
    "Attempt",
    "Session",
    "Flow",
]

logger = logging.getLogger("gameproto")

T = TypeVar("T")


@dataclass(frozen=True)
class Send:
    """Send ``request``; answer with the ``Response`` or a ``TransportFailure``.

    ``connect_timeout`` and ``read_timeout`` bound each step; ``time_left``
    is what remains of the call's overall deadline, which a driver that can
    should enforce around the whole exchange of bytes.
    """

    request: Request
    connect_timeout: float
    read_timeout: float
    time_left: float


@dataclass(frozen=True)
class Sleep:
    """Wait ``seconds``, then resume the flow with None."""

    seconds: float


@dataclass(frozen=True)
class RefreshToken:
    """Get a fresh access token, then resume the flow with None.

    A driver takes its token lock, and runs ``session.exchange_token()`` only
    if ``session.tokens.is_generation(generation)`` still holds: when several
    calls find the token stale at once, the first refreshes it and the others
    find it refreshed (one exchange, not one each).
    """

    generation: int
    #: The asking call's deadline on the session clock: waiting for the lock
    #: and the exchange itself must end by then.
    deadline: float = float("inf")


Action = Union[Send, Sleep, RefreshToken]
Reply = Union[Response, TransportFailure, None]
Flow = Generator[Action, Reply, T]


@dataclass(frozen=True)
class Attempt:
    """One attempt of a call, as the ``on_attempt`` hook sees it."""

    method: str
    path: str
    attempt: int
    status: Optional[int]
    failure: Optional[str]
    elapsed: float
    retry_in: Optional[float]


def _named_for_deadline(failure: TransportFailure, deadline_passed: bool, time_left: float) -> TransportFailure:
    """A failure after sending, once the call's deadline has passed, is the deadline's doing.

    Drivers cut every socket wait short at the deadline, so what they see
    there is an ordinary timeout; the flow, which owns the deadline, names it.
    """
    if deadline_passed and failure.may_have_been_sent:
        return TransportFailure("deadline", f"no answer within the call's deadline of {time_left:.1f} s")
    return failure


class Session:
    """The pure state a client carries: its token, its policy, its clock.

    ``clock`` is monotonic seconds (deadlines, token expiry), ``wall_clock``
    epoch seconds (HTTP dates in Retry-After), ``random`` a float in [0, 1)
    (backoff jitter). ``on_attempt`` is called after every attempt.
    """

    def __init__(
        self,
        token: str,
        *,
        max_retries: int = _constants.DEFAULT_MAX_RETRIES,
        timeout: float = _constants.DEFAULT_TIMEOUT,
        connect_timeout: float = _constants.DEFAULT_CONNECT_TIMEOUT,
        read_timeout: float = _constants.DEFAULT_READ_TIMEOUT,
        retry_policy: Optional[RetryPolicy] = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        random: Callable[[], float] = _random.random,
        on_attempt: Optional[Callable[[Attempt], None]] = None,
    ) -> None:
        for name, value in (("timeout", timeout), ("connect_timeout", connect_timeout), ("read_timeout", read_timeout)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"{name} must be a number of seconds > 0, got {value!r}")
        self.tokens = TokenState(token)
        self.retry_policy = retry_policy if retry_policy is not None else RetryPolicy(max_retries=max_retries)
        self.timeout = float(timeout)
        self.connect_timeout = float(min(connect_timeout, timeout))
        self.read_timeout = float(min(read_timeout, timeout))
        self.clock = clock
        self.wall_clock = wall_clock
        self.random = random
        self.on_attempt = on_attempt

    def __repr__(self) -> str:
        return f"<Session {self.tokens!r} timeout={self.timeout:g}s retries={self.retry_policy.max_retries}>"

    # -- the two flows -------------------------------------------------------

    def run(self, call: Call[T]) -> Flow[T]:
        """The flow of one authorised call: token, attempts, retries, the answer."""
        clock = self.clock
        tokens = self.tokens
        request = call.request
        deadline = clock() + self.timeout
        retries = 0
        attempt = 0
        reauthorised = False
        while True:
            access = tokens.current(clock())
            if access is None:
                yield RefreshToken(tokens.generation, deadline)
                access = tokens.current(clock())
                if access is None and clock() >= deadline:
                    # The exchange (ours, or the one we waited for) ran out of
                    # this call's time; nothing of this call is in doubt.
                    raise self._deadline_error(request, False, attempt + 1)
                if access is None:
                    raise AuthenticationError(
                        "no access token after the exchange", method=request.method, path=request.path
                    )
            attempt += 1
            started = clock()
            time_left = deadline - started
            if time_left <= 0:
                raise self._deadline_error(request, call.creates, attempt)
            reply = yield Send(
                Request(
                    request.method,
                    request.path,
                    request.query,
                    (*request.headers, ("Authorization", "Bearer " + access)),
                    request.body,
                ),
                min(self.connect_timeout, time_left),
                min(self.read_timeout, time_left),
                time_left,
            )
            if type(reply) is Response:
                status = reply.status
                if 200 <= status < 300:
                    if self.on_attempt is not None or logger.isEnabledFor(logging.DEBUG):
                        self._record(request, attempt, status, None, clock() - started, None)
                    try:
                        return call.parse(reply)
                    except ProtocolError as unreadable:
                        # The parser does not know the tokens: the excerpt is
                        # made again here, with them redacted.
                        shown = excerpt(reply.body, tokens.secrets)
                        if not call.creates:
                            raise ProtocolError(
                                unreadable.message,
                                excerpt=shown,
                                method=request.method,
                                path=request.path,
                                status_code=status,
                            ) from None
                        raise OrderOutcomeUnknownProtocolError(
                            f"{unreadable.message}: {UNKNOWN_OUTCOME_HINT}",
                            excerpt=shown,
                            method=request.method,
                            path=request.path,
                            status_code=status,
                        ) from None
                if status == 401 and not reauthorised:
                    # 401: the call was not carried out. One new exchange, one repeat.
                    self._record(request, attempt, status, None, clock() - started, 0.0)
                    reauthorised = True
                    tokens.invalidate(access)
                    continue
                retry_after = parse_retry_after(reply.header("Retry-After"), now=self.wall_clock())
                decision = self.retry_policy.after_status(
                    status, creates=call.creates, retries_done=retries, retry_after=retry_after, random=self.random
                )
                retry = decision.retry and clock() + decision.wait < deadline
                self._record(request, attempt, status, None, clock() - started, decision.wait if retry else None)
                if not retry:
                    error = error_from_response(
                        reply,
                        method=request.method,
                        path=request.path,
                        secrets=tokens.secrets,
                        wall_now=self.wall_clock(),
                    )
                    if call.creates and isinstance(error, ServerError):
                        # A 5xx does not prove the orders were refused.
                        raise OrderOutcomeUnknownServerError(
                            f"{error.message}: {UNKNOWN_OUTCOME_HINT}",
                            method=request.method,
                            path=request.path,
                            status_code=status,
                        )
                    raise error
            elif isinstance(reply, TransportFailure):
                reply = _named_for_deadline(reply, clock() >= deadline, time_left)
                decision = self.retry_policy.after_transport_failure(
                    reply, creates=call.creates, retries_done=retries, random=self.random
                )
                retry = decision.retry and clock() + decision.wait < deadline
                self._record(request, attempt, None, reply.kind, clock() - started, decision.wait if retry else None)
                if not retry:
                    raise self._transport_error(request, reply, call.creates, attempt)
            else:
                raise TypeError(f"a Send must be answered with a Response or TransportFailure, got {reply!r}")
            retries += 1
            if decision.wait > 0:
                yield Sleep(decision.wait)

    def exchange_token(self, deadline: Optional[float] = None) -> Flow[str]:
        """The flow of the token exchange; leaves a fresh token in ``tokens``.

        The exchange creates nothing, so it is retried like a read. It ends by
        ``deadline`` (session clock) when a call asked for it, so that the
        call's own deadline holds; else after the session's ``timeout``.
        """
        clock = self.clock
        deadline = min(deadline if deadline is not None else float("inf"), clock() + self.timeout)
        request = self.tokens.exchange_request()
        retries = 0
        attempt = 0
        while True:
            attempt += 1
            started = clock()
            time_left = deadline - started
            if time_left <= 0:
                raise self._deadline_error(request, False, attempt)
            reply = yield Send(
                request, min(self.connect_timeout, time_left), min(self.read_timeout, time_left), time_left
            )
            if type(reply) is Response:
                retry_after = parse_retry_after(reply.header("Retry-After"), now=self.wall_clock())
                decision = self.retry_policy.after_status(
                    reply.status, creates=False, retries_done=retries, retry_after=retry_after, random=self.random
                )
                retry = decision.retry and clock() + decision.wait < deadline
                self._record(request, attempt, reply.status, None, clock() - started, decision.wait if retry else None)
                if not retry:
                    return self.tokens.accept(reply, clock())
            elif isinstance(reply, TransportFailure):
                reply = _named_for_deadline(reply, clock() >= deadline, time_left)
                decision = self.retry_policy.after_transport_failure(
                    reply, creates=False, retries_done=retries, random=self.random
                )
                retry = decision.retry and clock() + decision.wait < deadline
                self._record(request, attempt, None, reply.kind, clock() - started, decision.wait if retry else None)
                if not retry:
                    raise self._transport_error(request, reply, False, attempt)
            else:
                raise TypeError(f"a Send must be answered with a Response or TransportFailure, got {reply!r}")
            retries += 1
            if decision.wait > 0:
                yield Sleep(decision.wait)

    # -- helpers ---------------------------------------------------------------

    def _record(
        self,
        request: Request,
        attempt: int,
        status: Optional[int],
        failure: Optional[str],
        elapsed: float,
        retry_in: Optional[float],
    ) -> None:
        if logger.isEnabledFor(logging.DEBUG):
            outcome = status if status is not None else failure
            logger.debug(
                "%s %s -> %s (attempt %d, %.1f ms)%s",
                request.method,
                request.path,
                outcome,
                attempt,
                elapsed * 1000.0,
                f", retrying in {retry_in:.2f} s" if retry_in is not None else "",
            )
        if self.on_attempt is not None:
            try:
                self.on_attempt(Attempt(request.method, request.path, attempt, status, failure, elapsed, retry_in))
            except Exception:  # a metrics hook must never break a trade
                logger.exception("on_attempt hook failed")

    def _transport_error(
        self, request: Request, failure: TransportFailure, creates: bool, attempts: int
    ) -> GameAPIError:
        detail = redact(failure.detail, self.tokens.secrets) or failure.kind
        tries = f" after {attempts} attempt{'s' if attempts != 1 else ''}"
        if creates and failure.may_have_been_sent:
            return OutcomeUnknownError(
                f"outcome unknown ({failure.kind}: {detail}): the request was sent but no answer came, "
                f"so {UNKNOWN_OUTCOME_HINT}",
                method=request.method,
                path=request.path,
            )
        return NetworkError(f"{failure.kind}: {detail}{tries}", method=request.method, path=request.path)

    def _deadline_error(self, request: Request, creates: bool, attempts: int) -> GameAPIError:
        # A call whose deadline passes between attempts sent nothing more, so
        # its outcome is what the earlier attempts left: for a request that
        # creates orders those attempts were never sent (or were answered).
        return NetworkError(
            f"deadline of {self.timeout:g} s exceeded after {attempts - 1} attempt{'s' if attempts != 2 else ''}",
            method=request.method,
            path=request.path,
        )
