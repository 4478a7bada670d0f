"""gameproto_sync: the blocking GAME client, on ``requests``."""

from __future__ import annotations

from gameproto._errors import (
    APIStatusError,
    AuthenticationError,
    GameAPIError,
    NetworkError,
    NotFoundError,
    OrderValidationError,
    OutcomeUnknownError,
    ProtocolError,
    RateLimitError,
    ServerError,
    ServerValidationError,
)

from .client import GameAPI

__all__ = [
    "GameAPI",
    "GameAPIError",
    "OrderValidationError",
    "AuthenticationError",
    "NotFoundError",
    "RateLimitError",
    "ServerError",
    "APIStatusError",
    "ServerValidationError",
    "ProtocolError",
    "NetworkError",
    "OutcomeUnknownError",
]
