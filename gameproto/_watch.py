"""The schedule of a watch, for any driver: which call next, how long to sleep, which failure ends it.

A watch polls a listing and hands each answer to its tracker
(``gameproto/_events.py``, where what counts as an event is decided); the
driver's ``watch_*`` is a short loop that runs ``Watch.call``, then sleeps
what ``Watch.succeeded`` or ``Watch.failed`` returns. The watch backs off on
failures that pass (network, 5xx, 408, 429, an unreadable answer) and ends
on those that do not (authentication, a refused query).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Generic, Iterable, List, Optional, Tuple, TypeVar

from . import _constants
from ._arguments import is_number
from ._calls import Call, get_market_data, get_orders, get_trades
from ._errors import (
    AuthenticationError,
    GameAPIError,
    NetworkError,
    OutcomeUnknownError,
    ProtocolError,
    RateLimitError,
    ServerError,
)
from ._events import MarketEvent, MarketTracker, OrderEvent, OrderTracker, TradeTracker
from ._retry import backoff_delay
from ._types import Trade

__all__ = ["Watch", "OrderWatch", "TradeWatch", "MarketWatch", "is_transient"]

E = TypeVar("E")


def is_transient(error: BaseException) -> bool:
    """Whether a failed poll may succeed later: network, 5xx, 408, 429, an unreadable answer."""
    if isinstance(error, AuthenticationError):
        return False
    if isinstance(error, (NetworkError, ServerError, RateLimitError, ProtocolError, OutcomeUnknownError)):
        return True
    return isinstance(error, GameAPIError) and error.status_code == 408


def _check_interval(interval: Any) -> float:
    if not is_number(interval, above=0, below=math.inf):
        raise ValueError(f"interval must be a positive number of seconds, got {interval!r}")
    return float(interval)


def _check_existing(existing: Any) -> bool:
    if not isinstance(existing, bool):
        raise ValueError(f"existing must be True or False, got {existing!r}")
    return existing


class Watch(Generic[E]):
    """The schedule of a watch, for any driver.

    The driver loops: run ``call``; hand its value to ``succeeded`` (yield the
    events it returns, then sleep the seconds it returns) or its error to
    ``failed`` (sleep what it returns; it re-raises an error that ends the
    watch). Stopping is the caller's: leave the loop.
    """

    def __init__(self, interval: float = 1.0, *, random: Callable[[], float]) -> None:
        self.interval = _check_interval(interval)
        self._random = random
        self.failures = 0

    @property
    def call(self) -> Call[Any]:
        """The call to run next."""
        raise NotImplementedError

    def succeeded(self, value: Any) -> Tuple[List[E], float]:
        """The events ``call``'s answer gives, and the seconds to sleep before the next call."""
        self.failures = 0
        return self._digest(value), self.interval

    def failed(self, error: BaseException) -> float:
        """The seconds to sleep after ``call`` failed with ``error``; raises ``error`` if it ends the watch."""
        if not is_transient(error):
            raise error
        self.failures += 1
        wait = backoff_delay(self.failures, maximum=max(_constants.BACKOFF_MAX, self.interval), random=self._random)
        told = getattr(error, "retry_after", None)
        if isinstance(told, (int, float)) and told > 0:
            wait = max(wait, float(told))
        return max(wait, self.interval)

    def _digest(self, value: Any) -> List[E]:
        raise NotImplementedError


class OrderWatch(Watch[OrderEvent]):
    """``watch_orders``: polls ``get_orders(direction)``."""

    def __init__(
        self,
        interval: float = 1.0,
        direction: Optional[str] = None,
        *,
        existing: bool = False,
        random: Callable[[], float],
    ) -> None:
        super().__init__(interval, random=random)
        self._call = get_orders(direction)
        self.tracker = OrderTracker(existing=_check_existing(existing))

    @property
    def call(self) -> Call[Any]:
        return self._call

    def _digest(self, value: Any) -> List[OrderEvent]:
        return self.tracker.update(value)


class TradeWatch(Watch[Trade]):
    """``watch_trades``: polls ``get_trades()``; with ``mine``, lists the orders first until a trader name is known."""

    def __init__(
        self,
        interval: float = 1.0,
        mine: bool = True,
        *,
        traders: Iterable[str] = (),
        existing: bool = False,
        random: Callable[[], float],
    ) -> None:
        super().__init__(interval, random=random)
        self.tracker = TradeTracker(mine=mine, traders=traders, existing=_check_existing(existing))
        self._trades = get_trades()
        self._orders = get_orders()
        self._learning = self.tracker.needs_traders

    @property
    def call(self) -> Call[Any]:
        return self._orders if self._learning else self._trades

    @property
    def learning_traders(self) -> bool:
        """Whether the next poll lists the caller's orders (to learn its trader names) rather than the trades."""
        return self._learning

    def succeeded(self, value: Any) -> Tuple[List[Trade], float]:
        if self._learning:
            self.failures = 0
            self.tracker.learn_traders(value)
            self._learning = False
            return [], 0.0  # the trades next, in the same round
        events, wait = super().succeeded(value)
        self._learning = self.tracker.needs_traders
        return events, wait

    def _digest(self, value: Any) -> List[Trade]:
        return self.tracker.update(value)


class MarketWatch(Watch[MarketEvent]):
    """``watch_market``: polls ``get_market_data(duration=duration)``."""

    def __init__(
        self,
        interval: float = 1.0,
        duration: Optional[str] = None,
        *,
        existing: bool = False,
        random: Callable[[], float],
    ) -> None:
        super().__init__(interval, random=random)
        self._call = get_market_data(duration=duration)
        self.tracker = MarketTracker(existing=_check_existing(existing))

    @property
    def call(self) -> Call[Any]:
        return self._call

    def _digest(self, value: Any) -> List[MarketEvent]:
        return self.tracker.update(value)
