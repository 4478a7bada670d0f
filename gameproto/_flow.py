"""The call flow: token, retries and errors, written once for every driver.

A call is a generator. It yields what it needs done (``Send`` a request,
``Sleep`` a while, ``RunLocked`` a token exchange under the client's one
lock) and is resumed with the outcome. It returns the parsed answer or raises
a ``GameAPIError``. A driver runs it with ``.send()`` and does nothing else;
tests run it with no I/O and no real waiting.

One attempt loop (``Session._attempts``) serves the calls and the token
exchange alike: the deadline, the transport failures, the retry decisions and
the sleeps between attempts are written here once.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import logging
import random as _random
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional, TypeVar, Union

from . import _constants
from ._auth import TOKEN_PATH, TokenState, secrets_in_answer
from ._boundary import Blocking, Flow, Request, Response, RunLocked, Send, Sleep, TransportFailure, Unanswered
from ._budget import BudgetStore, RequestBudget, budget_exhausted, limit_from_status, usable_wait
from ._calls import NOTHING_SENT, STATUS_PATH, Call
from ._clock import ClockEstimator
from ._errors import (
    UNKNOWN_OUTCOME_HINT,
    APIStatusError,
    AuthenticationError,
    GameAPIError,
    NetworkError,
    NetworkTimeoutError,
    OrderOutcomeUnknownNoAnswerError,
    OrderOutcomeUnknownProtocolError,
    OrderOutcomeUnknownServerError,
    ProtocolError,
    ServerError,
    error_from_response,
    excerpt,
    redact,
)
from ._orders import EXCHANGE_CLOCK
from ._retry import RetryDecision, RetryPolicy, read_retry_after

__all__ = ["Attempt", "Session"]

logger = logging.getLogger("gameproto")

T = TypeVar("T")


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


def _unfailing(function: Callable[..., T], *args: Any) -> Union[T, Unanswered]:
    """``function(*args)``, or its failure as ``Unanswered``: a ``Blocking`` function never raises."""
    try:
        return function(*args)
    except Exception as error:
        return Unanswered(f"{type(error).__name__}: {error}")


def _own_copy(error: GameAPIError) -> GameAPIError:
    """``error`` for one more caller: its own object, so that tracebacks are not shared across tasks."""
    try:
        return copy.copy(error).with_traceback(None)
    except Exception:  # pragma: no cover - every error of the family copies
        return error


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
        budget: Optional[RequestBudget] = None,
        shared_budget: Optional[BudgetStore] = None,
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
        #: Every request of the client passes this one budget (None: no pacing).
        self.budget = budget if budget is not None else RequestBudget(None)
        #: A budget shared with other processes, which then decides instead of ``budget``.
        self.shared_budget = shared_budget
        #: Why the shared budget gave no usable answer, while it gives none (warned once).
        self.shared_trouble: Optional[str] = None
        #: Whether an absurd Retry-After was logged (once a client).
        self._told_absurd_pause = False
        #: The exchange's clock, learnt from the answers' ``Date`` and ``/status``'s ``timestamp``.
        self.exchange_clock = ClockEstimator()

    def __repr__(self) -> str:
        return f"<Session {self.tokens!r} timeout={self.timeout:g}s retries={self.retry_policy.max_retries}>"

    def exchange_now(self) -> Optional[dt.datetime]:
        """The exchange's time now, once an answer has told it; None before."""
        if self.exchange_clock.offset is None:
            return None
        return dt.datetime.fromtimestamp(self.exchange_clock.exchange_time(self.wall_clock()), EXCHANGE_CLOCK)

    # -- the flow of a call ----------------------------------------------------

    def run(self, call: Call[T]) -> Flow[T]:
        """The flow of one call: token, attempts, retries, the answer (or ``call.recover``'s)."""
        try:
            if call.request is None:
                return call.parse(NOTHING_SENT)
            return (yield from self._attempts(call, call.request, self.clock() + self.timeout, authorised=True))
        except GameAPIError as error:
            if call.recover is None:
                raise
            return call.recover(error)

    def outcome(self, call: Call[T]) -> Flow[Union[T, GameAPIError]]:
        """The flow of ``run``, its ``GameAPIError`` returned rather than raised (a bulk's parts)."""
        try:
            return (yield from self.run(call))
        except GameAPIError as error:
            return error

    def _attempts(self, call: Call[T], request: Request, deadline: float, *, authorised: bool) -> Flow[T]:
        """Attempts of ``request`` until an answer, a final failure or the deadline."""
        clock = self.clock
        retries = 0
        attempt = 0
        reauthorised = False
        access = None
        while True:
            sending = request
            if authorised:
                access = self.tokens.current(clock())
                if access is None:
                    access = yield from self._fresh_token(request, deadline, attempt)
                sending = request.with_bearer(access)
            attempt += 1
            started = clock()
            if started >= deadline:
                raise self._deadline_error(request, attempt)
            wait = yield from self._slot(started, authorised, deadline)
            while wait > 0:
                # No slot yet: wait for one, within the call's deadline.
                if started + wait >= deadline:
                    raise budget_exhausted(wait, method=request.method, path=request.path)
                yield Sleep(wait)
                started = clock()
                wait = yield from self._slot(started, authorised, deadline)
            if self.shared_budget is not None and authorised:
                started = clock()  # the shared budget's round trip took some of the time
                if started >= deadline:
                    raise self._deadline_error(request, attempt)
            time_left = deadline - started
            sent_at = self.wall_clock()
            reply = yield Send(
                sending, min(self.connect_timeout, time_left), min(self.read_timeout, time_left), time_left
            )
            if type(reply) is Response:
                self.exchange_clock.observe_response(sent_at, self.wall_clock(), reply)
                status = reply.status
                encoding = reply.header("Content-Encoding")
                if encoding is not None and encoding.strip(" \t").lower() not in ("", "identity"):
                    # We ask for identity and decode nothing: a compressed body
                    # could inflate a thousandfold past the size cap.
                    shown = redact(encoding, self.tokens.secrets)[:40]
                    raise self._unreadable(call, request, reply, f"answer has Content-Encoding {shown!r}, not identity")
                if 200 <= status < 300:
                    if self.on_attempt is not None or logger.isEnabledFor(logging.DEBUG):
                        self._record(request, attempt, status, None, clock() - started, None)
                    answer = self._parse(call, request, reply)
                    if request.path == STATUS_PATH:
                        yield from self._learn_from_status(answer, sent_at, deadline)
                    return answer
                if authorised and status == 401 and not reauthorised:
                    # 401: the call was not carried out. One new exchange, one repeat.
                    self._record(request, attempt, status, None, clock() - started, 0.0)
                    reauthorised = True
                    self.tokens.invalidate(access)
                    continue
                retry_after, said = read_retry_after(reply.header("Retry-After"), now=self.wall_clock())
                if said is not None:
                    self._absurd_pause(request, said, retry_after)
                if status == 429:
                    # The pause holds every caller of this client (of the account,
                    # when the budget is shared), not only this one.
                    self.budget.refused(clock(), retry_after)
                    if self.shared_budget is not None and retry_after is not None:
                        yield from self._ask_store(self.shared_budget.pause, retry_after, deadline=deadline)
                decision = self.retry_policy.after_status(
                    status, creates=call.creates, retries_done=retries, retry_after=retry_after, random=self.random
                )
                if not self._retrying(decision, deadline, request, attempt, status, None, started):
                    raise self._refusal(call, request, reply)
            elif isinstance(reply, TransportFailure):
                if clock() >= deadline and reply.may_have_been_sent:
                    # Drivers cut every socket wait short at the deadline, so
                    # what they see there is an ordinary timeout; the flow,
                    # which owns the deadline, names it.
                    reply = TransportFailure("deadline", f"no answer within the call's deadline of {time_left:.1f} s")
                decision = self.retry_policy.after_transport_failure(
                    reply, creates=call.creates, retries_done=retries, random=self.random
                )
                if not self._retrying(decision, deadline, request, attempt, None, reply.kind, started):
                    raise self._transport_error(call, request, reply, attempt)
            else:
                raise TypeError(f"a Send must be answered with a Response or TransportFailure, got {reply!r}")
            retries += 1
            if decision.wait > 0:
                yield Sleep(decision.wait)

    def _slot(self, now: float, authorised: bool, deadline: float) -> Flow[float]:
        """The seconds to wait before a request may leave; 0.0 when it may leave now.

        A call takes a slot of the request budget. The token exchange takes
        none: GAME counts requests per access token, and the exchange carries
        none (the embedded exchange does not count it either); but it waits
        out a 429's pause like every other request of the client. A shared
        budget that gives no usable answer in the call's time (it failed, it
        was too slow, it said something that is not a wait) leaves the client
        to pace alone with its own budget, as during an outage.
        """
        if not authorised:
            return self.budget.paused_for(now)
        if self.shared_budget is None:
            return self.budget.reserve(now)
        answer = yield from self._ask_store(self.shared_budget.reserve, deadline=deadline)
        wait = usable_wait(answer)
        if wait is None:
            self._shared_failed(answer)
            return self.budget.reserve(self.clock())
        if self.shared_trouble is not None:
            self.shared_trouble = None
            logger.info("shared request budget: usable answers again; back to the shared window")
        if wait == 0.0:
            self.budget.record(self.clock())  # so that pacing alone later does not burst
        return wait

    def _ask_store(self, function: Callable[..., Any], *args: Any, deadline: float) -> Flow[Any]:
        """``function(*args, time_left)`` of the shared budget, where blocking is allowed; ``Unanswered`` on failure."""
        time_left = max(0.0, deadline - self.clock())
        return (yield Blocking(functools.partial(_unfailing, function, *args), time_left))

    def _shared_failed(self, answer: object) -> None:
        detail = answer.detail if isinstance(answer, Unanswered) else f"an answer that is not a wait: {answer!r:.60}"
        if self.shared_trouble is None:
            logger.warning(
                "shared request budget: no usable answer (%s); pacing this client alone with its own budget "
                "until it answers again",
                redact(detail, self.tokens.secrets),
            )
        self.shared_trouble = detail

    def _absurd_pause(self, request: Request, said: float, taken: Optional[float]) -> None:
        if not self._told_absurd_pause:
            self._told_absurd_pause = True
            logger.warning(
                "%s %s: the answer's Retry-After asks for a pause of %.3g s; taking %g s, the longest pause "
                "an answer may impose (later ones are capped without a word)",
                request.method,
                request.path,
                said,
                taken,
            )

    def _learn_from_status(self, status: object, sent_at: float, deadline: float) -> Flow[None]:
        """A ``/status`` answer tells the exchange's limit and its time."""
        limit = limit_from_status(status)
        if limit is not None:
            self.budget.learn_limit(limit)
            if self.shared_budget is not None:
                yield from self._ask_store(self.shared_budget.learn_limit, limit, deadline=deadline)
        stamp = status.get("timestamp") if isinstance(status, dict) else None
        if isinstance(stamp, str):
            self.exchange_clock.observe_status(sent_at, self.wall_clock(), stamp)

    def _retrying(
        self,
        decision: RetryDecision,
        deadline: float,
        request: Request,
        attempt: int,
        status: Optional[int],
        failure: Optional[str],
        started: float,
    ) -> bool:
        """Whether to try again: the policy says so and the wait ends before the deadline."""
        now = self.clock()
        retry = decision.retry and now + decision.wait < deadline
        self._record(request, attempt, status, failure, now - started, decision.wait if retry else None)
        return retry

    def _parse(self, call: Call[T], request: Request, reply: Response) -> T:
        try:
            return call.parse(reply)
        except ProtocolError as unreadable:
            message = unreadable.message
        # Raised outside the except clause: the parser's error (its excerpt
        # made without the tokens) must not survive as this one's __context__.
        raise self._unreadable(call, request, reply, message)

    def _unreadable(self, call: Call[T], request: Request, reply: Response, message: str) -> GameAPIError:
        """The error for an answer the client cannot read: outcome-unknown for orders."""
        secrets = self.tokens.secrets
        if request.path == TOKEN_PATH:
            secrets += secrets_in_answer(reply.body)
        where = {"method": request.method, "path": request.path, "status_code": reply.status}
        shown = excerpt(reply.body, secrets)
        if call.creates:
            return OrderOutcomeUnknownProtocolError(f"{message}: {UNKNOWN_OUTCOME_HINT}", excerpt=shown, **where)
        return ProtocolError(message, excerpt=shown, **where)

    # -- the token, single-flight ------------------------------------------------

    def _fresh_token(self, request: Request, deadline: float, attempt: int) -> Flow[str]:
        """An access token for a call that found none: one exchange for every call that waits."""
        for _ in range(2):  # a token lost again at once (another call's 401) gets one more exchange
            exchange = self._exchange(self.tokens.generation, deadline)
            outcome = yield RunLocked(exchange, max(0.0, deadline - self.clock()))
            if isinstance(outcome, GameAPIError):
                # Every call that waited for this exchange fails with it; none repeats it.
                raise _own_copy(outcome)
            access = self.tokens.current(self.clock())
            if access is not None:
                return access
            if self.clock() >= deadline:
                # The exchange (ours, or the one we waited for) ran out of
                # this call's time; nothing of this call is in doubt.
                raise self._deadline_error(request, attempt + 1)
        raise AuthenticationError("no access token after the exchange", method=request.method, path=request.path)

    def _exchange(self, generation: int, deadline: float) -> Flow[Optional[GameAPIError]]:
        """The token exchange, run under the token lock; returns its failure (None: a fresh token).

        A call that waited for the lock while another call's exchange ended
        (the generation moved on) takes that exchange's outcome, failure
        included, instead of exchanging again.
        """
        tokens = self.tokens
        if tokens.generation != generation:
            return tokens.last_failure
        clock = self.clock
        request = tokens.exchange_request()
        exchange: Call[str] = Call(request, lambda answer: tokens.accept(answer, clock()))
        try:
            yield from self._attempts(exchange, request, min(deadline, clock() + self.timeout), authorised=False)
        except APIStatusError as refused:
            status = refused.status_code or 0
            if isinstance(refused, AuthenticationError) or (400 <= status < 500 and status != 429):
                refused = AuthenticationError(
                    f"token exchange refused: {refused.message}", method="POST", path=TOKEN_PATH, status_code=status
                )
            tokens.failed(refused)
            return refused
        except GameAPIError as error:
            tokens.failed(error)
            return error
        return None

    # -- errors and records --------------------------------------------------------

    def _refusal(self, call: Call[T], request: Request, reply: Response) -> GameAPIError:
        error = error_from_response(
            reply, method=request.method, path=request.path, secrets=self.tokens.secrets, wall_now=self.wall_clock()
        )
        if call.creates and isinstance(error, ProtocolError):
            # 1xx, 3xx, a 2xx the call does not expect, a status beyond 599:
            # neither a success nor a refusal, so the orders may exist.
            return self._unreadable(call, request, reply, error.message)
        if call.creates and isinstance(error, ServerError):
            # A 5xx does not prove the orders were refused.
            return OrderOutcomeUnknownServerError(
                f"{error.message}: {UNKNOWN_OUTCOME_HINT}",
                method=request.method,
                path=request.path,
                status_code=reply.status,
            )
        return error

    def _transport_error(
        self, call: Call[T], request: Request, failure: TransportFailure, attempts: int
    ) -> GameAPIError:
        detail = redact(failure.detail, self.tokens.secrets) or failure.kind
        if failure.kind == "too_large":
            # An answer came, too long to read: unreadable rather than absent.
            if call.creates:
                return OrderOutcomeUnknownProtocolError(
                    f"{detail}: {UNKNOWN_OUTCOME_HINT}", method=request.method, path=request.path
                )
            return ProtocolError(detail, method=request.method, path=request.path)
        if call.creates and failure.may_have_been_sent:
            return OrderOutcomeUnknownNoAnswerError(
                f"outcome unknown ({failure.kind}: {detail}): the request was sent but no answer came, "
                f"so {UNKNOWN_OUTCOME_HINT}",
                method=request.method,
                path=request.path,
            )
        kind = NetworkTimeoutError if failure.timed_out else NetworkError
        tries = f" after {attempts} attempt{'s' if attempts != 1 else ''}"
        return kind(f"{failure.kind}: {detail}{tries}", method=request.method, path=request.path)

    def _deadline_error(self, request: Request, attempts: int) -> GameAPIError:
        # A call whose deadline passes between attempts sent nothing more, so
        # its outcome is what the earlier attempts left: for a request that
        # creates orders those attempts were never sent (or were answered).
        return NetworkTimeoutError(
            f"deadline of {self.timeout:g} s exceeded after {attempts - 1} attempt{'s' if attempts != 2 else ''}",
            method=request.method,
            path=request.path,
        )

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
