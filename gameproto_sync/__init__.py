"""gameproto_sync: the GAME client for blocking code, on ``requests``.

``GameAPI`` and the error family (the same classes as ``gameproto``'s), so that
``from gameproto_sync import GameAPI, OutcomeUnknownError`` is all a script needs.
"""

from __future__ import annotations  # GENERATED from gameproto_async/__init__.py by tools/unasync.py: do not edit.

from gameproto._errors import (
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
    ServerError,
    ServerValidationError,
)

from ._client import GameAPI

__all__ = [
    "GameAPI",
    "APIStatusError",
    "AuthenticationError",
    "GameAPIError",
    "InvalidArgumentError",
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
    "ServerError",
    "ServerValidationError",
]
