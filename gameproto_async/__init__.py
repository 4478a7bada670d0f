"""gameproto_async: the GAME client for asyncio and trio, on ``httpcore`` and ``anyio``.

``GameAPI`` and the error family (the same classes as ``gameproto``'s), so that
``from gameproto_async import GameAPI, OutcomeUnknownError`` is all a script needs.
"""

from __future__ import annotations

from gameproto import (
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
    OrderValidationError,
    OutcomeUnknownError,
    ProtocolError,
    RateLimitError,
    RiskLimitError,
    ServerError,
    ServerValidationError,
)
from gameproto.journal import JournalError
from gameproto.risk import RiskLimits

from ._client import GameAPI, Journal

__all__ = [
    "GameAPI",
    "Journal",
    "APIStatusError",
    "AuthenticationError",
    "GameAPIError",
    "InvalidArgumentError",
    "JournalError",
    "NetworkError",
    "NetworkTimeoutError",
    "NotFoundError",
    "OrderOutcomeUnknownNoAnswerError",
    "OrderOutcomeUnknownProtocolError",
    "OrderOutcomeUnknownServerError",
    "OrderValidationError",
    "OutcomeUnknownError",
    "ProtocolError",
    "RateLimitError",
    "RiskLimitError",
    "RiskLimits",
    "ServerError",
    "ServerValidationError",
]
