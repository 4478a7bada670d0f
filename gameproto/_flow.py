"""The call flow: token, attempts and retries, written once for every driver.

A call is a generator. It yields what it needs done (``Send`` a request,
``Sleep`` a while, ``RunLocked`` a token exchange under the client's one
lock, ``Blocking`` for a budget shared through Redis) and is resumed with
the outcome. It returns the parsed answer or raises a ``GameAPIError``. A
driver runs it with ``.send()`` and does nothing else; tests run it with no
I/O and no real waiting.

One attempt loop (``Session._attempts``) serves the calls and the token
exchange alike, one step a method: the token, the deadline, the budget's
slot, the send, then the answer (success, a 401's repeat, a refusal) or the
failure, each asking the ``RetryPolicy`` whether to go on. Which error ends a
call is chosen in ``_errors``; what an attempt reports, in ``_attempt``.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import logging
import random as _random
import time
from typing import Any, Callable, Generic, Optional, Tuple, TypeVar, Union

from . import _constants
from ._attempt import Attempt, logger, report
from ._auth import TOKEN_PATH, TokenState, secrets_in_answer
from ._boundary import Blocking, Flow, Request, Response, RunLocked, Send, Sleep, TransportFailure, Unanswered
from ._budget import BudgetStore, RequestBudget, budget_exhausted, limit_from_status, usable_wait
from ._calls import NOTHING_SENT, STATUS_PATH, Call
from ._clock import ClockEstimator
from ._errors import (
    GameAPIError,
    ProtocolError,
    error_for_answer,
    error_for_deadline,
    error_for_encoding,
    error_for_failure,
    error_for_no_token,
    error_for_token_exchange,
    error_for_unreadable,
    redact,
)
from ._http_dates import read_retry_after
from ._orders import EXCHANGE_CLOCK
from ._replayed import FollowedClock, follow_replay
from ._retry import RetryDecision
from ._settings import ClientSettings

__all__ = ["Attempt", "Session"]

T = TypeVar("T")


def _unfailing(function: Callable[..., T], *args: Any) -> Union[T, Unanswered]:
    """``function(*args)``, or its failure as ``Unanswered``: a ``Blocking`` function never raises."""
    try:
        return function(*args)
    except Exception as error:
        return Unanswered(f"{type(error).__name__}: {error}")


def _blocking(time_left: float, function: Callable[..., Any], *args: Any) -> Blocking:
    """The action that asks a shared budget for ``function(*args, time_left)``, where blocking is allowed."""
    return Blocking(functools.partial(_unfailing, function, *args), max(0.0, time_left))


def _warn_unusable(answer: object, secrets: Tuple[str, ...]) -> str:
    """Say (once an outage) that the shared budget gave no usable answer; what it gave."""
    detail = answer.detail if isinstance(answer, Unanswered) else f"an answer that is not a wait: {answer!r:.60}"
    logger.warning(
        "shared request budget: no usable answer (%s); pacing this client alone with its own budget "
        "until it answers again",
        redact(detail, secrets),
    )
    return detail


def _warn_absurd_pause(request: Request, said: float, taken: Optional[float]) -> None:
    """Say (once a client) that an answer asked for a pause longer than ``RETRY_AFTER_MAX``."""
    logger.warning(
        "%s %s: the answer's Retry-After asks for a pause of %.3g s; taking %g s, the longest pause "
        "an answer may impose (later ones are capped without a word)",
        request.method,
        request.path,
        said,
        taken,
    )


def _own_copy(error: GameAPIError) -> GameAPIError:
    """``error`` for one more caller: its own object, so that tracebacks are not shared across tasks."""
    try:
        return copy.copy(error).with_traceback(None)
    except Exception:  # pragma: no cover - every error of the family copies
        return error


class Session:
    """The pure state a client carries: its token, its policy, its budget, its clock.

    Made from a client's ``ClientSettings`` (checked there, once). ``clock``
    is monotonic seconds (deadlines, token expiry), ``wall_clock`` epoch
    seconds (HTTP dates in Retry-After), ``random`` a float in [0, 1)
    (backoff jitter). ``budget`` replaces the one the settings describe;
    ``shared_budget`` is a budget shared with other processes.
    """

    def __init__(
        self,
        settings: ClientSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        random: Callable[[], float] = _random.random,
        budget: Optional[RequestBudget] = None,
        shared_budget: Optional[BudgetStore] = None,
    ) -> None:
        self.settings = settings
        self.tokens = TokenState(settings.token)
        self.retry_policy = settings.retry_policy
        self.timeout = settings.timeout
        self.connect_timeout = settings.connect_timeout
        self.read_timeout = settings.read_timeout
        self.on_attempt = settings.on_attempt
        self.clock = clock
        self.wall_clock = wall_clock
        self.random = random
        #: Every request of the client passes this one budget (None: no pacing).
        if budget is None:
            budget = RequestBudget(settings.requests_per_minute, window=_constants.BUDGET_WINDOW)
        self.budget = budget
        #: A budget shared with other processes, which then decides instead of ``budget``.
        self.shared_budget = shared_budget
        #: Why the shared budget gave no usable answer, while it gives none (warned once).
        self.shared_trouble: Optional[str] = None
        #: Whether an absurd Retry-After was logged (once a client).
        self.told_absurd_pause = False
        #: The exchange's clock, learnt from the answers' ``Date`` and ``/status``'s ``timestamp``.
        self.exchange_clock = ClockEstimator()
        #: The replay's clocks, once a ``/status`` said the exchange replays a recording (``_replayed``).
        self.replayed: Optional[FollowedClock] = None

    def __repr__(self) -> str:
        return f"<Session {self.tokens!r} timeout={self.timeout:g}s retries={self.retry_policy.max_retries}>"

    def exchange_now(self) -> Optional[dt.datetime]:
        """The exchange's time now, once an answer has told it; None before."""
        if self.exchange_clock.offset is None:
            return None
        return dt.datetime.fromtimestamp(self.exchange_clock.exchange_time(self.wall_clock()), EXCHANGE_CLOCK)

    # -- the flow of a call ----------------------------------------------------

    def run(self, call: Call[T], deadline: Optional[float] = None) -> Flow[T]:
        """The flow of one call: token, attempts, retries, the answer (or ``call.recover``'s).

        What must happen once before anything of a call is sent (a check, a
        record written ahead) is a step before ``_attempts``: the journal's
        write-ahead step (``gameproto/_journal.py``) wraps this flow and gives
        ``deadline`` (the ``clock``'s reading), the call's time having started
        with it.
        """
        try:
            if call.request is None:
                return call.parse(NOTHING_SENT)
            if deadline is None:
                deadline = self.clock() + self.timeout
            return (yield from self._attempts(call, call.request, deadline, authorised=True))
        except GameAPIError as error:
            if call.recover is None:
                raise
            return call.recover(error)

    def outcome(self, call: Call[T], deadline: Optional[float] = None) -> Flow[Union[T, GameAPIError]]:
        """The flow of ``run``, its ``GameAPIError`` returned rather than raised (a bulk's parts)."""
        try:
            return (yield from self.run(call, deadline))
        except GameAPIError as error:
            return error

    def _attempts(self, call: Call[T], request: Request, deadline: float, *, authorised: bool) -> Flow[T]:
        """Attempts of ``request`` until an answer, a final failure or the deadline."""
        return _Attempts(self, call, request, deadline, authorised).run()

    # -- the request budget ----------------------------------------------------------

    def _slot_at_once(self, now: float, authorised: bool) -> Optional[float]:
        """``_slot``'s answer when no flow is needed to have it (the budget is this client's own); None otherwise."""
        if self.shared_budget is not None and authorised:
            return None
        return self.budget.reserve(now) if authorised else self.budget.paused_for(now)

    def _wait_for_slot(
        self, request: Request, deadline: float, authorised: bool, now: float, wait: Optional[float] = None
    ) -> Flow[float]:
        """Wait for a slot of the budget within the deadline (``wait``: ``_slot``'s answer at ``now``, if had)."""
        if wait is None:
            wait = yield from self._slot(now, authorised, deadline)
        while wait > 0:
            # No slot yet: wait for one, within the call's deadline.
            if now + wait >= deadline:
                raise budget_exhausted(wait, method=request.method, path=request.path)
            yield Sleep(wait)
            now = self.clock()
            wait = yield from self._slot(now, authorised, deadline)
        if self.shared_budget is not None and authorised:
            now = self.clock()  # the shared budget's round trip took some of the time
        return now

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
        answer = yield _blocking(deadline - self.clock(), self.shared_budget.reserve)
        wait = usable_wait(answer)
        if wait is None:
            if self.shared_trouble is None:
                self.shared_trouble = _warn_unusable(answer, tuple(self.tokens.secrets))
            return self.budget.reserve(self.clock())
        if self.shared_trouble is not None:
            self.shared_trouble = None
            logger.info("shared request budget: usable answers again; back to the shared window")
        if wait == 0.0:
            self.budget.record(self.clock())  # so that pacing alone later does not burst
        return wait

    def _pause(self, retry_after: Optional[float], deadline: float) -> Flow[None]:
        """A 429 holds every caller of this client (of the account, when the budget is shared), not only this one."""
        self.budget.refused(self.clock(), retry_after)
        if self.shared_budget is not None and retry_after is not None:
            yield _blocking(deadline - self.clock(), self.shared_budget.pause, retry_after)

    def _learn_from_status(self, status: object, sent_at: float) -> Optional[int]:
        """A ``/status`` answer tells the exchange's limit and its time; the limit, for a shared budget to learn."""
        limit = limit_from_status(status)
        if limit is not None:
            self.budget.learn_limit(limit)
        stamp = status.get("timestamp") if isinstance(status, dict) else None
        if isinstance(stamp, str) and not follow_replay(self, status, stamp):  # a replay's clock: its own start
            self.exchange_clock.observe_status(sent_at, self.wall_clock(), stamp)
        return limit

    def host_seconds(self, seconds: float) -> float:
        """How long a driver sleeps for a wait of ``seconds`` on the session's clock (shorter in a fast replay)."""
        return seconds if self.replayed is None else self.replayed.host_seconds(seconds)

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
                raise error_for_deadline(request, self.timeout, attempt)
        raise error_for_no_token(request)

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
        except GameAPIError as error:
            failure = error_for_token_exchange(error, TOKEN_PATH)
            tokens.failed(failure)
            return failure
        return None


class _Attempts(Generic[T]):
    """The attempts of one request, one step a method; the session holds what outlives them."""

    # fmt: off
    __slots__ = ("access", "attempt", "authorised", "call", "creates", "deadline", "reauthorised", "request",
                 "retries", "session", "started")
    # fmt: on

    def __init__(self, session: Session, call: Call[T], request: Request, deadline: float, authorised: bool) -> None:
        self.session = session
        self.call = call
        self.creates = call.creates
        self.request = request
        self.deadline = deadline
        self.authorised = authorised
        self.attempt = 0
        self.retries = 0
        self.reauthorised = False
        self.access: Optional[str] = None
        self.started = 0.0

    def run(self) -> Flow[T]:
        session, request, deadline = self.session, self.request, self.deadline
        while True:
            sending = request
            if self.authorised:
                # The token at hand, without a nested flow: one only when an exchange is due.
                access = session.tokens.current(session.clock())
                if access is None:
                    access = yield from session._fresh_token(request, deadline, self.attempt)
                self.access = access
                sending = request.with_bearer(access)
            self.attempt += 1
            started = session.clock()
            if started >= deadline:
                raise error_for_deadline(request, session.timeout, self.attempt - 1)
            wait = session._slot_at_once(started, self.authorised)
            if wait is not None and wait <= 0:
                self.started = started  # a slot at once, the budget being this client's own
            else:
                self.started = yield from session._wait_for_slot(request, deadline, self.authorised, started, wait)
            if self.started >= deadline:  # a shared budget's round trip took the rest of the time
                raise error_for_deadline(request, session.timeout, self.attempt - 1)
            time_left = deadline - self.started
            sent_at = session.wall_clock()
            reply = yield Send(
                sending, min(session.connect_timeout, time_left), min(session.read_timeout, time_left), time_left
            )
            if type(reply) is Response:
                session.exchange_clock.observe_response(sent_at, session.wall_clock(), reply)
                self._check_encoding(reply)
                if 200 <= reply.status < 300:
                    answer = self._succeeded(reply)
                    if request.path == STATUS_PATH:
                        limit = session._learn_from_status(answer, sent_at)
                        if limit is not None and session.shared_budget is not None:
                            yield _blocking(deadline - session.clock(), session.shared_budget.learn_limit, limit)
                    return answer
                if self._reauthorise(reply):
                    continue
                decision = yield from self._refused(reply)
            elif isinstance(reply, TransportFailure):
                decision = self._failed(reply, time_left)
            else:
                raise TypeError(f"a Send must be answered with a Response or TransportFailure, got {reply!r}")
            self.retries += 1
            if decision.wait > 0:
                yield Sleep(decision.wait)

    def _check_encoding(self, reply: Response) -> None:
        if reply.header("Content-Encoding") is None:
            return  # the usual answer: nothing to judge, and no secrets to gather for an error
        refused = error_for_encoding(self.request, reply, creates=self.creates, secrets=self._secrets(reply))
        if refused is not None:
            raise refused

    def _succeeded(self, reply: Response) -> T:
        """The parsed answer of a 2xx."""
        if self.session.on_attempt is not None or logger.isEnabledFor(logging.DEBUG):
            self._record(reply.status, None, None)
        return self._parse(reply)

    def _reauthorise(self, reply: Response) -> bool:
        """Whether to repeat at once: a first 401 (the call was not carried out) drops the token."""
        if not self.authorised or reply.status != 401 or self.reauthorised:
            return False
        self._record(reply.status, None, 0.0)
        self.reauthorised = True
        self.session.tokens.invalidate(self.access)
        return True

    def _refused(self, reply: Response) -> Flow[RetryDecision]:
        """The retry after an error status; the call's error when there is none."""
        session = self.session
        retry_after, said = read_retry_after(reply.header("Retry-After"), now=session.wall_clock())
        if said is not None and not session.told_absurd_pause:
            session.told_absurd_pause = True
            _warn_absurd_pause(self.request, said, retry_after)
        if reply.status == 429:
            yield from session._pause(retry_after, self.deadline)
        decision = session.retry_policy.after_status(
            reply.status,
            creates=self.creates,
            retries_done=self.retries,
            retry_after=retry_after,
            random=session.random,
        )
        if not self._retrying(decision, reply.status, None):
            secrets, now = session.tokens.secrets, session.wall_clock()
            raise error_for_answer(self.request, reply, creates=self.creates, secrets=secrets, wall_now=now)
        return decision

    def _failed(self, failure: TransportFailure, time_left: float) -> RetryDecision:
        """The retry after a request got no answer; the call's error when there is none."""
        session = self.session
        if session.clock() >= self.deadline and failure.may_have_been_sent:
            # Drivers cut every socket wait short at the deadline, so what
            # they see there is an ordinary timeout; the flow, which owns the
            # deadline, names it.
            failure = TransportFailure("deadline", f"no answer within the call's deadline of {time_left:.1f} s")
        decision = session.retry_policy.after_transport_failure(
            failure, creates=self.creates, retries_done=self.retries, random=session.random
        )
        if not self._retrying(decision, None, failure.kind):
            secrets = session.tokens.secrets
            raise error_for_failure(self.request, failure, creates=self.creates, secrets=secrets, attempts=self.attempt)
        return decision

    def _retrying(self, decision: RetryDecision, status: Optional[int], failure: Optional[str]) -> bool:
        """Whether to try again: the policy says so and the wait ends before the deadline."""
        retry = decision.retry and self.session.clock() + decision.wait < self.deadline
        self._record(status, failure, decision.wait if retry else None)
        return retry

    def _record(self, status: Optional[int], failure: Optional[str], retry_in: Optional[float]) -> None:
        elapsed = self.session.clock() - self.started
        report(self.session.on_attempt, self.request, self.attempt, status, failure, elapsed, retry_in)

    def _parse(self, reply: Response) -> T:
        try:
            return self.call.parse(reply)
        except ProtocolError as unreadable:
            message = unreadable.message
        # Raised outside the except clause: the parser's error (its excerpt
        # made without the tokens) must not survive as this one's __context__.
        raise error_for_unreadable(self.request, reply, message, creates=self.creates, secrets=self._secrets(reply))

    def _secrets(self, reply: Response) -> Tuple[str, ...]:
        """What an error about ``reply`` must not show: our tokens, and those the token exchange's answer holds."""
        secrets = tuple(self.session.tokens.secrets)
        if self.request.path == TOKEN_PATH:
            return (*secrets, *secrets_in_answer(reply.body))
        return secrets
