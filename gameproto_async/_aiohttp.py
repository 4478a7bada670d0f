"""The async client's bytes through the application's own ``aiohttp.ClientSession`` (asyncio only)."""

from __future__ import annotations

import asyncio
import sys
from typing import Any, Union

from gameproto import ClientSettings, InvalidArgumentError, Response, Send, TransportFailure
from gameproto.driver import TooLarge, refuse_header, refuse_own_settings

from ._borrowed import read_capped

__all__ = ["AiohttpTransport", "aiohttp_failure", "refuse_aiohttp_settings"]

# aiohttp's exceptions, most precise first: the step they happened at.
_KINDS = (
    ("ConnectionTimeoutError", "connect_timeout"),  # no connection within the time: nothing was sent
    ("ClientConnectorCertificateError", "tls"),
    ("ClientConnectorSSLError", "tls"),
    ("ClientConnectorError", "connect"),  # DNS, refused, the proxy unreachable: nothing was sent
    ("ClientHttpProxyError", "connect"),  # the proxy refused the tunnel: nothing reached the exchange
    ("ServerDisconnectedError", "closed"),
    ("SocketTimeoutError", "read_timeout"),
    ("ClientPayloadError", "read"),
    ("ClientResponseError", "protocol"),
)


def aiohttp_failure(error: BaseException) -> TransportFailure:
    """The core's name for an aiohttp error; one that does not say its step may have sent the request."""
    detail = f"{type(error).__name__}: {error}"
    names = {kind.__name__ for kind in type(error).__mro__}
    for name, kind in _KINDS:
        if name in names:
            return TransportFailure(kind, detail)  # type: ignore[arg-type]
    if isinstance(error, asyncio.TimeoutError):  # the call's deadline (the total timeout): at any step
        return TransportFailure("read_timeout", detail or "no whole answer within the call's deadline")
    return TransportFailure("read", detail)


def refuse_aiohttp_settings(session: Any, settings: ClientSettings) -> None:
    """A session whose own settings would act on gameproto's requests is refused, naming the setting."""
    refuse_own_settings(settings)
    if "trio" in sys.modules and _running_trio():
        raise InvalidArgumentError("http_client: an aiohttp.ClientSession runs on asyncio only, not trio")
    if session.closed:
        raise InvalidArgumentError("http_client: the aiohttp session is closed")
    if session.auth is not None:
        raise InvalidArgumentError("http_client: its auth would sign gameproto's requests; pass a session without auth")
    if session.trace_configs:
        raise InvalidArgumentError("http_client: its trace_configs would act on every call")
    if getattr(session, "_middlewares", None):
        raise InvalidArgumentError("http_client: its middlewares would act on every call")
    if getattr(session, "_base_url", None) is not None:
        raise InvalidArgumentError("http_client: its base_url would be joined to gameproto's URLs; pass base_url=")
    refuse_header(session.headers)


def _running_trio() -> bool:
    try:
        sys.modules["trio"].lowlevel.current_trio_token()
    except RuntimeError:
        return False
    return True


class AiohttpTransport:
    """Each call a request of the borrowed session, bounded by the call's deadline; the session left open."""

    def __init__(self, session: Any, settings: ClientSettings) -> None:
        refuse_aiohttp_settings(session, settings)
        self._session = session
        self._aiohttp = sys.modules["aiohttp"]
        self._api_url = settings.api_url
        self._max_bytes = settings.max_response_bytes

    async def send(self, action: Send) -> Union[Response, TransportFailure]:
        aiohttp, request, left = self._aiohttp, action.request, action.time_left
        # total: the call's deadline over every step, a trickled answer included.
        # connect: a free connection of the pool, or a new one. It ends before the deadline (total), so a
        # deadline that finds the call still connecting is named by it (nothing sent), not as outcome unknown.
        connect = min(action.connect_timeout, left - min(0.05, left / 2))
        timeout = aiohttp.ClientTimeout(
            total=left, connect=connect, sock_connect=connect, sock_read=min(action.read_timeout, left)
        )
        try:
            async with self._session.request(
                request.method,
                self._api_url + request.target,
                data=request.body,
                headers=request.headers,
                timeout=timeout,
                allow_redirects=False,
                raise_for_status=False,
                auto_decompress=False,
                skip_auto_headers=("Accept-Encoding", "Content-Type"),
            ) as answer:
                declared = answer.headers.get("Content-Length")
                if declared is not None and declared.isdigit() and int(declared) <= self._max_bytes:
                    body = await answer.read()  # a declared length within the cap: read no further (the fast path)
                else:
                    body = await read_capped(answer.content.iter_any(), declared, self._max_bytes)
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            return aiohttp_failure(error)
        except TooLarge as error:
            return TransportFailure("too_large", str(error))
        return Response(answer.status, answer.headers, body)

    async def aclose(self) -> None:
        """Nothing to close: the session is the application's, and stays open."""
