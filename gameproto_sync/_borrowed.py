"""The blocking client on the application's own HTTP client: ``GameAPI(..., http_client=...)``.

A ``requests.Session`` or an ``httpx.Client``. What is borrowed is its
connections, TLS and proxies; gameproto keeps its own headers, timeouts,
size cap and retries, so a setting of the borrowed client that would act on
gameproto's requests is refused here, when the client is made
(docs/embedding.md). The library is never imported here: the object's own
type says which one it is, so a client without ``http_client`` loads neither.

Neither library bounds a whole call, only each wait; the sockets a borrowed
client uses for gameproto's calls are made to respect the call's deadline
(``_deadline.adopt``), as the client's own are, and respect none outside them.
"""

from __future__ import annotations

import sys
from typing import Iterable, Optional, Protocol, Union

from gameproto import ClientSettings, InvalidArgumentError, Response, Send, TransportFailure
from gameproto.driver import check_length, declared_length, library_of

__all__ = ["Sender", "borrowed_transport", "read_capped"]


class Sender(Protocol):
    """What the client asks of a transport: its own (requests) or a borrowed one."""

    def send(self, action: Send) -> Union[Response, TransportFailure]: ...

    def close(self) -> None: ...


def read_capped(chunks: Iterable[bytes], declared: Optional[str], max_bytes: int) -> bytes:
    """The whole body, stopped (``TooLarge``) once it is longer than ``max_bytes``."""
    check_length(declared_length(declared), max_bytes, declared=True)
    parts = []
    length = 0
    for chunk in chunks:
        length += len(chunk)
        check_length(length, max_bytes)
        parts.append(chunk)
    return b"".join(parts)


def borrowed_transport(http_client: object, settings: ClientSettings) -> Sender:
    """The transport over ``http_client``; ``InvalidArgumentError`` naming what cannot be borrowed."""
    library = library_of(http_client)
    if library == "requests" and isinstance(http_client, sys.modules["requests"].Session):
        from ._requests import SessionTransport

        return SessionTransport(http_client, settings)
    if library == "httpx" and isinstance(http_client, sys.modules["httpx"].Client):
        from ._httpx import HttpxTransport

        return HttpxTransport(http_client, settings)
    if library == "httpx":
        raise InvalidArgumentError(
            f"http_client: the blocking client takes an httpx.Client, not an {type(http_client).__name__} "
            "(gameproto_async.GameAPI takes an httpx.AsyncClient)"
        )
    raise InvalidArgumentError(
        "http_client: the blocking client takes a requests.Session or an httpx.Client, "
        f"not {type(http_client).__module__}.{type(http_client).__qualname__}"
    )
