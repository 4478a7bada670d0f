"""gameproto_sync: the GAME client for blocking code, on ``requests``.

``GameAPI`` and the error family (the same classes as ``gameproto``'s), so that
``from gameproto_sync import GameAPI, OutcomeUnknownError`` is all a script needs.
"""

from __future__ import annotations  # GENERATED from gameproto_async/__init__.py by tools/unasync.py: do not edit.

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
