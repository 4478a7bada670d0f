"""What the server serves (a ``Reactor``) and the discipline it holds each connection to (``Limits``).

Both are the server's settings, apart from the reading and answering of one
connection (``_connection``): ``game serve``'s flags fill ``Limits``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, TypeVar

from gameproto._boundary import Request
from gameproto._constants import (
    SERVER_BODY_TIMEOUT,
    SERVER_HEAD_TIMEOUT,
    SERVER_IDLE_TIMEOUT,
    SERVER_MAX_BODY,
    SERVER_MAX_BUFFERED,
    SERVER_MAX_CONNECTIONS,
    SERVER_MAX_CONNECTIONS_PER_ADDRESS,
    SERVER_MIN_RATE,
)
from gameproto.simulator.faults import Reaction

__all__ = ["Reactor", "ExchangeT", "Limits"]


class Reactor(Protocol):
    """Anything the server can serve: the exchange, or a stand-in in tests.

    Each request carries the client's address in the ``x-gameproto-client``
    header. A reactor may also offer ``screen(request) -> Optional[Response]``:
    the refusal a request earns from its head alone, asked before any body byte is read;
    and ``async background()``, run beside the requests while the server serves.
    """

    def react(self, request: Request) -> Reaction: ...


ExchangeT = TypeVar("ExchangeT", bound=Reactor)


@dataclass(frozen=True)
class Limits:
    """The connection discipline of one server (``game serve`` flags; defaults in ``_constants``)."""

    #: A keep-alive connection waiting this long for the next request is closed.
    idle_timeout: float = SERVER_IDLE_TIMEOUT
    #: Bodies larger than this are refused (413).
    max_body: int = SERVER_MAX_BODY
    #: The whole request head must arrive within this of its first byte.
    head_timeout: float = SERVER_HEAD_TIMEOUT
    #: The whole body must arrive within this, however it trickles.
    body_timeout: float = SERVER_BODY_TIMEOUT
    #: Bytes a second a body or an answer must move at, after a grace of ``head_timeout``.
    min_rate: float = SERVER_MIN_RATE
    #: Connections held at once; the stalest idle or incomplete one makes room for a new one.
    max_connections: int = SERVER_MAX_CONNECTIONS
    #: Connections one client address holds at once, with the same eviction within it.
    max_connections_per_address: int = SERVER_MAX_CONNECTIONS_PER_ADDRESS
    #: Request body bytes held across all connections; a body that would pass it is refused (503).
    max_buffered: int = SERVER_MAX_BUFFERED

    def __post_init__(self) -> None:
        for name in ("idle_timeout", "head_timeout", "body_timeout", "min_rate"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        for name in ("max_body", "max_connections", "max_connections_per_address", "max_buffered"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)!r}")

    def transfer_time(self, size: int, cap: float) -> float:
        """Seconds allowed to move ``size`` bytes: the grace plus the size at the minimum rate, at most ``cap``."""
        return min(cap, self.head_timeout + size / self.min_rate)
