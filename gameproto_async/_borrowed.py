"""The async client on the application's own HTTP client: ``GameAPI(..., http_client=...)``.

An ``httpx.AsyncClient`` (asyncio and trio) or an ``aiohttp.ClientSession``
(asyncio). What is borrowed and what is refused is the core's
(``gameproto/_borrowing.py``, docs/embedding.md). The library is never
imported here: the object's own type says which one it is, so a client
without ``http_client`` loads neither.
"""

from __future__ import annotations

import sys
from typing import AsyncIterator, Optional, Protocol, Union

from gameproto import ClientSettings, InvalidArgumentError, Response, Send, TransportFailure
from gameproto.driver import check_length, declared_length, library_of

__all__ = ["Sender", "borrowed_transport", "read_capped"]


class Sender(Protocol):
    """What the client asks of a transport: its own (httpcore) or a borrowed one."""

    async def send(self, action: Send) -> Union[Response, TransportFailure]: ...

    async def aclose(self) -> None: ...


async def read_capped(chunks: AsyncIterator[bytes], declared: Optional[str], max_bytes: int) -> bytes:
    """The whole body, stopped (``TooLarge``) once it is longer than ``max_bytes``."""
    check_length(declared_length(declared), max_bytes, declared=True)
    parts = []
    length = 0
    async for chunk in chunks:
        length += len(chunk)
        check_length(length, max_bytes)
        parts.append(chunk)
    return b"".join(parts)


def borrowed_transport(http_client: object, settings: ClientSettings) -> Sender:
    """The transport over ``http_client``; ``InvalidArgumentError`` naming what cannot be borrowed."""
    library = library_of(http_client)
    if library == "httpx" and isinstance(http_client, sys.modules["httpx"].AsyncClient):
        from ._httpx import HttpxTransport

        return HttpxTransport(http_client, settings)
    if library == "aiohttp" and isinstance(http_client, sys.modules["aiohttp"].ClientSession):
        from ._aiohttp import AiohttpTransport

        return AiohttpTransport(http_client, settings)
    if library == "httpx":
        raise InvalidArgumentError(
            f"http_client: the async client takes an httpx.AsyncClient, not an {type(http_client).__name__} "
            "(gameproto_sync.GameAPI takes an httpx.Client)"
        )
    raise InvalidArgumentError(
        "http_client: the async client takes an httpx.AsyncClient or an aiohttp.ClientSession, "
        f"not {type(http_client).__module__}.{type(http_client).__qualname__}"
    )
