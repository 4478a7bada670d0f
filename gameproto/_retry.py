"""The retry policy: which failure is tried again, and after how long.

Pure functions of the failure, the attempt number, a random source and a
clock, so that every decision is tested without waiting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

from . import _constants
from ._arguments import is_number
from ._boundary import TransportFailure
from ._http_dates import parse_http_date, parse_retry_after, read_retry_after

__all__ = [
    "RetryPolicy",
    "RetryDecision",
    "RETRYABLE_STATUSES",
    "parse_retry_after",
    "read_retry_after",
    "parse_http_date",
    "backoff_delay",
]

#: Answers that mean "not carried out, try later" for a request that is safe
#: to repeat.
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


def backoff_delay(
    retry_number: int,
    *,
    initial: float = _constants.BACKOFF_INITIAL,
    maximum: float = _constants.BACKOFF_MAX,
    random: Callable[[], float],
) -> float:
    """The wait before retry ``retry_number`` (1 for the first retry).

    Exponential (``initial`` doubling), capped at ``maximum``, with "equal
    jitter": half the delay is fixed and half random, so clients that failed
    together do not come back together, yet none retries at once.
    """
    exponent = min(max(retry_number - 1, 0), 62)
    delay = min(initial * (2.0**exponent), maximum)
    return delay / 2.0 + (delay / 2.0) * min(max(random(), 0.0), 1.0)


@dataclass(frozen=True)
class RetryDecision:
    """Whether to try again, and after how many seconds."""

    retry: bool
    wait: float = 0.0


GIVE_UP = RetryDecision(False)


@dataclass(frozen=True)
class RetryPolicy:
    """What the project retries (GAME-API.md, "Retries").

    GET and DELETE are retried on transport failures and on the statuses in
    ``RETRYABLE_STATUSES``. A request that creates orders is retried only
    when it cannot have been carried out: nothing was sent, or the answer
    was 429.
    """

    max_retries: int = _constants.DEFAULT_MAX_RETRIES
    backoff_initial: float = _constants.BACKOFF_INITIAL
    backoff_max: float = _constants.BACKOFF_MAX
    retry_after_cap: float = _constants.RETRY_AFTER_CAP

    def __post_init__(self) -> None:
        if not is_number(self.max_retries, whole=True, least=0):
            raise ValueError(f"max_retries must be a whole number >= 0, got {self.max_retries!r}")

    def after_status(
        self,
        status: int,
        *,
        creates: bool,
        retries_done: int,
        retry_after: Optional[float],
        random: Callable[[], float],
    ) -> RetryDecision:
        """The decision after an unsuccessful answer."""
        if status not in RETRYABLE_STATUSES:
            return GIVE_UP
        if creates and status != 429:
            # A 5xx to a POST may come after the order was placed.
            return GIVE_UP
        if retries_done >= self.max_retries:
            return GIVE_UP
        if retry_after is not None:
            if retry_after > self.retry_after_cap:
                return RetryDecision(False, retry_after)
            return RetryDecision(True, retry_after)
        wait = backoff_delay(retries_done + 1, initial=self.backoff_initial, maximum=self.backoff_max, random=random)
        return RetryDecision(True, wait)

    def after_transport_failure(
        self,
        failure: TransportFailure,
        *,
        creates: bool,
        retries_done: int,
        random: Callable[[], float],
    ) -> RetryDecision:
        """The decision after a request that got no answer."""
        if creates and failure.may_have_been_sent:
            return GIVE_UP
        if failure.kind == "too_large":
            # The same server would send the same oversized answer again.
            return GIVE_UP
        if retries_done >= self.max_retries:
            return GIVE_UP
        wait = backoff_delay(retries_done + 1, initial=self.backoff_initial, maximum=self.backoff_max, random=random)
        return RetryDecision(True, wait)
