"""FALLBACK local window: the pacing rule for one process, used while Redis does not answer.

This is a stand-in for the core's local budget rule (``gameproto._budget``),
kept tiny and pure (the clock is a parameter) so that it can be replaced by
the core's rule without touching ``SharedBudget``: the method names and
meanings are the same. It is not thread-safe; ``SharedBudget`` holds its lock
around every use.

The rule, the same as the shared window's: a slot is granted at ``now`` when
fewer than ``limit`` slots (``limit // share`` when ``share`` clients divide
the account's limit) were granted in ``(now - window, now]`` and no pause runs;
otherwise nothing is taken and the answer is the time until the pause ends, or
until enough old grants leave the window for one slot to be free.
"""

from __future__ import annotations

from collections import deque
from typing import Deque, Optional, Union

__all__ = ["AUTO_START", "LocalWindow", "check_limit", "check_window"]

#: The limit an ``"auto"`` budget starts from: the exchange's advertised rate.
AUTO_START = 1000


def check_limit(limit: object, name: str = "limit") -> Optional[int]:
    """The fixed limit ``limit`` names (None for ``"auto"``); ValueError naming what is wrong."""
    if limit == "auto":
        return None
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f'{name} must be a whole number of requests >= 1 or "auto", got {limit!r}')
    return limit


def check_window(window: object) -> float:
    """``window`` as seconds > 0; ValueError naming what is wrong."""
    if isinstance(window, bool) or not isinstance(window, (int, float)) or not 0 < window < float("inf"):
        raise ValueError(f"window must be a number of seconds > 0, got {window!r}")
    return float(window)


class LocalWindow:
    """A sliding window of grant times in one process (the fallback rule)."""

    def __init__(self, limit: Union[int, str] = "auto", window: float = 60.0) -> None:
        self.fixed = check_limit(limit)
        self.limit = self.fixed if self.fixed is not None else AUTO_START
        self.window = check_window(window)
        self.paused_until = float("-inf")
        #: The clients the account's limit is shared by: this one may take its share.
        self.share = 1
        self._grants: Deque[float] = deque()

    def reserve(self, now: float) -> float:
        """0.0: a slot is taken for a request sent at ``now``; > 0: seconds to wait, nothing taken."""
        if now < self.paused_until:
            return self.paused_until - now
        self._forget(now)
        taken = len(self._grants)
        allowed = max(1, self.limit // self.share)
        if taken < allowed:
            self._grants.append(now)
            return 0.0
        # The grant whose leaving frees a slot (more than one when the limit was lowered).
        return self._grants[taken - allowed] + self.window - now

    def record(self, now: float) -> None:
        """Count a slot granted elsewhere (by the shared window) at ``now``, whatever the local count."""
        self._forget(now)
        self._grants.append(now)

    def learn_limit(self, requests_per_minute: int) -> None:
        """Follow the exchange's advertised limit; a fixed limit does not move."""
        if self.fixed is None:
            self.limit = requests_per_minute

    def pause(self, seconds: float, now: float) -> None:
        """Hold every grant until ``now + seconds`` (a pause already running longer stays)."""
        self.paused_until = max(self.paused_until, now + seconds)

    def _forget(self, now: float) -> None:
        horizon = now - self.window
        grants = self._grants
        while grants and grants[0] <= horizon:
            grants.popleft()
