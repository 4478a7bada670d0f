"""gameproto: the GAME intraday power-trading protocol, without I/O.

Builds every request, parses every answer and error, holds the order rules,
the token lifecycle, the retry policy and a simulator of the exchange. The
drivers ``gameproto_sync`` and ``gameproto_async`` move the bytes.
"""

from __future__ import annotations

from ._arguments import InvalidArgumentError, order_number
from ._auth import TokenState
from ._boundary import Request, Response, TransportFailure
from ._budget import RequestBudget, budget_exhausted, limit_from_status
from ._bulk import OrderPlan, finish_bulk, merge_bulk_results, plan_orders
from ._calls import Call
from ._clock import ClockEstimator
from ._constants import VERSION as __version__
from ._errors import (
    APIStatusError,
    AuthenticationError,
    GameAPIError,
    NetworkError,
    NotFoundError,
    OrderOutcomeUnknownProtocolError,
    OrderOutcomeUnknownServerError,
    OrderProblem,
    OrderValidationError,
    OutcomeUnknownError,
    ProtocolError,
    RateLimitError,
    ServerError,
    ServerValidationError,
)
from ._events import (
    MarketEvent,
    MarketTracker,
    MarketWatch,
    OrderEvent,
    OrderTracker,
    OrderWatch,
    TradeTracker,
    TradeWatch,
    Watch,
    is_transient,
)
from ._flow import Attempt, RefreshToken, Send, Session, Sleep
from ._market import best_offers, find_matching_orders, find_order, latest_ltp
from ._orders import validate_order, validate_orders
from ._retry import RetryPolicy, backoff_delay, parse_retry_after

__all__ = [
    "__version__",
    # values
    "Request",
    "Response",
    "Call",
    # errors
    "GameAPIError",
    "OrderValidationError",
    "OrderProblem",
    "InvalidArgumentError",
    "AuthenticationError",
    "NotFoundError",
    "RateLimitError",
    "ServerError",
    "APIStatusError",
    "ServerValidationError",
    "ProtocolError",
    "NetworkError",
    "OutcomeUnknownError",
    "OrderOutcomeUnknownServerError",
    "OrderOutcomeUnknownProtocolError",
    # order rules
    "validate_order",
    "validate_orders",
    "order_number",
    "plan_orders",
    "OrderPlan",
    "merge_bulk_results",
    "finish_bulk",
    # the flow
    "Session",
    "Send",
    "Sleep",
    "RefreshToken",
    "Attempt",
    "TransportFailure",
    "TokenState",
    "RetryPolicy",
    "backoff_delay",
    "parse_retry_after",
    # the request budget and the exchange's clock
    "RequestBudget",
    "limit_from_status",
    "budget_exhausted",
    "ClockEstimator",
    # live events
    "OrderEvent",
    "MarketEvent",
    "OrderTracker",
    "TradeTracker",
    "MarketTracker",
    "Watch",
    "OrderWatch",
    "TradeWatch",
    "MarketWatch",
    "is_transient",
    # helpers
    "best_offers",
    "latest_ltp",
    "find_order",
    "find_matching_orders",
]
