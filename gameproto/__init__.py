"""gameproto: the GAME intraday power-trading protocol, without I/O.

Builds every request, parses every answer and error, holds the order rules,
the token lifecycle, the retry policy and a simulator of the exchange. The
drivers ``gameproto_sync`` and ``gameproto_async`` move the bytes; a driver
runs the flows of ``Session`` and answers their actions (``Send``, ``Sleep``,
``RunLocked``): see docs/design.md.
"""

from __future__ import annotations

from ._arguments import order_number, order_number_or_none
from ._auth import TokenState
from ._boundary import Action, Blocking, Flow, Request, Response, RunLocked, Send, Sleep, TransportFailure
from ._budget import RequestBudget, SharedBudget, budget_exhausted, limit_from_status
from ._bulk import BulkSending, OrderPlan, plan_orders
from ._calls import Call
from ._cancel_all import CancelAllResult
from ._clock import ClockEstimator
from ._constants import VERSION as __version__
from ._contract import Contract, quarter_hours_in_day, zurich_offset_hours
from ._errors import (
    APIStatusError,
    AuthenticationError,
    GameAPIError,
    InvalidArgumentError,
    NetworkError,
    NetworkTimeoutError,
    NotFoundError,
    OrderOutcomeUnknownNoAnswerError,
    OrderOutcomeUnknownProtocolError,
    OrderOutcomeUnknownServerError,
    OrderProblem,
    OrderValidationError,
    OutcomeUnknownError,
    ProtocolError,
    RateLimitError,
    RiskBreach,
    RiskLimitError,
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
from ._flow import Attempt, Session
from ._market import best_offers, latest_ltp, sort_by_price
from ._orders import validate_order, validate_orders
from ._positions import DayPosition, Position, Positions, positions
from ._reconcile import find_matching_orders, find_order
from ._retry import RetryPolicy, backoff_delay, parse_retry_after
from ._risk import RiskLimits
from ._settings import ClientSettings, Settings, settings_from_env
from ._types import (
    BestOffers,
    BulkRequest,
    BulkResult,
    DeleteResult,
    LatestLTP,
    LTPEntry,
    MarketRow,
    Order,
    SpotData,
    SpotStatus,
    Status,
    Trade,
)

__all__ = [
    "__version__",
    # the boundary between the core and a driver
    "Request",
    "Response",
    "TransportFailure",
    "Send",
    "Sleep",
    "RunLocked",
    "Blocking",
    "Action",
    "Flow",
    "Session",
    "Call",
    "Attempt",
    # settings
    "ClientSettings",
    "Settings",
    "settings_from_env",
    # errors
    "GameAPIError",
    "OrderValidationError",
    "OrderProblem",
    "InvalidArgumentError",
    "APIStatusError",
    "AuthenticationError",
    "NotFoundError",
    "RateLimitError",
    "RiskLimitError",
    "RiskBreach",
    "ServerValidationError",
    "ServerError",
    "ProtocolError",
    "NetworkError",
    "NetworkTimeoutError",
    "OutcomeUnknownError",
    "OrderOutcomeUnknownNoAnswerError",
    "OrderOutcomeUnknownServerError",
    "OrderOutcomeUnknownProtocolError",
    # order rules
    "validate_order",
    "validate_orders",
    "order_number",
    "order_number_or_none",
    "plan_orders",
    "OrderPlan",
    "BulkSending",
    # tokens and retries
    "TokenState",
    "RetryPolicy",
    "backoff_delay",
    "parse_retry_after",
    # the request budget and the exchange's clock
    "RequestBudget",
    "SharedBudget",
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
    # views over answers
    "best_offers",
    "latest_ltp",
    "sort_by_price",
    "find_order",
    "find_matching_orders",
    # the trader's view and brakes: delivery periods, positions, limits, the kill switch
    "Contract",
    "zurich_offset_hours",
    "quarter_hours_in_day",
    "positions",
    "Positions",
    "Position",
    "DayPosition",
    "RiskLimits",
    "CancelAllResult",
    # answer shapes
    "Order",
    "BulkRequest",
    "BulkResult",
    "DeleteResult",
    "Trade",
    "MarketRow",
    "LTPEntry",
    "SpotData",
    "SpotStatus",
    "Status",
    "BestOffers",
    "LatestLTP",
]
