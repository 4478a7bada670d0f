"""gameproto_async: the async GAME client (asyncio and trio) and the embedded exchange server."""

from __future__ import annotations

from gameproto.errors import (
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
from .server import RunningServer, ServerThread, serve_exchange, serve_forever

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
    "serve_exchange",
    "serve_forever",
    "RunningServer",
    "ServerThread",
]
