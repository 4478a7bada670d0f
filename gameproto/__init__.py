"""gameproto: the GAME intraday power-trading protocol, without I/O.

Builds every request, parses every answer and error, holds the order rules,
the token lifecycle, the retry policy and a simulator of the exchange. The
drivers ``gameproto_sync`` and ``gameproto_async`` move the bytes; a driver
runs the flows of ``Session`` and ``Trading`` and answers their actions
(``Send``, ``Sleep``, ``RunLocked``, ``Blocking``, ``RunAll``): see docs/design.md.

What is named here is the public surface: what a user of the clients or the
author of a driver needs. The rest lives in private modules and may change.
"""

from __future__ import annotations

from . import calls, journal, risk, types
from ._attempt import Attempt
from ._boundary import (
    Action,
    Blocking,
    FailureKind,
    Flow,
    Request,
    Response,
    RunAll,
    RunLocked,
    Send,
    Sleep,
    TransportFailure,
)
from ._calls import Call
from ._constants import VERSION as __version__
from ._contract import Contract
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
    RiskLimitError,
    ServerError,
    ServerValidationError,
)
from ._events import MarketEvent, OrderEvent
from ._flow import Session
from ._orders import validate_order, validate_orders
from ._positions import positions
from ._reconcile import find_matching_orders
from ._retry import RetryPolicy
from ._risk import RiskLimits
from ._settings import ClientSettings

__all__ = [
    "__version__",
    # driving the core: the calls, the session that runs them, the values a driver exchanges with it
    "calls",
    "Call",
    "ClientSettings",
    "Session",
    "Request",
    "Response",
    "TransportFailure",
    "FailureKind",
    "Send",
    "Sleep",
    "RunLocked",
    "Blocking",
    "RunAll",
    "Action",
    "Flow",
    # a client's options: retries and the attempt hook
    "RetryPolicy",
    "Attempt",
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
    "ServerValidationError",
    "ServerError",
    "ProtocolError",
    "NetworkError",
    "NetworkTimeoutError",
    "OutcomeUnknownError",
    "OrderOutcomeUnknownNoAnswerError",
    "OrderOutcomeUnknownServerError",
    "OrderOutcomeUnknownProtocolError",
    # order rules and reconciling
    "validate_order",
    "validate_orders",
    "find_matching_orders",
    # the trader's view and brakes (issue 23): the rest of it in gameproto.risk
    "Contract",
    "positions",
    "RiskLimits",
    "risk",
    # live events, and the shapes of the answers
    "OrderEvent",
    "MarketEvent",
    "types",
    # the order journal: its records, JournalError, the storage interface
    "journal",
]
