"""The request budget: how many requests a client may send, and when.

One ``RequestBudget`` is shared by every call of a client (all threads, all
tasks, retries included; the token exchange waits out a pause, but takes no
slot: GAME counts requests per access token, and the exchange carries none). It is a **sliding
window**, not a token bucket: a bucket refills continuously and lets a full
burst through right after a quiet minute, which puts up to twice the limit in
some 60-second window; an exchange that counts a sliding window answers 429
to that.

The rule (kept here, once; a budget shared between processes, such as a
Redis script, implements exactly this):

State
    ``L``: the limit, requests per window, or none (pacing off);
    ``W``: the window, in seconds (60);
    ``G``: the times of the granted requests, ascending, at most ``L`` of them;
    ``P``: the time before which nobody sends (0 when there is no pause).

``reserve(now)``
    1. No limit: grant (answer 0); nothing is recorded.
    2. ``now < P``: answer ``P - now``; nothing is recorded.
    3. Forget every ``t`` in ``G`` with ``t <= now - W`` (it has left the window).
    4. ``len(G) < L``: append ``max(now, last of G)`` to ``G`` and answer 0:
       a slot is taken for a request sent at ``now``. (The ``max`` keeps ``G``
       ascending when callers read the clock before they queue for the lock;
       recording a grant later than it was is always safe.)
    5. Otherwise answer ``first of G + W - now`` (> 0): the moment the oldest
       grant leaves the window. Nothing is recorded; the caller waits that long,
       or less, and asks again.

``learn_limit(n)`` (only when the budget was made with ``"auto"``)
    ``L = n`` for a positive whole ``n``; ``G`` keeps only its newest ``n``
    times (the older ones leave the window first, so the decisions are
    unchanged). Anything else is ignored: a server's odd answer never breaks
    the client.

``pause(seconds, now)``
    ``P = max(P, now + min(seconds, RETRY_AFTER_MAX))``: a 429's
    ``Retry-After`` holds every caller, not only the one that got it, for at
    most 5 minutes (a longer one is a broken or hostile server's).

``refused(now, retry_after)`` (a request we sent was answered 429)
    ``pause(retry_after, now)`` when the server said how long; forget the
    times that left the window (step 3); drop the newest time of ``G`` (the
    refused request did not use the server's budget). The limit is not
    lowered: a 429 can have other causes (a burst rule, another client of
    the account), and "auto" follows only what the exchange says, its
    ``/status`` limit and its ``Retry-After``. A server that enforces a
    limit it never states is met with a fixed ``requests_per_minute``.

Pacing alone while a budget shared with other processes is out of reach
(``gameproto_redis``), the same rule runs locally with two more steps:

``record(now)``
    A slot the shared store granted at ``now``: append ``max(now, last of G)``
    to ``G`` whatever its length, then keep only the newest ``L`` times. So
    the switch to pacing alone does not burst.

``share(n)``
    ``n`` clients of the account asked the shared store in the last window:
    alone, this one takes ``A = max(1, L // n)`` (``A = L`` when ``n`` is 1).
    Step 4 then compares ``len(G)`` with ``A``, and step 5 answers
    ``G[len(G) - A] + W - now``: the moment enough grants have left the
    window for one slot to be free.

What follows: in every half-open interval ``[s, s + W)`` at most ``L``
requests are granted (the last of ``L + 1`` would have found the other ``L``
within ``W`` of it); a positive answer is only given while ``L`` grants are
in the window or a pause runs, and it is exact, so nobody idles while a slot
is free; the state never holds more than ``L`` times.

A caller with a deadline compares the answer with the time it has left and,
when the wait would pass it, fails with ``budget_exhausted`` (a
``RateLimitError``) without sending. The request's travel time is not the
budget's business: a server that counts arrivals sees our sends shifted by
the network's jitter, which a window a little longer than the server's (say
``window=61``) absorbs.

The state sits behind a ``threading.Lock`` (not I/O: the blocking client
calls from many threads); the lock is never held while anyone waits.
"""

from __future__ import annotations

import collections
import math
import threading
from typing import Any, Deque, Optional, Protocol, Union

from . import _constants
from ._arguments import is_number
from ._errors import RateLimitError

__all__ = [
    "RequestBudget",
    "BudgetStore",
    "check_limit",
    "AUTO",
    "WINDOW_SECONDS",
    "limit_from_status",
    "budget_exhausted",
    "usable_wait",
]

#: The limit spelt this way follows what the exchange says.
AUTO = "auto"
#: The exchange counts requests per minute.
WINDOW_SECONDS = 60.0

Limit = Union[int, str, None]


def _positive_whole(value: Any) -> bool:
    return type(value) is int and value > 0


def check_limit(limit: Any) -> Limit:
    """``limit`` if it is a budget's limit: a positive whole number, ``"auto"`` or None."""
    if limit is not None and limit != AUTO and not _positive_whole(limit):
        raise ValueError(f"requests_per_minute must be a positive whole number, 'auto' or None, got {limit!r}")
    return limit  # type: ignore[no-any-return]


class RequestBudget:
    """The sliding-window request budget of one client; see the module for the rule.

    ``limit`` is a positive whole number of requests per ``window`` seconds,
    ``"auto"`` (start from the advertised 1,000 a minute, then follow
    ``learn_limit``) or None (no pacing).
    """

    def __init__(self, limit: Limit = AUTO, window: float = WINDOW_SECONDS) -> None:
        check_limit(limit)
        if not is_number(window, above=0):
            raise ValueError(f"window must be a positive number of seconds, got {window!r}")
        self._auto = limit == AUTO
        self._limit: Optional[int] = _constants.RATE_LIMIT_PER_MINUTE if self._auto else limit  # type: ignore[assignment]
        self._window = float(window)
        self._granted: Deque[float] = collections.deque()
        self._paused_until = 0.0
        self._share = 1
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        shown = "None" if self._limit is None else f"{self._limit}{' (auto)' if self._auto else ''}"
        return f"RequestBudget(limit={shown}, window={self._window:g})"

    @property
    def limit(self) -> Optional[int]:
        """Requests allowed per window now; None when pacing is off."""
        return self._limit

    @property
    def auto(self) -> bool:
        """Whether the limit follows what the exchange says."""
        return self._auto

    @property
    def window(self) -> float:
        """The window's length in seconds."""
        return self._window

    def reserve(self, now: float) -> float:
        """0.0 when a slot is taken for a request sent at ``now``; else the seconds to wait before asking again."""
        if self._limit is None:
            return 0.0
        with self._lock:
            if now < self._paused_until:
                return self._paused_until - now
            granted = self._granted
            horizon = now - self._window
            while granted and granted[0] <= horizon:
                granted.popleft()
            allowed = max(1, self._limit // self._share)
            taken = len(granted)
            if taken < allowed:
                granted.append(max(now, granted[-1]) if granted else now)
                return 0.0
            return granted[taken - allowed] + self._window - now

    def record(self, now: float) -> None:
        """Count a slot granted elsewhere (by a shared store) at ``now``, whatever the local count."""
        if self._limit is None:
            return
        with self._lock:
            granted = self._granted
            granted.append(max(now, granted[-1]) if granted else now)
            while len(granted) > self._limit:
                granted.popleft()

    def share(self, clients: int) -> None:
        """``clients`` clients of the account share the limit: alone, this one takes its part of it."""
        self._share = clients if _positive_whole(clients) else 1

    def learn_limit(self, requests_per_window: Any) -> bool:
        """Follow the exchange's advertised limit (``"auto"`` only); True when it was taken."""
        if not self._auto or not _positive_whole(requests_per_window):
            return False
        if requests_per_window == self._limit:
            return True  # what every /status says again: nothing to change, no lock to take
        with self._lock:
            self._limit = requests_per_window
            while len(self._granted) > requests_per_window:
                self._granted.popleft()
        return True

    def pause(self, seconds: float, now: float) -> None:
        """Hold every caller until ``now + seconds`` (a 429's ``Retry-After``)."""
        if self._limit is None or not seconds > 0:  # also refuses NaN
            return
        with self._lock:
            self._paused_until = max(self._paused_until, now + min(float(seconds), _constants.RETRY_AFTER_MAX))

    def refused(self, now: float, retry_after: Optional[float] = None) -> None:
        """A request sent under this budget was answered 429: pause every caller, give its slot back."""
        if self._limit is None:
            return
        self.pause(retry_after if retry_after is not None else 0.0, now)
        with self._lock:
            granted = self._granted
            horizon = now - self._window
            while granted and granted[0] <= horizon:
                granted.popleft()
            if granted:
                granted.pop()

    def paused_for(self, now: float) -> float:
        """The seconds until a 429's pause ends, 0.0 when none runs: what a request that takes no slot waits."""
        return max(0.0, self._paused_until - now) if self._limit is not None else 0.0

    def in_window(self, now: float) -> int:
        """How many granted requests are within the window ending at ``now`` (for display and tests)."""
        with self._lock:
            return sum(1 for granted in self._granted if granted > now - self._window)


class BudgetStore(Protocol):
    """A request budget shared with other processes (``gameproto_redis.SharedBudget``): the same rule, kept elsewhere.

    Its methods block on I/O, so the flow asks for them through ``Blocking``,
    with the call's time left: each bounds its I/O by it. What a store
    answers is not trusted (``usable_wait``): a wait that is not a number
    >= 0 is no answer, and the client paces alone.
    """

    def reserve(self, time_left: Optional[float] = None) -> float:
        """0.0 when a slot was taken; else the seconds to wait before asking again."""

    def learn_limit(self, n: int, time_left: Optional[float] = None) -> None:
        """Follow the exchange's advertised limit (``"auto"`` only)."""

    def pause(self, seconds: float, time_left: Optional[float] = None) -> None:
        """Hold every client of the budget for ``seconds`` (a 429's ``Retry-After``)."""

    def close(self) -> None:
        """Let go of the connection to the shared store."""


def usable_wait(answer: Any) -> Optional[float]:
    """A store's answer to ``reserve`` as a wait (0.0: granted), or None when it is not one.

    Only a real number from 0 up to a window and a pause is a wait: a
    negative one (an overflow in the store) is never a grant.
    """
    if isinstance(answer, bool) or not isinstance(answer, (int, float)):
        return None
    wait = float(answer)
    if not (0.0 <= wait <= _constants.RETRY_AFTER_MAX + _constants.BUDGET_WINDOW) or math.isnan(wait):
        return None
    return wait


def limit_from_status(status: Any) -> Optional[int]:
    """The ``rate_limit.requests_per_minute`` of a ``/status`` answer, when it is a positive whole number."""
    rate_limit = status.get("rate_limit") if isinstance(status, dict) else None
    value = rate_limit.get("requests_per_minute") if isinstance(rate_limit, dict) else None
    return value if _positive_whole(value) else None


def budget_exhausted(wait: float, *, method: Optional[str] = None, path: Optional[str] = None) -> RateLimitError:
    """The error of a call that gets no slot before its deadline (nothing was sent)."""
    return RateLimitError(
        f"no request slot before the deadline: the request budget frees one in {wait:.3g} s; nothing was sent",
        retry_after=wait,
        method=method,
        path=path,
    )
