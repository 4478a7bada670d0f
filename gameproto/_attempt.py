"""What each attempt of a call reports: the ``on_attempt`` hook's value, and the debug log."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Optional

from ._boundary import Request

__all__ = ["Attempt", "report"]

logger = logging.getLogger("gameproto")


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


def report(
    on_attempt: Optional[Callable[[Attempt], None]],
    request: Request,
    attempt: int,
    status: Optional[int],
    failure: Optional[str],
    elapsed: float,
    retry_in: Optional[float],
) -> None:
    """Log an attempt at DEBUG and hand it to ``on_attempt``, whose failure never breaks a trade."""
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug(
            "%s %s -> %s (attempt %d, %.1f ms)%s",
            request.method,
            request.path,
            status if status is not None else failure,
            attempt,
            elapsed * 1000.0,
            f", retrying in {retry_in:.2f} s" if retry_in is not None else "",
        )
    if on_attempt is not None:
        try:
            on_attempt(Attempt(request.method, request.path, attempt, status, failure, elapsed, retry_in))
        except Exception:  # a metrics hook must never break a trade
            logger.exception("on_attempt hook failed")
